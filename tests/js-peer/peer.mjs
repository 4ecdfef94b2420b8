// yamux-js-peer: js-libp2p's yamux muxer (@chainsafe/libp2p-yamux 7.0.4) on
// one TCP connection, running one scenario, for the yamux-proto interop tests.
//
// It speaks the same command line and stdout protocol as tests/go-peer
// (LISTENING, RESULT key=value ..., two frame summaries, DONE ok|fail ...),
// for the scenarios both peers share. See README.md in this directory.
//
// Reading is always plain: a stream's data ends when its source ends, the way
// a js-libp2p application reads (`for await (const chunk of stream.source)`).
// Nothing here waits, sleeps or pings to paper over a race; whether the FIN of
// a stream was seen on the wire is taken from a frame sniffer on the socket.

import net from 'node:net'
import { yamux } from '@chainsafe/libp2p-yamux'

// ---------------------------------------------------------------------------
// Command line

const SCENARIOS = ['echo', 'sink', 'respond', 'open-echo', 'source', 'ping', 'goaway', 'idle']

function parseDuration (s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(s)
  if (m == null) usage(`bad duration ${JSON.stringify(s)}`)
  const n = Number(m[1])
  return m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000
}

function parseArgs (argv) {
  const o = {
    listen: '', connect: '', role: '', scenario: '', streams: 0, bytes: -1, msgs: 10,
    seed: 1, hold: 0, timeout: 30_000, window: 16 << 20, keepalive: 0,
    plainRead: false, keepTcp: false
  }
  const value = (i) => {
    if (i + 1 >= argv.length) usage(`${argv[i]} needs a value`)
    return argv[i + 1]
  }
  const int = (i) => {
    const v = Number(value(i))
    if (!Number.isInteger(v)) usage(`${argv[i]} needs an integer`)
    return v
  }
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '-listen': o.listen = value(i); i++; break
      case '-connect': o.connect = value(i); i++; break
      case '-role': o.role = value(i); i++; break
      case '-scenario': o.scenario = value(i); i++; break
      case '-streams': o.streams = int(i); i++; break
      case '-bytes': o.bytes = int(i); i++; break
      case '-msgs': o.msgs = int(i); i++; break
      case '-seed': o.seed = int(i); i++; break
      case '-window': o.window = int(i); i++; break
      case '-hold': o.hold = parseDuration(value(i)); i++; break
      case '-timeout': o.timeout = parseDuration(value(i)); i++; break
      case '-keepalive': o.keepalive = parseDuration(value(i)); i++; break
      case '-plain-read': o.plainRead = true; break
      case '-keep-tcp': o.keepTcp = true; break
      default: usage(`unknown flag ${argv[i]}`)
    }
  }
  if ((o.listen === '') === (o.connect === '')) usage('exactly one of -listen and -connect')
  if (o.role !== 'client' && o.role !== 'server') usage('-role client|server')
  if (!SCENARIOS.includes(o.scenario)) usage(`unknown -scenario ${JSON.stringify(o.scenario)}`)
  return o
}

function usage (why) {
  process.stdout.write(`DONE fail usage: ${why}\n`)
  process.exit(1)
}

const opts = parseArgs(process.argv.slice(2))
const started = performance.now()
const sinceStart = () => Math.round(performance.now() - started)

// ---------------------------------------------------------------------------
// Output

function quote (s) {
  return JSON.stringify(String(s))
}

// Error fields: `none`, or the error's text (quoted by `result` when needed).
function errText (e) {
  if (e == null) return 'none'
  return String(e.message ?? e)
}

function result (fields) {
  const parts = Object.entries(fields).map(([k, v]) => {
    const s = String(v)
    return `${k}=${/^[A-Za-z0-9_.,:/+-]+$/.test(s) ? s : quote(s)}`
  })
  process.stdout.write(`RESULT ${parts.join(' ')}\n`)
}

function log (...args) {
  process.stderr.write(`js-peer: ${args.join(' ')}\n`)
}

// ---------------------------------------------------------------------------
// The data pattern and checksum shared with the Rust side and the Go peer

function patternByte (k, i) {
  return (i * 31 + k * 7 + Math.floor(i / 251)) & 0xff
}

function pattern (k, offset, n) {
  const b = new Uint8Array(n)
  for (let j = 0; j < n; j++) b[j] = patternByte(k, offset + j)
  return b
}

