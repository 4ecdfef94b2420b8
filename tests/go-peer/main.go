// Command yamux-go-peer is a small interop test peer built on
// github.com/hashicorp/yamux (the Debian 2019 snapshot). Rust integration
// tests spawn it as a subprocess and talk to it over loopback TCP.
//
// Protocol with the test harness:
//   - stderr: human-readable log lines (also hashicorp's own "[ERR]"/"[WARN]").
//   - stdout: "LISTENING host:port" (with -listen), then zero or more
//     "RESULT key=value ..." lines, then exactly one final line
//     "DONE ok" (exit 0), "DONE fail <reason>" (exit 1), or
//     "DONE fail timeout" (exit 2, whole-program watchdog).
//
// See README.md in this directory for the scenarios and line formats.
//
// Notes about the hashicorp/yamux 2019 snapshot that shaped this program:
//   - Stream.Read returns io.EOF as soon as the stream is *locally* closed and
//     the receive buffer is momentarily empty, even if the peer has not sent
//     FIN yet. It also processes the flags of a frame (FIN) before copying the
//     frame's payload, so a FIN carried on a data frame can race a reader.
//     readUntilRemoteClose below therefore only trusts an EOF once the peer's
//     FIN (or RST) has been seen on the wire (by the frame sniffer), and then
//     uses a Ping round trip as a barrier before draining what is left.
//   - There is no public way to reset a stream (no Stream.Reset). The only
//     RSTs hashicorp sends are for SYNs beyond AcceptBacklog and for SYNs
//     received after a local GoAway. The "go-reset" scenario therefore
//     injects a raw RST frame into the TCP byte stream at a frame boundary
//     (see sniffConn.inject); hashicorp's own stream object never learns
//     about it.
//   - Session.Close does not send GoAway; it just closes the TCP connection.
package main

import (
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"math/rand"
	"net"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hashicorp/yamux"
)

// ---------------------------------------------------------------------------
// Output

var (
	outMu     sync.Mutex
	exiting   bool
	logger    = log.New(os.Stderr, "go-peer: ", log.Ltime|log.Lmicroseconds)
	gSniff    *sniffer
	startTime = time.Now()
)

// emit writes one line to stdout (os.Stdout is unbuffered, so it is flushed).
func emit(line string) {
	outMu.Lock()
	defer outMu.Unlock()
	if exiting {
		return
	}
	fmt.Fprintln(os.Stdout, line)
}

// finish prints the frame summaries and the DONE line and exits. Only the
// first caller wins; later callers block until the process is gone.
func finish(code int, done string) {
	outMu.Lock()
	if exiting {
		outMu.Unlock()
		select {}
	}
	exiting = true
	if gSniff != nil {
		for _, l := range gSniff.summaryLines() {
			fmt.Fprintln(os.Stdout, l)
		}
	}
	done = strings.ReplaceAll(strings.ReplaceAll(done, "\n", " "), "\r", " ")
	fmt.Fprintln(os.Stdout, done)
	logger.Printf("%s (exit %d)", done, code)
	os.Exit(code)
}

var bareRe = regexp.MustCompile(`^[A-Za-z0-9_.,:/+\-]+$`)

// fmtVal renders a RESULT value: errors are "none" or Go-quoted; strings are
// bare when they are simple tokens and Go-quoted otherwise.
func fmtVal(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return "none"
	case error:
		if x == nil {
			return "none"
		}
		return strconv.Quote(x.Error())
	case string:
		if bareRe.MatchString(x) {
			return x
		}
		return strconv.Quote(x)
	case time.Duration:
		return strconv.FormatInt(x.Milliseconds(), 10)
	default:
		return fmt.Sprint(x)
	}
}

// result emits "RESULT k1=v1 k2=v2 ..." from alternating keys and values.
// A nil error value must be passed as errVal(err) so it renders as "none".
func result(kv ...interface{}) {
	var b strings.Builder
	b.WriteString("RESULT")
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteByte(' ')
		b.WriteString(kv[i].(string))
		b.WriteByte('=')
		b.WriteString(fmtVal(kv[i+1]))
	}
	emit(b.String())
}

// errVal turns a possibly-nil error into something fmtVal renders as
// "none" (nil) or a quoted message.
func errVal(err error) interface{} {
	if err == nil {
		return nil
	}
	return err
}

func hex64(v uint64) string { return fmt.Sprintf("%016x", v) }

// ---------------------------------------------------------------------------
// Options

type options struct {
	listen, connect, role, scenario string
	streams                         int
	bytes                           int64
	window                          uint64
	backlog                         int
	keepalive                       time.Duration
	msgs, msgsize                   int
	seed                            int64
	timeout                         time.Duration
	hold                            time.Duration
	deadline                        time.Duration
	writeTimeout                    time.Duration
	plainRead                       bool
}

var scenarios = map[string]bool{
	"echo": true, "open-echo": true, "sink": true, "source": true, "respond": true,
	"slow-reader": true, "stop-after": true, "write-until-error": true,
	"reset": true, "go-reset": true, "goaway": true, "ping": true,
	"accept-none": true, "idle": true,
}

func parseFlags() *options {
	o := &options{}
	fs := flag.NewFlagSet("yamux-go-peer", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "", "listen on ADDR (e.g. 127.0.0.1:0), print LISTENING host:port, accept one TCP connection")
	fs.StringVar(&o.connect, "connect", "", "connect to ADDR")
	fs.StringVar(&o.role, "role", "", "yamux role: client or server")
	fs.StringVar(&o.scenario, "scenario", "", "scenario name (see README.md)")
	fs.IntVar(&o.streams, "streams", 0, "openers: number of streams (default 1); acceptors: stop after N streams (default 0 = until the session ends)")
	fs.Int64Var(&o.bytes, "bytes", -1, "bytes per stream (-1 = scenario default)")
	fs.Uint64Var(&o.window, "window", 256*1024, "Config.MaxStreamWindowSize (>= 262144)")
	fs.IntVar(&o.backlog, "backlog", 256, "Config.AcceptBacklog")
	fs.DurationVar(&o.keepalive, "keepalive", 0, "keep-alive interval (0 = disabled)")
	fs.IntVar(&o.msgs, "msgs", 10, "number of messages (stop-after, write-until-error) or pings (ping)")
	fs.IntVar(&o.msgsize, "msgsize", 1024, "message size in bytes")
	fs.Int64Var(&o.seed, "seed", 1, "seed for random write chunk sizes")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "whole-program watchdog")
	fs.DurationVar(&o.hold, "hold", 0, "how long to keep the session open (0 = scenario default: 5s for stop-after/accept-none/goaway, forever for idle)")
	fs.DurationVar(&o.deadline, "deadline", 10*time.Second, "per-write deadline (write-until-error), read deadline (reset)")
	fs.DurationVar(&o.writeTimeout, "write-timeout", 10*time.Second, "Config.ConnectionWriteTimeout (also the Ping timeout)")
	fs.BoolVar(&o.plainRead, "plain-read", false, "read as a plain application does: the first EOF ends the stream (no FIN check, no Ping barrier)")
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		finish(1, "DONE fail usage: "+err.Error())
	}
	if fs.NArg() != 0 {
		finish(1, "DONE fail usage: unexpected arguments "+strings.Join(fs.Args(), " "))
	}
	if (o.listen == "") == (o.connect == "") {
		finish(1, "DONE fail usage: exactly one of -listen or -connect is required")
	}
	if o.role != "client" && o.role != "server" {
		finish(1, "DONE fail usage: -role must be client or server")
	}
	if !scenarios[o.scenario] {
		finish(1, "DONE fail usage: unknown -scenario "+strconv.Quote(o.scenario))
	}
	if o.window < 256*1024 || o.window > 1<<31 {
		finish(1, "DONE fail usage: -window must be in [262144, 2^31]")
	}
	if o.backlog <= 0 {
		finish(1, "DONE fail usage: -backlog must be positive")
	}
	if o.msgsize <= 0 || o.msgs < 0 || o.streams < 0 {
		finish(1, "DONE fail usage: -msgsize must be positive, -msgs and -streams non-negative")
	}
	return o
}

// ---------------------------------------------------------------------------
// main

func main() {
	o := parseFlags()
	time.AfterFunc(o.timeout, func() {
		logger.Printf("watchdog: %v elapsed", o.timeout)
		finish(2, "DONE fail timeout")
	})

	conn, err := establish(o)
	if err != nil {
		finish(1, "DONE fail connect: "+err.Error())
	}
	logger.Printf("tcp connected local=%s remote=%s", conn.LocalAddr(), conn.RemoteAddr())

	sn := newSniffer()
	outMu.Lock()
	gSniff = sn
	outMu.Unlock()
	sc := &sniffConn{Conn: conn, sn: sn}

	cfg := yamux.DefaultConfig()
	cfg.AcceptBacklog = o.backlog
	cfg.EnableKeepAlive = o.keepalive > 0
	if o.keepalive > 0 {
		cfg.KeepAliveInterval = o.keepalive
	}
	cfg.ConnectionWriteTimeout = o.writeTimeout
	cfg.MaxStreamWindowSize = uint32(o.window)
	cfg.LogOutput = os.Stderr

	var sess *yamux.Session
	if o.role == "client" {
		sess, err = yamux.Client(sc, cfg)
	} else {
		sess, err = yamux.Server(sc, cfg)
	}
	if err != nil {
		finish(1, "DONE fail yamux: "+err.Error())
	}
	logger.Printf("yamux %s session up, scenario=%s", o.role, o.scenario)

	p := &peer{o: o, sess: sess, sn: sn, sc: sc, start: time.Now()}
	var ok bool
	var reason string
	switch o.scenario {
	case "echo":
		ok, reason = p.serve(p.echoStream)
	case "sink":
		ok, reason = p.serve(p.sinkStream)
	case "respond":
		ok, reason = p.serve(p.respondStream)
	case "slow-reader":
		ok, reason = p.serve(p.slowStream)
	case "go-reset":
		ok, reason = p.serve(p.goResetStream)
	case "open-echo":
		ok, reason = p.openMany(true)
	case "source":
		ok, reason = p.openMany(false)
	case "stop-after":
		ok, reason = p.stopAfter()
	case "write-until-error":
		ok, reason = p.writeUntilError()
	case "reset":
		ok, reason = p.reset()
	case "goaway":
		ok, reason = p.goAway()
	case "ping":
		ok, reason = p.ping()
	case "accept-none":
		ok, reason = p.acceptNone()
	case "idle":
		ok, reason = p.idle()
	}
	p.sess.Close()
	if ok {
		finish(0, "DONE ok")
	}
	if reason == "" {
		reason = "scenario failed"
	}
	finish(1, "DONE fail "+reason)
}