// FNV-1a 64 in two 32-bit halves (the prime is 2^40 + 0x1b3).
class Fnv {
  constructor () { this.hi = 0xcbf29ce4; this.lo = 0x84222325 }
  write (b) {
    let { hi, lo } = this
    for (let j = 0; j < b.length; j++) {
      lo = (lo ^ b[j]) >>> 0
      const low = lo * 0x1b3
      const carry = Math.floor(low / 0x100000000)
      hi = (hi * 0x1b3 + carry + ((lo << 8) >>> 0)) >>> 0
      lo = low >>> 0
    }
    this.hi = hi; this.lo = lo
  }
  hex () { return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0') }
}

// A small seeded generator for write sizes (xorshift32).
class Rng {
  constructor (seed) { this.s = (seed >>> 0) || 1 }
  next () {
    let s = this.s
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0
    this.s = s
    return s
  }
  range (lo, hi) { return lo + (this.next() % (hi - lo + 1)) }
}

// ---------------------------------------------------------------------------
// A frame sniffer for one direction of the TCP connection

class Sniffer {
  constructor (dir) {
    this.dir = dir
    this.c = {
      total: 0, data: 0, window_update: 0, ping: 0, pong: 0, goaway: 0, goaway_code: -1,
      syn: 0, ack: 0, fin: 0, rst: 0, data_bytes: 0, fin_on_data: 0
    }
    this.bad = false
    this.fins = new Set()
    this.rsts = new Set()
    this.hdr = new Uint8Array(12)
    this.have = 0
    this.skip = 0
    this.onGoAway = null
  }

  feed (chunk) {
    let i = 0
    while (i < chunk.length && !this.bad) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i)
        this.skip -= n
        i += n
        continue
      }
      const n = Math.min(12 - this.have, chunk.length - i)
      this.hdr.set(chunk.subarray(i, i + n), this.have)
      this.have += n
      i += n
      if (this.have === 12) {
        this.have = 0
        this.frame()
      }
    }
  }

  frame () {
    const h = this.hdr
    const type = h[1]
    const flags = (h[2] << 8) | h[3]
    const id = ((h[4] << 24) >>> 0) + (h[5] << 16) + (h[6] << 8) + h[7]
    const length = ((h[8] << 24) >>> 0) + (h[9] << 16) + (h[10] << 8) + h[11]
    const c = this.c
    if (h[0] !== 0 || type > 3) {
      this.bad = true
      return
    }
    c.total++
    if (type === 0 || type === 1) {
      if (type === 0) {
        c.data++
        c.data_bytes += length
        this.skip = length
        if (flags & 4) c.fin_on_data++
      } else {
        c.window_update++
      }
      if (flags & 1) c.syn++
      if (flags & 2) c.ack++
      if (flags & 4) { c.fin++; this.fins.add(id) }
      if (flags & 8) { c.rst++; this.rsts.add(id) }
    } else if (type === 2) {
      if (flags & 1) c.ping++
      if (flags & 2) c.pong++
    } else {
      c.goaway++
      c.goaway_code = length
      this.onGoAway?.(length)
    }
  }

  summary () {
    result({ frames: this.dir, ...this.c, bad: this.bad })
  }
}

const sniffIn = new Sniffer('in')
const sniffOut = new Sniffer('out')

// ---------------------------------------------------------------------------
// The connection: TCP socket <-> muxer, glued as a js-libp2p transport does

let done = false
function finish (code, line) {
  if (done) return
  done = true
  sniffIn.summary()
  sniffOut.summary()
  process.stdout.write(`${line}\n`, () => process.exit(code))
}

setTimeout(() => finish(2, 'DONE fail timeout'), opts.timeout).unref()