func establish(o *options) (net.Conn, error) {
	if o.listen != "" {
		ln, err := net.Listen("tcp", o.listen)
		if err != nil {
			return nil, err
		}
		emit("LISTENING " + ln.Addr().String())
		logger.Printf("listening on %s", ln.Addr())
		c, err := ln.Accept()
		ln.Close()
		return c, err
	}
	var lastErr error
	for t0 := time.Now(); time.Since(t0) < 5*time.Second; time.Sleep(50 * time.Millisecond) {
		c, err := net.Dial("tcp", o.connect)
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// ---------------------------------------------------------------------------
// Helpers shared by scenarios

type peer struct {
	o     *options
	sess  *yamux.Session
	sn    *sniffer
	sc    *sniffConn
	start time.Time
}

// bytesOr returns -bytes, or def when it was not given.
func (p *peer) bytesOr(def int64) int64 {
	if p.o.bytes < 0 {
		return def
	}
	return p.o.bytes
}

func (p *peer) holdOr(def time.Duration) time.Duration {
	if p.o.hold > 0 {
		return p.o.hold
	}
	return def
}

// patternByte is byte i of stream k: byte((i*31 + k*7 + i/251) & 0xff).
// k is the yamux stream ID, so the receiving side can verify it too.
func patternByte(k uint32, i int64) byte {
	return byte((i*31 + int64(k)*7 + i/251) & 0xff)
}

func fillPattern(b []byte, k uint32, off int64) {
	for j := range b {
		b[j] = patternByte(k, off+int64(j))
	}
}

// patternChecker tracks whether received bytes equal the pattern for id.
type patternChecker struct {
	id         uint32
	off        int64
	mismatchAt int64
}

func newPatternChecker(id uint32) *patternChecker {
	return &patternChecker{id: id, mismatchAt: -1}
}

func (c *patternChecker) feed(b []byte) {
	if c.mismatchAt < 0 {
		for j, x := range b {
			if x != patternByte(c.id, c.off+int64(j)) {
				c.mismatchAt = c.off + int64(j)
				break
			}
		}
	}
	c.off += int64(len(b))
}

// barrier waits for a Ping round trip. Any frame the peer sent before our
// ping reached it (in particular the payload of a frame carrying FIN) has
// been fully processed by hashicorp's receive loop when the pong arrives.
func (p *peer) barrier() {
	ch := make(chan error, 1)
	go func() {
		_, err := p.sess.Ping()
		ch <- err
	}()
	select {
	case err := <-ch:
		if err != nil && !p.sess.IsClosed() {
			logger.Printf("barrier ping failed: %v", err)
		}
	case <-time.After(time.Second):
		logger.Printf("barrier ping: no pong within 1s, continuing")
	}
}

var errSessionGone = errors.New("session closed before remote FIN")

// readUntilRemoteClose reads st until the peer's FIN (returns fin=true) or
// an error (stream reset, deadline, session gone). onData sees every byte in
// order; pace (optional) is called after each successful read. A zero
// deadline means none. Works around the snapshot's early EOF after a local
// Close (see the package comment).
func (p *peer) readUntilRemoteClose(st *yamux.Stream, bufSize int, deadline time.Time,
	pace func(), onData func([]byte)) (n int64, fin bool, err error) {
	id := st.StreamID()
	buf := make([]byte, bufSize)
	st.SetReadDeadline(deadline)
	sawFIN := false
	for {
		m, rerr := st.Read(buf)
		if m > 0 {
			onData(buf[:m])
			n += int64(m)
			if pace != nil {
				pace()
			}
		}
		if rerr == nil {
			continue
		}
		if rerr != io.EOF {
			return n, false, rerr
		}
		info := p.sn.stream(id)
		if p.o.plainRead {
			// What io.Copy and io.ReadAll do: trust the EOF. A FIN that
			// overtakes its frame's payload loses those bytes here.
			return n, info.finIn, nil
		}
		if info.finIn {
			if sawFIN {
				return n, true, nil
			}
			// First EOF after the FIN was seen on the wire: make sure the
			// FIN frame (and everything before it) has been fully processed
			// and drain whatever is still buffered.
			sawFIN = true
			p.barrier()
			continue
		}
		if p.sess.IsClosed() {
			if info.rstIn {
				return n, false, yamux.ErrConnectionReset
			}
			return n, false, errSessionGone
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return n, false, yamux.ErrTimeout
		}
		// Spurious EOF: we half-closed locally and the buffer is empty, but
		// the peer has not sent FIN yet (or its RST was seen on the wire but
		// not yet applied by yamux; the next Read then reports "connection
		// reset"). Poll.
		time.Sleep(time.Millisecond)
	}
}

// chunkQueue is an unbounded FIFO of byte slices (echo: the reader never
// blocks on the writer, so windows can't deadlock).
type chunkQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  [][]byte
	closed bool
}

func newChunkQueue() *chunkQueue {
	q := &chunkQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *chunkQueue) push(b []byte) {
	q.mu.Lock()
	q.items = append(q.items, b)
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *chunkQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *chunkQueue) pop() ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return nil, false
	}
	b := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	return b, true
}

// watchRemoteGoAway calls onSeen (in a goroutine) once the peer's GoAway has
// been processed by yamux, after reporting
// "RESULT remote_goaway=true code=C open_err=...".
func (p *peer) watchRemoteGoAway(onSeen func()) {
	go func() {
		select {
		case <-p.sn.goawayIn:
		case <-p.sess.CloseChan():
			return
		}
		t0 := time.Now()
		set, known := remoteGoAwaySet(p.sess)
		for known && !set && !p.sess.IsClosed() && time.Since(t0) < time.Second {
			time.Sleep(time.Millisecond)
			set, _ = remoteGoAwaySet(p.sess)
		}
		code := p.sn.goawayCodeIn()
		var openErr interface{} = "unknown"
		if set || p.sess.IsClosed() {
			// With remoteGoAway set (or the session gone) OpenStream fails
			// locally without sending anything.
			st, err := p.sess.OpenStream()
			if err == nil {
				openErr = "none"
				st.Close()
			} else {
				openErr = err
			}
		}
		logger.Printf("remote GoAway (code %d) seen; OpenStream -> %v", code, openErr)
		result("remote_goaway", true, "code", code, "open_err", openErr)
		if onSeen != nil {
			onSeen()
		}
	}()
}

// sessionEnd describes why the session closed (or "open").
func (p *peer) sessionEnd() string {
	if !p.sess.IsClosed() {
		return "open"
	}
	return shutdownReason(p.sess)
}

// ---------------------------------------------------------------------------
// Accepting scenarios: echo, sink, slow-reader, go-reset

// serve accepts streams and runs handler on each concurrently until the
// session closes, or -streams streams were handled, or the peer sent GoAway
// and every stream finished. ok = at least one stream and all handled ok.
func (p *peer) serve(handler func(idx int, st *yamux.Stream) bool) (bool, string) {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	active, handled, okN := 0, 0, 0
	var order []string
	stop := make(chan string, 8)
	signal := func(s string) {
		select {
		case stop <- s:
		default:
		}
	}

	go func() {
		for idx := 0; ; idx++ {
			st, err := p.sess.AcceptStream()
			if err != nil {
				signal("session closed")
				return
			}
			logger.Printf("accepted stream %d (index %d)", st.StreamID(), idx)
			mu.Lock()
			active++
			mu.Unlock()
			go func(idx int, st *yamux.Stream) {
				ok := handler(idx, st)
				mu.Lock()
				active--
				handled++
				if ok {
					okN++
				}
				order = append(order, strconv.FormatUint(uint64(st.StreamID()), 10))
				if p.o.streams > 0 && handled >= p.o.streams {
					signal("stream limit reached")
				}
				cond.Broadcast()
				mu.Unlock()
			}(idx, st)
		}
	}()

	p.watchRemoteGoAway(func() {
		stable := 0
		for !p.sess.IsClosed() {
			time.Sleep(10 * time.Millisecond)
			mu.Lock()
			idle := active == 0
			mu.Unlock()
			if idle && acceptQueued(p.sess) <= 0 {
				stable++
			} else {
				stable = 0
			}
			if stable >= 3 {
				signal("remote goaway and all streams finished")
				return
			}
		}
	})

	reason := <-stop
	logger.Printf("serve: %s; waiting for active streams", reason)
	mu.Lock()
	for active > 0 {
		cond.Wait()
	}
	h, k := handled, okN
	fo := strings.Join(order, ",")
	mu.Unlock()
	sessErr := p.sessionEnd()
	if fo == "" {
		fo = "none"
	}
	result("served", h, "ok_streams", k, "end", reason, "session_err", sessErr, "finish_order", fo)
	if h == 0 {
		return false, "no streams (" + reason + ")"
	}
	if k != h {
		return false, fmt.Sprintf("%d of %d streams failed", h-k, h)
	}
	return true, ""
}

// echoStream: copy every byte back as it arrives; after the peer's FIN and
// once everything was written back, Close (our FIN).
//
// RESULT stream=ID index=I bytes=N echoed=E fnv=HEX fin=B read_err=E write_err=E elapsed_ms=T ok=B
func (p *peer) echoStream(idx int, st *yamux.Stream) bool {
	id := st.StreamID()
	t0 := time.Now()
	q := newChunkQueue()
	var written int64
	var werr error
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		for {
			b, ok := q.pop()
			if !ok {
				return
			}
			if werr != nil {
				continue
			}
			n, err := st.Write(b)
			written += int64(n)
			if err != nil {
				werr = err
				logger.Printf("stream %d: echo write failed: %v", id, err)
			}
		}
	}()
	h := fnv.New64a()
	n, fin, rerr := p.readUntilRemoteClose(st, 32*1024, time.Time{}, nil, func(b []byte) {
		h.Write(b)
		q.push(append([]byte(nil), b...))
	})
	q.close()
	<-wdone
	st.Close()
	want := p.bytesOr(-1)
	ok := fin && rerr == nil && werr == nil && written == n && (want < 0 || n == want)
	result("stream", id, "index", idx, "bytes", n, "echoed", written, "fnv", hex64(h.Sum64()),
		"fin", fin, "read_err", errVal(rerr), "write_err", errVal(werr),
		"elapsed_ms", time.Since(t0), "ok", ok)
	return ok
}

// sinkStream: read until the peer's FIN, report count + FNV-1a, Close.
//
// RESULT stream=ID index=I bytes=N fnv=HEX pattern=B fin=B read_err=E elapsed_ms=T ok=B
func (p *peer) sinkStream(idx int, st *yamux.Stream) bool {
	id := st.StreamID()
	t0 := time.Now()
	h := fnv.New64a()
	pc := newPatternChecker(id)
	n, fin, rerr := p.readUntilRemoteClose(st, 32*1024, time.Time{}, nil, func(b []byte) {
		h.Write(b)
		pc.feed(b)
	})
	st.Close()
	want := p.bytesOr(-1)
	ok := fin && rerr == nil && (want < 0 || n == want)
	result("stream", id, "index", idx, "bytes", n, "fnv", hex64(h.Sum64()), "pattern", pc.mismatchAt < 0,
		"fin", fin, "read_err", errVal(rerr), "elapsed_ms", time.Since(t0), "ok", ok)
	return ok
}

// respondStream: read until the peer's FIN, then write -bytes (default
// 1 MiB) of pattern in random chunks (seed -seed + index), then Close. All
// of it is written after the peer's FIN.
//
// RESULT stream=ID index=I bytes=N fin=B sent=S read_err=E write_err=E ok=B
func (p *peer) respondStream(idx int, st *yamux.Stream) bool {
	id := st.StreamID()
	n, fin, rerr := p.readUntilRemoteClose(st, 32*1024, time.Time{}, nil, func([]byte) {})
	want := p.bytesOr(1 << 20)
	rng := rand.New(rand.NewSource(p.o.seed + int64(idx)))
	buf := make([]byte, 65536)
	var sent int64
	var werr error
	for sent < want && werr == nil {
		sz := int64(1 + rng.Intn(65536))
		if sz > want-sent {
			sz = want - sent
		}
		fillPattern(buf[:sz], id, sent)
		var w int
		w, werr = st.Write(buf[:sz])
		sent += int64(w)
	}
	st.Close()
	ok := fin && rerr == nil && werr == nil && sent == want
	result("stream", id, "index", idx, "bytes", n, "fin", fin, "sent", sent,
		"read_err", errVal(rerr), "write_err", errVal(werr), "ok", ok)
	return ok
}

// slowStream: the first accepted stream sleeps 20ms after every read of at
// most 4 KiB; the others read at full speed (same 4 KiB buffer).
//
// RESULT stream=ID index=I slow=B bytes=N fnv=HEX fin=B read_err=E first_byte_ms=T done_at_ms=T elapsed_ms=T ok=B
func (p *peer) slowStream(idx int, st *yamux.Stream) bool {
	id := st.StreamID()
	t0 := time.Now()
	slow := idx == 0
	var pace func()
	if slow {
		pace = func() { time.Sleep(20 * time.Millisecond) }
	}
	h := fnv.New64a()
	firstByte := int64(-1)
	n, fin, rerr := p.readUntilRemoteClose(st, 4096, time.Time{}, pace, func(b []byte) {
		if firstByte < 0 {
			firstByte = time.Since(t0).Milliseconds()
		}
		h.Write(b)
	})
	st.Close()
	want := p.bytesOr(-1)
	ok := fin && rerr == nil && (want < 0 || n == want)
	result("stream", id, "index", idx, "slow", slow, "bytes", n, "fnv", hex64(h.Sum64()),
		"fin", fin, "read_err", errVal(rerr), "first_byte_ms", firstByte,
		"done_at_ms", time.Since(p.start), "elapsed_ms", time.Since(t0), "ok", ok)
	return ok
}