async function connectSocket () {
  if (opts.listen !== '') {
    const [host, port] = splitAddr(opts.listen)
    const server = net.createServer({ allowHalfOpen: true })
    await new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, resolve)
    })
    const a = server.address()
    process.stdout.write(`LISTENING ${a.address}:${a.port}\n`)
    const sock = await new Promise(resolve => server.once('connection', resolve))
    server.close()
    return sock
  }
  const [host, port] = splitAddr(opts.connect)
  const deadline = Date.now() + 5000
  for (;;) {
    try {
      return await new Promise((resolve, reject) => {
        const s = net.connect({ host, port, allowHalfOpen: true })
        s.once('connect', () => resolve(s))
        s.once('error', reject)
      })
    } catch (e) {
      if (e.code !== 'ECONNREFUSED' || Date.now() > deadline) throw e
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
}

function splitAddr (addr) {
  const at = addr.lastIndexOf(':')
  return [addr.slice(0, at), Number(addr.slice(at + 1))]
}

// The muxer reads from this source. Ending it early (the muxer does when it
// closes) stops reading from the socket without destroying it, so the TCP
// connection stays as the peer left it.
function socketSource (sock, session) {
  const queue = []
  let wake = null
  let ended = false
  let error = null
  const notify = () => { const w = wake; wake = null; w?.() }
  sock.on('data', chunk => {
    sniffIn.feed(chunk)
    queue.push(chunk)
    if (queue.length > 64) sock.pause()
    notify()
  })
  sock.on('end', () => { ended = true; notify() })
  sock.on('error', e => { error = e; ended = true; notify() })
  return (async function * () {
    try {
      for (;;) {
        if (queue.length > 0) {
          const chunk = queue.shift()
          if (queue.length < 16) sock.resume()
          yield chunk
          continue
        }
        if (error != null) throw error
        if (ended) {
          session.inputEnded('EOF')
          return
        }
        await new Promise(resolve => { wake = resolve })
      }
    } finally {
      sock.pause()
    }
  })()
}

async function pumpOutput (muxer, sock, session) {
  try {
    for await (const chunk of muxer.source) {
      const parts = chunk instanceof Uint8Array ? [chunk] : [...chunk]
      for (const p of parts) {
        sniffOut.feed(p)
        if (!sock.write(p)) {
          await new Promise(resolve => {
            sock.once('drain', resolve)
            sock.once('close', resolve)
          })
        }
      }
    }
  } catch (e) {
    log('output ended with', e.message)
  }
  session.outputEnded()
  if (!opts.keepTcp) sock.end()
}

class Session {
  constructor (sock) {
    this.sock = sock
    this.closedReason = null
    this.remoteGoAway = null
    this.waiters = []
    const logger = {
      forComponent (name) {
        const l = (...a) => { if (process.env.YAMUX_JS_PEER_TRACE) log(name, ...a) }
        l.error = (...a) => log(name, 'error:', ...a.map(x => x?.message ?? x))
        l.trace = (...a) => { if (process.env.YAMUX_JS_PEER_TRACE) log(name, ...a) }
        l.enabled = Boolean(process.env.YAMUX_JS_PEER_TRACE)
        return l
      }
    }
    const init = { maxStreamWindowSize: opts.window }
    if (opts.keepalive > 0) init.keepAliveInterval = opts.keepalive
    this.onStream = null
    this.muxer = yamux(init)({ logger }).createStreamMuxer({
      direction: opts.role === 'client' ? 'outbound' : 'inbound',
      onIncomingStream: s => this.onStream?.(s)
    })
    sniffIn.onGoAway = code => {
      // The sniffer sees the frame before the muxer does: report once the
      // muxer has handled it.
      setImmediate(() => {
        this.remoteGoAway = code
        let openErr = null
        try {
          this.muxer.newStream().abort(new Error('probe'))
        } catch (e) {
          openErr = e
        }
        result({ remote_goaway: true, code, open_err: errText(openErr) })
        this.changed()
      })
    }
    this.muxer.sink(socketSource(sock, this)).catch(e => log('sink ended with', e.message))
    pumpOutput(this.muxer, sock, this)
    sock.on('close', () => this.inputEnded('closed'))
  }

  inputEnded (why) {
    if (this.closedReason == null) this.closedReason = why
    this.changed()
  }

  outputEnded () {
    if (this.closedReason == null) this.closedReason = this.remoteGoAway != null ? 'goaway' : 'closed'
    this.changed()
  }

  get closed () { return this.closedReason != null }

  changed () {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  // Resolves when `cond()` holds, re-checked on every session change.
  async until (cond, ms = Infinity) {
    const deadline = performance.now() + ms
    while (!cond()) {
      const left = deadline - performance.now()
      if (left <= 0) return false
      await new Promise(resolve => {
        this.waiters.push(resolve)
        if (left !== Infinity) setTimeout(resolve, Math.min(left, 2 ** 31 - 1))
      })
    }
    return true
  }

  // Ends the session the way a js-libp2p user does (`muxer.close()`: streams
  // closed, then Go Away), then waits for the peer to close TCP.
  async close (linger = 2000) {
    await this.muxer.close().catch(e => log('close:', e.message))
    await this.until(() => this.sock.destroyed || this.sock.readableEnded, linger)
  }
}

// ---------------------------------------------------------------------------
// Stream helpers

function streamId (s) {
  return Number(s.id)
}

// Reads a stream to its end, calling `onChunk` for each piece.
async function readStream (s, onChunk) {
  try {
    for await (const list of s.source) {
      for (const b of list) onChunk(b)
    }
    return null
  } catch (e) {
    return e
  }
}

// `n` bytes of stream `k`'s pattern in chunks of random size 1..65536.
async function * patternChunks (k, n, rng, counter) {
  let off = 0
  while (off < n) {
    const len = Math.min(n - off, rng.range(1, 65536))
    const chunk = pattern(k, off, len)
    off += len
    counter.sent = off
    yield chunk
  }
}

// A queue that is also an async iterable: the echo's writer side.
function chunkQueue () {
  const items = []
  let ended = false
  let wake = null
  return {
    push (b) { items.push(b); const w = wake; wake = null; w?.() },
    end () { ended = true; const w = wake; wake = null; w?.() },
    async * [Symbol.asyncIterator] () {
      for (;;) {
        if (items.length > 0) { yield items.shift(); continue }
        if (ended) return
        await new Promise(resolve => { wake = resolve })
      }
    }
  }
}

// Receives into a record: count, checksum, first pattern mismatch.
function receiver (k) {
  const r = { bytes: 0, fnv: new Fnv(), mismatchAt: -1 }
  r.take = b => {
    if (r.mismatchAt < 0) {
      for (let j = 0; j < b.length; j++) {
        if (b[j] !== patternByte(k, r.bytes + j)) { r.mismatchAt = r.bytes + j; break }
      }
    }
    r.fnv.write(b)
    r.bytes += b.length
  }
  return r
}

// ---------------------------------------------------------------------------
// Accepting scenarios: echo, sink, respond

async function accepting (session, serve) {
  let served = 0
  let okStreams = 0
  let live = 0
  let index = 0
  const order = []
  session.onStream = s => {
    const i = index++
    live++
    serve(s, i).then(ok => {
      served++
      live--
      if (ok) okStreams++
      order.push(streamId(s))
      session.changed()
    })
  }
  await session.until(() =>
    (opts.streams > 0 && served >= opts.streams) ||
    session.closed ||
    (session.remoteGoAway != null && live === 0))
  const end = opts.streams > 0 && served >= opts.streams
    ? 'streams done'
    : session.closed ? 'session closed' : 'remote goaway'
  result({
    served,
    ok_streams: okStreams,
    end,
    session_err: session.closedReason ?? 'open',
    finish_order: order.join(',') || 'none'
  })
  await session.close()
  return served >= 1 && okStreams === served
}

function exactLength (n) {
  return opts.bytes < 0 || n === opts.bytes
}

async function serveEcho (s, index) {
  const t0 = performance.now()
  const id = streamId(s)
  const r = receiver(id)
  const q = chunkQueue()
  let echoed = 0
  let writeErr = null
  const writing = s.sink((async function * () {
    for await (const b of q) { echoed += b.length; yield b }
  })()).catch(e => { writeErr = e })
  const readErr = await readStream(s, b => { r.take(b); q.push(b) })
  q.end()
  await writing
  const fin = sniffIn.fins.has(id)
  const ok = fin && readErr == null && writeErr == null && echoed === r.bytes && exactLength(r.bytes)
  result({
    stream: id, index, bytes: r.bytes, echoed, fnv: r.fnv.hex(), fin,
    read_err: errText(readErr), write_err: errText(writeErr),
    elapsed_ms: Math.round(performance.now() - t0), ok
  })
  return ok
}

async function serveSink (s, index) {
  const t0 = performance.now()
  const id = streamId(s)
  const r = receiver(id)
  const readErr = await readStream(s, r.take)
  await s.closeWrite().catch(e => log('closeWrite', e.message))
  const fin = sniffIn.fins.has(id)
  const ok = fin && readErr == null && exactLength(r.bytes)
  result({
    stream: id, index, bytes: r.bytes, fnv: r.fnv.hex(), pattern: r.mismatchAt < 0, fin,
    read_err: errText(readErr), elapsed_ms: Math.round(performance.now() - t0), ok
  })
  return ok
}

// Reads to the peer's FIN, then writes `-bytes` (default 1 MiB) of pattern and FIN.
async function serveRespond (s, index) {
  const id = streamId(s)
  const r = receiver(id)
  const readErr = await readStream(s, r.take)
  const fin = sniffIn.fins.has(id)
  const n = opts.bytes < 0 ? 1 << 20 : opts.bytes
  const counter = { sent: 0 }
  let writeErr = null
  await s.sink(patternChunks(id, n, new Rng(opts.seed + index), counter)).catch(e => { writeErr = e })
  const ok = fin && readErr == null && writeErr == null && counter.sent === n
  result({
    stream: id, index, bytes: r.bytes, fin, sent: counter.sent,
    read_err: errText(readErr), write_err: errText(writeErr), ok
  })
  return ok
}

// ---------------------------------------------------------------------------
// Opening scenarios: open-echo, source, goaway, ping, idle

// Opens one stream, writes `n` bytes of pattern while reading concurrently,
// half-closes, reads to the end. Returns the RESULT fields.
async function openAndExchange (session, index, n) {
  const t0 = performance.now()
  let s
  try {
    s = session.muxer.newStream()
  } catch (e) {
    return { stream: 0, index, open_err: errText(e), ok: false }
  }
  const id = streamId(s)
  const r = receiver(id)
  const counter = { sent: 0 }
  let writeErr = null
  const writing = s.sink(patternChunks(id, n, new Rng(opts.seed + index), counter))
    .catch(e => { writeErr = e })
  const readErr = await readStream(s, r.take)
  await writing
  return {
    stream: id,
    index,
    bytes_sent: counter.sent,
    bytes_recv: r.bytes,
    recv_fnv: r.fnv.hex(),
    recv_pattern: r.mismatchAt < 0,
    mismatch_at: r.mismatchAt,
    fin: sniffIn.fins.has(id),
    open_err: 'none',
    write_err: errText(writeErr),
    read_err: errText(readErr),
    elapsed_ms: Math.round(performance.now() - t0)
  }
}

async function opening (session, echo) {
  const n = opts.bytes < 0 ? 1 << 20 : opts.bytes
  const count = Math.max(1, opts.streams)
  const lines = await Promise.all(Array.from({ length: count }, (_, k) => openAndExchange(session, k, n)))
  let all = true
  for (const l of lines) {
    if (l.ok === undefined) {
      const written = l.bytes_sent === n && l.write_err === 'none' && l.read_err === 'none' && l.fin
      l.ok = echo ? written && l.bytes_recv === n && l.recv_pattern : written
    }
    all = all && l.ok
    result(l)
  }
  await session.close()
  return all
}

// One echoed stream, then `muxer.close()`: js-libp2p's way to end a session,
// which sends Go Away (code 0) once its streams are closed.
async function goaway (session) {
  const n = opts.bytes < 0 ? 1 << 20 : opts.bytes
  const l = await openAndExchange(session, 0, n)
  l.ok = l.bytes_recv === n && l.recv_pattern && l.fin && l.read_err === 'none'
  result(l)
  await session.muxer.close()
  let openErr = null
  try {
    session.muxer.newStream()
  } catch (e) {
    openErr = e
  }
  result({ goaway_sent: true, open_after_goaway_err: errText(openErr) })
  await session.until(() => session.sock.readableEnded || session.sock.destroyed, opts.hold || 5000)
  result({ goaway_hold_ms: sinceStart(), session_closed: session.sock.readableEnded || session.sock.destroyed })
  return l.ok
}

async function ping (session) {
  let all = true
  for (let i = 0; i < opts.msgs; i++) {
    const t0 = performance.now()
    let err = null
    try {
      await session.muxer.ping()
    } catch (e) {
      err = e
      all = false
    }
    result({ ping: i, rtt_us: Math.round((performance.now() - t0) * 1000), err: errText(err) })
  }
  await session.close()
  return all
}

async function idle (session) {
  await session.until(() => session.closed, opts.hold || Infinity)
  result({
    session_closed: session.closed,
    reason: session.closedReason ?? 'hold expired',
    after_ms: sinceStart(),
    pings_out: sniffOut.c.ping,
    pongs_in: sniffIn.c.pong,
    pings_in: sniffIn.c.ping,
    pongs_out: sniffOut.c.pong
  })
  if (!session.closed) await session.close()
  return true
}

// ---------------------------------------------------------------------------

async function main () {
  const sock = await connectSocket()
  sock.setNoDelay(true)
  const session = new Session(sock)
  log(`yamux ${opts.role} session up, scenario=${opts.scenario}`)
  let ok
  switch (opts.scenario) {
    case 'echo': ok = await accepting(session, serveEcho); break
    case 'sink': ok = await accepting(session, serveSink); break
    case 'respond': ok = await accepting(session, serveRespond); break
    case 'open-echo': ok = await opening(session, true); break
    case 'source': ok = await opening(session, false); break
    case 'goaway': ok = await goaway(session); break
    case 'ping': ok = await ping(session); break
    case 'idle': ok = await idle(session); break
  }
  if (opts.keepTcp) {
    // Leave the connection as the muxer left it until the peer closes it.
    await session.until(() => sock.destroyed, opts.hold || 20_000)
  } else {
    sock.end()
  }
  finish(ok ? 0 : 1, ok ? 'DONE ok' : 'DONE fail scenario failed')
}

main().catch(e => {
  log('fatal:', e.stack ?? e)
  finish(1, `DONE fail ${quote(errText(e))}`)
})