// goResetStream: read -bytes (default 1000) bytes, then inject a raw RST
// frame for the stream (hashicorp has no Stream.Reset). The local stream
// object is abandoned, not closed.
//
// RESULT stream=ID index=I read=N read_err=E rst_injected=B inject_err=E ok=B
func (p *peer) goResetStream(idx int, st *yamux.Stream) bool {
	id := st.StreamID()
	want := p.bytesOr(1000)
	buf := make([]byte, 32*1024)
	var n int64
	var rerr error
	st.SetReadDeadline(time.Now().Add(p.o.deadline))
	for n < want {
		lim := int64(len(buf))
		if want-n < lim {
			lim = want - n
		}
		m, err := st.Read(buf[:lim])
		n += int64(m)
		if err != nil {
			rerr = err
			break
		}
	}
	ierr := p.sc.inject(rstFrame(id))
	logger.Printf("stream %d: read %d bytes, injected RST (err=%v)", id, n, ierr)
	ok := n == want && ierr == nil
	result("stream", id, "index", idx, "read", n, "read_err", errVal(rerr),
		"rst_injected", ierr == nil, "inject_err", errVal(ierr), "ok", ok)
	return ok
}

// ---------------------------------------------------------------------------
// Opening scenarios

type streamOutcome struct {
	id                  uint32
	sent, recv          int64
	fnv                 uint64
	mismatchAt          int64
	fin                 bool
	openErr, wErr, rErr error
	elapsed             time.Duration
}

// driveStream writes n pattern bytes in random chunks (1..65536) while
// concurrently reading; after writing it half-closes (Close) and keeps
// reading until the peer's FIN. midway (optional) runs once after half of
// the bytes were written.
func (p *peer) driveStream(st *yamux.Stream, index int, n int64, midway func()) streamOutcome {
	id := st.StreamID()
	t0 := time.Now()
	out := streamOutcome{id: id}
	rng := rand.New(rand.NewSource(p.o.seed + int64(index)))
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		buf := make([]byte, 65536)
		called := false
		for out.sent < n {
			if midway != nil && !called && out.sent >= n/2 {
				midway()
				called = true
			}
			sz := int64(1 + rng.Intn(65536))
			if sz > n-out.sent {
				sz = n - out.sent
			}
			fillPattern(buf[:sz], id, out.sent)
			w, err := st.Write(buf[:sz])
			out.sent += int64(w)
			if err != nil {
				out.wErr = err
				logger.Printf("stream %d: write failed after %d bytes: %v", id, out.sent, err)
				break
			}
		}
		if midway != nil && !called {
			midway()
		}
		st.Close()
	}()
	h := fnv.New64a()
	pc := newPatternChecker(id)
	recv, fin, rerr := p.readUntilRemoteClose(st, 32*1024, time.Time{}, nil, func(b []byte) {
		h.Write(b)
		pc.feed(b)
	})
	<-wdone
	out.recv, out.fin, out.rErr = recv, fin, rerr
	out.fnv = h.Sum64()
	out.mismatchAt = pc.mismatchAt
	out.elapsed = time.Since(t0)
	return out
}

// openMany: open-echo (verify=true) and source (verify=false).
//
// RESULT stream=ID index=K bytes_sent=N bytes_recv=R recv_fnv=HEX recv_pattern=B mismatch_at=I fin=B open_err=E write_err=E read_err=E elapsed_ms=T ok=B
func (p *peer) openMany(verify bool) (bool, string) {
	count := p.o.streams
	if count == 0 {
		count = 1
	}
	n := p.bytesOr(1 << 20)
	var wg sync.WaitGroup
	var failed int32
	for k := 0; k < count; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			var o streamOutcome
			st, err := p.sess.OpenStream()
			if err != nil {
				o = streamOutcome{openErr: err, mismatchAt: -1}
				logger.Printf("open stream %d failed: %v", k, err)
			} else {
				logger.Printf("opened stream %d (index %d)", st.StreamID(), k)
				o = p.driveStream(st, k, n, nil)
			}
			ok := o.openErr == nil && o.wErr == nil && o.rErr == nil && o.fin && o.sent == n
			if verify {
				ok = ok && o.recv == n && o.mismatchAt < 0
			}
			if !ok {
				atomic.AddInt32(&failed, 1)
			}
			result("stream", o.id, "index", k, "bytes_sent", o.sent, "bytes_recv", o.recv,
				"recv_fnv", hex64(o.fnv), "recv_pattern", o.mismatchAt < 0, "mismatch_at", o.mismatchAt,
				"fin", o.fin, "open_err", errVal(o.openErr), "write_err", errVal(o.wErr),
				"read_err", errVal(o.rErr), "elapsed_ms", o.elapsed, "ok", ok)
		}(k)
	}
	wg.Wait()
	if f := atomic.LoadInt32(&failed); f > 0 {
		return false, fmt.Sprintf("%d of %d streams failed", f, count)
	}
	return true, ""
}

// goAway: one stream with -bytes of pattern; GoAway() halfway through the
// writes; finish the stream and verify the echo; then try OpenStream (a
// local GoAway does NOT stop hashicorp from opening) and probe that stream;
// then keep the session for -hold (default 5s) or until the peer closes it,
// so the peer can try to open streams (hashicorp RSTs SYNs after a local
// GoAway).
//
// RESULT stream=ID bytes_sent=N bytes_recv=R mismatch_at=I fin=B goaway_err=E write_err=E read_err=E ok=B
// RESULT open_after_goaway_err=E [probe_stream=ID probe_write_err=E probe_bytes_recv=N probe_fin=B probe_read_err=E]
// RESULT goaway_hold_ms=T session_closed=B session_err=S syn_in=N refused=M
func (p *peer) goAway() (bool, string) {
	n := p.bytesOr(1 << 20)
	st, err := p.sess.OpenStream()
	if err != nil {
		result("stream", 0, "open_err", err, "ok", false)
		return false, "open: " + err.Error()
	}
	var gerr error
	gaSent := false
	o := p.driveStream(st, 0, n, func() {
		gerr = p.sess.GoAway()
		gaSent = true
		logger.Printf("sent GoAway (err=%v)", gerr)
	})
	ok := gaSent && gerr == nil && o.wErr == nil && o.rErr == nil && o.fin && o.sent == n &&
		o.recv == n && o.mismatchAt < 0
	result("stream", o.id, "bytes_sent", o.sent, "bytes_recv", o.recv, "mismatch_at", o.mismatchAt,
		"fin", o.fin, "goaway_err", errVal(gerr), "write_err", errVal(o.wErr),
		"read_err", errVal(o.rErr), "ok", ok)

	st2, err := p.sess.OpenStream()
	if err != nil {
		result("open_after_goaway_err", err)
	} else {
		id2 := st2.StreamID()
		probe := make([]byte, 16)
		fillPattern(probe, id2, 0)
		_, werr := st2.Write(probe)
		st2.Close()
		pn, pfin, perr := p.readUntilRemoteClose(st2, 4096, time.Now().Add(2*time.Second), nil, func([]byte) {})
		result("open_after_goaway_err", nil, "probe_stream", id2, "probe_write_err", errVal(werr),
			"probe_bytes_recv", pn, "probe_fin", pfin, "probe_read_err", errVal(perr))
	}

	hold := p.holdOr(5 * time.Second)
	t0 := time.Now()
	closed := false
	select {
	case <-p.sess.CloseChan():
		closed = true
	case <-time.After(hold):
	}
	syn, refused := p.sn.refusedStreams()
	result("goaway_hold_ms", time.Since(t0), "session_closed", closed, "session_err", p.sessionEnd(),
		"syn_in", syn, "refused", refused)
	if !ok {
		return false, "goaway stream failed"
	}
	return true, ""
}

// stopAfter (hashicorp/yamux#133, Go as the reader): accept one stream,
// read -msgs messages of -msgsize bytes, Close (FIN), then read nothing
// more and keep the session for -hold (default 5s) or until it closes.
//
// RESULT stream=ID msgs_read=K bytes_read=N read_err=E
// RESULT stream=ID after_close_bytes_in=N peer_fin=B peer_rst=B session_closed=B held_ms=T
func (p *peer) stopAfter() (bool, string) {
	st, err := p.sess.AcceptStream()
	if err != nil {
		result("stream", 0, "accept_err", err)
		return false, "accept: " + err.Error()
	}
	id := st.StreamID()
	want := int64(p.o.msgs) * int64(p.o.msgsize)
	buf := make([]byte, 32*1024)
	var n int64
	var rerr error
	for n < want {
		lim := int64(len(buf))
		if want-n < lim {
			lim = want - n
		}
		m, err := st.Read(buf[:lim])
		n += int64(m)
		if err != nil {
			rerr = err
			break
		}
	}
	result("stream", id, "msgs_read", n/int64(p.o.msgsize), "bytes_read", n, "read_err", errVal(rerr))
	st.Close()
	logger.Printf("stream %d: read %d bytes, closed; holding without reading", id, n)
	hold := p.holdOr(5 * time.Second)
	t0 := time.Now()
	closed := false
	select {
	case <-p.sess.CloseChan():
		closed = true
	case <-time.After(hold):
	}
	info := p.sn.stream(id)
	result("stream", id, "after_close_bytes_in", info.dataInAfterFinOut, "peer_fin", info.finIn,
		"peer_rst", info.rstIn, "session_closed", closed, "held_ms", time.Since(t0))
	if n != want {
		return false, fmt.Sprintf("read %d of %d bytes", n, want)
	}
	return true, ""
}

// writeUntilError (Go as the writer facing a reader that stops): write up
// to -msgs messages of -msgsize bytes, each with SetWriteDeadline(now +
// -deadline), stop at the first error. Always ok (the test asserts on
// RESULT), unless the stream cannot be opened.
//
// RESULT stream=ID writes_ok=K msgs=N all=B bytes_written=W write_err=E after_ms=T stall_ms=S peer_fin=B peer_rst=B
func (p *peer) writeUntilError() (bool, string) {
	st, err := p.sess.OpenStream()
	if err != nil {
		result("stream", 0, "open_err", err)
		return false, "open: " + err.Error()
	}
	id := st.StreamID()
	msg := make([]byte, p.o.msgsize)
	var written int64
	writesOK := 0
	var werr error
	t0 := time.Now()
	var stall time.Duration
	for i := 0; i < p.o.msgs; i++ {
		fillPattern(msg, id, written)
		st.SetWriteDeadline(time.Now().Add(p.o.deadline))
		tw := time.Now()
		m, err := st.Write(msg)
		written += int64(m)
		if err != nil {
			werr = err
			stall = time.Since(tw)
			break
		}
		writesOK++
	}
	after := time.Since(t0)
	info := p.sn.stream(id)
	logger.Printf("stream %d: %d writes ok, err=%v after %v", id, writesOK, werr, after)
	result("stream", id, "writes_ok", writesOK, "msgs", p.o.msgs, "all", werr == nil,
		"bytes_written", written, "write_err", errVal(werr), "after_ms", after,
		"stall_ms", stall, "peer_fin", info.finIn, "peer_rst", info.rstIn)
	st.Close()
	return true, ""
}

// reset: open a stream, write -bytes (default 1000), then read until the
// stream ends and report how. ok iff a write or the read reports
// "connection reset" (yamux.ErrConnectionReset).
//
// RESULT stream=ID write_err=E read_bytes=N read_fin=B read_err=E peer_rst=B ok=B
func (p *peer) reset() (bool, string) {
	st, err := p.sess.OpenStream()
	if err != nil {
		result("stream", 0, "open_err", err)
		return false, "open: " + err.Error()
	}
	id := st.StreamID()
	buf := make([]byte, p.bytesOr(1000))
	fillPattern(buf, id, 0)
	_, werr := st.Write(buf)
	n, fin, rerr := p.readUntilRemoteClose(st, 32*1024, time.Now().Add(p.o.deadline), nil, func([]byte) {})
	info := p.sn.stream(id)
	ok := werr == yamux.ErrConnectionReset || rerr == yamux.ErrConnectionReset
	result("stream", id, "write_err", errVal(werr), "read_bytes", n, "read_fin", fin,
		"read_err", errVal(rerr), "peer_rst", info.rstIn, "ok", ok)
	st.Close()
	if !ok {
		return false, "stream was not reset"
	}
	return true, ""
}

// ping: -msgs pings.
//
// RESULT ping=I rtt_us=N err=E   (one per ping)
func (p *peer) ping() (bool, string) {
	failed := 0
	for i := 0; i < p.o.msgs; i++ {
		rtt, err := p.sess.Ping()
		if err != nil {
			failed++
		}
		result("ping", i, "rtt_us", rtt.Microseconds(), "err", errVal(err))
	}
	if failed > 0 {
		return false, fmt.Sprintf("%d of %d pings failed", failed, p.o.msgs)
	}
	return true, ""
}

// acceptNone: never Accept; hashicorp RSTs SYNs beyond -backlog. Hold for
// -hold (default 5s) or until the session closes.
//
// RESULT backlog=N syn_in=S refused=R queued=Q session_closed=B session_err=S held_ms=T
func (p *peer) acceptNone() (bool, string) {
	hold := p.holdOr(5 * time.Second)
	t0 := time.Now()
	closed := false
	select {
	case <-p.sess.CloseChan():
		closed = true
	case <-time.After(hold):
	}
	syn, refused := p.sn.refusedStreams()
	result("backlog", p.o.backlog, "syn_in", syn, "refused", refused, "queued", acceptQueued(p.sess),
		"session_closed", closed, "session_err", p.sessionEnd(), "held_ms", time.Since(t0))
	return true, ""
}

// idle: keep the session open (keep-alive per -keepalive) until it closes
// or -hold expires (default: forever, i.e. until the watchdog).
//
// RESULT session_closed=B reason=S after_ms=T pings_out=N pongs_in=N pings_in=N pongs_out=N
func (p *peer) idle() (bool, string) {
	p.watchRemoteGoAway(nil)
	var holdC <-chan time.Time
	if p.o.hold > 0 {
		holdC = time.After(p.o.hold)
	}
	closed := false
	select {
	case <-p.sess.CloseChan():
		closed = true
	case <-holdC:
	}
	reason := "hold expired"
	if closed {
		reason = shutdownReason(p.sess)
	}
	in, out := p.sn.dirStats()
	result("session_closed", closed, "reason", reason, "after_ms", time.Since(p.start),
		"pings_out", out.ping, "pongs_in", in.pong, "pings_in", in.ping, "pongs_out", out.pong)
	return true, ""
}

// ---------------------------------------------------------------------------
// Frame sniffer: parses both directions of the TCP byte stream.

const (
	typeData         = 0
	typeWindowUpdate = 1
	typePing         = 2
	typeGoAway       = 3

	flagSYN = 1
	flagACK = 2
	flagFIN = 4
	flagRST = 8
)

type dirStats struct {
	frames, data, windowUpdate, ping, pong, goaway uint64
	syn, ack, fin, rst                             uint64
	dataBytes, finOnData                           uint64
	goawayCode                                     int64
	bad                                            bool
}

type streamInfo struct {
	synIn, ackIn, finIn, rstIn     bool
	synOut, ackOut, finOut, rstOut bool
	dataIn, dataOut                uint64
	dataInAfterFinOut              uint64
}

type frameParser struct {
	hdr  [12]byte
	have int
	skip uint64
	bad  bool
}

type sniffer struct {
	mu         sync.Mutex
	in, out    dirStats
	pin, pout  frameParser
	streams    map[uint32]*streamInfo
	goawayIn   chan struct{}
	goawayOnce sync.Once
}

func newSniffer() *sniffer {
	s := &sniffer{streams: map[uint32]*streamInfo{}, goawayIn: make(chan struct{})}
	s.in.goawayCode = -1
	s.out.goawayCode = -1
	return s
}

func (s *sniffer) feed(in bool, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &s.pout
	if in {
		p = &s.pin
	}
	for len(b) > 0 && !p.bad {
		if p.skip > 0 {
			k := uint64(len(b))
			if k > p.skip {
				k = p.skip
			}
			b = b[k:]
			p.skip -= k
			continue
		}
		c := copy(p.hdr[p.have:], b)
		p.have += c
		b = b[c:]
		if p.have < len(p.hdr) {
			break
		}
		p.have = 0
		h := p.hdr
		if h[0] != 0 || h[1] > typeGoAway {
			p.bad = true
			if in {
				s.in.bad = true
			} else {
				s.out.bad = true
			}
			break
		}
		length := uint32(h[8])<<24 | uint32(h[9])<<16 | uint32(h[10])<<8 | uint32(h[11])
		if h[1] == typeData {
			p.skip = uint64(length)
		}
		s.record(in, h[1], uint16(h[2])<<8|uint16(h[3]),
			uint32(h[4])<<24|uint32(h[5])<<16|uint32(h[6])<<8|uint32(h[7]), length)
	}
}

func (s *sniffer) record(in bool, typ uint8, flags uint16, id uint32, length uint32) {
	d := &s.out
	if in {
		d = &s.in
	}
	d.frames++
	switch typ {
	case typePing:
		if flags&flagACK != 0 {
			d.pong++
		} else {
			d.ping++
		}
		return
	case typeGoAway:
		d.goaway++
		d.goawayCode = int64(length)
		if in {
			s.goawayOnce.Do(func() { close(s.goawayIn) })
		}
		return
	case typeData:
		d.data++
		d.dataBytes += uint64(length)
		if flags&flagFIN != 0 {
			d.finOnData++
		}
	case typeWindowUpdate:
		d.windowUpdate++
	}
	st := s.streams[id]
	if st == nil {
		st = &streamInfo{}
		s.streams[id] = st
	}
	if flags&flagSYN != 0 {
		d.syn++
	}
	if flags&flagACK != 0 {
		d.ack++
	}
	if flags&flagFIN != 0 {
		d.fin++
	}
	if flags&flagRST != 0 {
		d.rst++
	}
	if in {
		st.synIn = st.synIn || flags&flagSYN != 0
		st.ackIn = st.ackIn || flags&flagACK != 0
		st.finIn = st.finIn || flags&flagFIN != 0
		st.rstIn = st.rstIn || flags&flagRST != 0
		if typ == typeData {
			st.dataIn += uint64(length)
			if st.finOut {
				st.dataInAfterFinOut += uint64(length)
			}
		}
	} else {
		st.synOut = st.synOut || flags&flagSYN != 0
		st.ackOut = st.ackOut || flags&flagACK != 0
		st.finOut = st.finOut || flags&flagFIN != 0
		st.rstOut = st.rstOut || flags&flagRST != 0
		if typ == typeData {
			st.dataOut += uint64(length)
		}
	}
}

func (s *sniffer) stream(id uint32) streamInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[id]; st != nil {
		return *st
	}
	return streamInfo{}
}

func (s *sniffer) goawayCodeIn() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.in.goawayCode
}

func (s *sniffer) dirStats() (in, out dirStats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.in, s.out
}

// refusedStreams counts streams the peer opened (SYN in) and how many of
// those we answered with RST (backlog overflow or local GoAway).
func (s *sniffer) refusedStreams() (syn, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.streams {
		if st.synIn {
			syn++
			if st.rstOut {
				refused++
			}
		}
	}
	return
}

// summaryLines: "RESULT frames=in|out total=N data=N window_update=N ping=N
// pong=N goaway=N goaway_code=C syn=N ack=N fin=N rst=N data_bytes=N
// fin_on_data=N bad=B"
func (s *sniffer) summaryLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lines []string
	for _, x := range []struct {
		name string
		d    dirStats
	}{{"in", s.in}, {"out", s.out}} {
		d := x.d
		lines = append(lines, fmt.Sprintf("RESULT frames=%s total=%d data=%d window_update=%d ping=%d pong=%d goaway=%d goaway_code=%d syn=%d ack=%d fin=%d rst=%d data_bytes=%d fin_on_data=%d bad=%t",
			x.name, d.frames, d.data, d.windowUpdate, d.ping, d.pong, d.goaway, d.goawayCode,
			d.syn, d.ack, d.fin, d.rst, d.dataBytes, d.finOnData, d.bad))
	}
	return lines
}

func (s *sniffer) outAtBoundary() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pout.have == 0 && s.pout.skip == 0
}

// sniffConn wraps the TCP connection handed to yamux: it feeds both
// directions to the sniffer and can inject raw frames between yamux's
// frames.
type sniffConn struct {
	net.Conn
	sn      *sniffer
	wmu     sync.Mutex
	pending [][]byte
}

func (c *sniffConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.sn.feed(true, b[:n])
	}
	return n, err
}

func (c *sniffConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.sn.feed(false, b[:n])
	}
	if err == nil && len(c.pending) > 0 {
		if ferr := c.flushLocked(); ferr != nil {
			logger.Printf("injected frame write failed: %v", ferr)
		}
	}
	return n, err
}

// inject queues a raw frame; it is written immediately if the outgoing
// byte stream is at a frame boundary, else right after yamux's current
// frame is complete.
func (c *sniffConn) inject(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.pending = append(c.pending, frame)
	return c.flushLocked()
}

func (c *sniffConn) flushLocked() error {
	if !c.sn.outAtBoundary() {
		return nil
	}
	for len(c.pending) > 0 {
		f := c.pending[0]
		n, err := c.Conn.Write(f)
		if n > 0 {
			c.sn.feed(false, f[:n])
		}
		if err != nil {
			return err
		}
		c.pending = c.pending[1:]
	}
	return nil
}

// rstFrame is what hashicorp itself sends to refuse a stream: a window
// update with the RST flag and length 0.
func rstFrame(id uint32) []byte {
	return []byte{0, typeWindowUpdate, 0, flagRST,
		byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id), 0, 0, 0, 0}
}

// ---------------------------------------------------------------------------
// Introspection of unexported hashicorp Session fields (2019 snapshot).
// Each helper degrades gracefully if the field is missing.

func sessField(s *yamux.Session, name string) (reflect.Value, bool) {
	f := reflect.ValueOf(s).Elem().FieldByName(name)
	return f, f.IsValid()
}

// remoteGoAwaySet reports Session.remoteGoAway == 1 (set when a normal
// GoAway was processed by the receive loop).
func remoteGoAwaySet(s *yamux.Session) (set, known bool) {
	f, ok := sessField(s, "remoteGoAway")
	if !ok || f.Kind() != reflect.Int32 {
		return false, false
	}
	return atomic.LoadInt32((*int32)(unsafe.Pointer(f.UnsafeAddr()))) == 1, true
}

// shutdownReason returns Session.shutdownErr as a string; call only after
// CloseChan is closed (it is written before the channel is closed).
func shutdownReason(s *yamux.Session) string {
	f, ok := sessField(s, "shutdownErr")
	if !ok || f.Type() != reflect.TypeOf((*error)(nil)).Elem() {
		return "unknown"
	}
	e := *(*error)(unsafe.Pointer(f.UnsafeAddr()))
	if e == nil {
		return "none"
	}
	return e.Error()
}

// acceptQueued returns len(Session.acceptCh): streams received (SYN) but
// not yet returned by AcceptStream; -1 if unknown.
func acceptQueued(s *yamux.Session) int {
	f, ok := sessField(s, "acceptCh")
	if !ok || f.Kind() != reflect.Chan {
		return -1
	}
	return f.Len()
}
