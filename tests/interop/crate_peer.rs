//! The `yamux` crate (0.14) as a peer program.
//!
//! It takes the command line of `tests/go-peer` and `tests/js-peer` and
//! prints their lines (`LISTENING`, `RESULT k=v ...`, the two frame
//! summaries, `DONE ...`), so a test written against [`crate::peer::Peer`]
//! runs unchanged against it. It runs in a thread of the test process (a
//! tokio current-thread runtime and a `LocalSet`) rather than as a child
//! process, and its lines go to a channel instead of stdout; the TCP
//! connection is real loopback TCP all the same.
//!
//! Streams are read and written through the crate's plain
//! `AsyncRead`/`AsyncWrite` as an application would, with no barrier, sleep
//! or flush between a write and a close. A sniffer on the socket, in each
//! direction, records the frames and which streams saw FIN and RST.
//!
//! One difference from the programs, on purpose: an acceptor (`echo`,
//! `sink`, `respond`) that has served its `-streams` does not end the
//! session itself but waits for the other side to end it. The crate's
//! `poll_close` flushes its frames, sends Go Away and closes the socket
//! without reading it again, so a Window Update we send for its last bytes
//! is left unread or arrives after the close, and its kernel answers with a
//! TCP RST that destroys whatever of those bytes we had not yet read (seen
//! in 4 of 160 runs of the crate's tests in `interop_peers.rs`;
//! docs/interop.md, the `yamux` crate's faults). The opening scenarios (`open-echo`, `source`, `goaway`)
//! end the session as the crate does, once the other side has sent
//! everything it will send.
//!
//! The crate has no ping API, no keep-alive and no configurable stream
//! window here, so `ping`, `-keepalive`, `-window` and `-keep-tcp` are
//! refused (`DONE fail unsupported ...`) rather than ignored.

use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinSet;
use tokio_util::compat::TokioAsyncReadCompatExt;
use yamux::{Mode, Stream};

use crate::driver::{pattern, pattern_byte, Fnv};
use crate::rust_yamux::{spawn_connection, Ctl};
use crate::support::rng::Rng;

/// The peer's flags, as the peer programs read them.
#[derive(Clone, Debug)]
struct Opts {
    listen: Option<String>,
    connect: Option<String>,
    mode: Mode,
    scenario: String,
    streams: usize,
    bytes: Option<u64>,
    seed: u64,
    hold: Option<Duration>,
    timeout: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("bad duration {s}");
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = num.parse().map_err(|_| bad())?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(60 * n)),
        _ => Err(bad()),
    }
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        listen: None,
        connect: None,
        mode: Mode::Client,
        scenario: String::new(),
        streams: 0,
        bytes: None,
        seed: 1,
        hold: None,
        timeout: Duration::from_secs(30),
    };
    let mut role = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        let int = |v: String| v.parse::<i64>().map_err(|_| format!("{flag} {v}: not an integer"));
        match flag.as_str() {
            "-listen" => o.listen = Some(value()?),
            "-connect" => o.connect = Some(value()?),
            "-role" => role = Some(value()?),
            "-scenario" => o.scenario = value()?,
            "-streams" => o.streams = int(value()?)?.max(0) as usize,
            "-bytes" => o.bytes = u64::try_from(int(value()?)?).ok(),
            "-seed" => o.seed = int(value()?)? as u64,
            "-hold" => o.hold = Some(parse_duration(&value()?)?).filter(|d| !d.is_zero()),
            "-timeout" => o.timeout = parse_duration(&value()?)?,
            "-msgs" => {
                value()?;
            }
            // Reading is always plain here: the first end of stream ends it.
            "-plain-read" => {}
            other => return Err(format!("unsupported flag {other}")),
        }
    }
    o.mode = match role.as_deref() {
        Some("client") => Mode::Client,
        Some("server") => Mode::Server,
        _ => return Err("-role client|server is required".into()),
    };
    if o.listen.is_some() == o.connect.is_some() {
        return Err("exactly one of -listen and -connect".into());
    }
    Ok(o)
}

/// Runs the peer with `args` in a new thread; its lines go to `out`.
pub fn spawn(args: Vec<String>, out: Sender<String>) {
    thread::spawn(move || {
        let opts = match parse(&args) {
            Ok(o) => o,
            Err(e) => {
                let _ = out.send(format!("DONE fail unsupported: {e}"));
                return;
            }
        };
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let local = tokio::task::LocalSet::new();
        let peer = CratePeer { out: out.clone(), opts: opts.clone(), sniff: Sniffers::default() };
        let done = local.block_on(&rt, async {
            match tokio::time::timeout(opts.timeout, peer.run()).await {
                Ok(Ok(true)) => "DONE ok".to_string(),
                Ok(Ok(false)) => "DONE fail scenario".to_string(),
                Ok(Err(e)) => format!("DONE fail {e}"),
                Err(_) => "DONE fail timeout".to_string(),
            }
        });
        let _ = out.send(peer.sniff.inbound.lock().unwrap().summary("in"));
        let _ = out.send(peer.sniff.outbound.lock().unwrap().summary("out"));
        let _ = out.send(done);
    });
}

#[derive(Clone, Default)]
struct Sniffers {
    /// Frames the peer received.
    inbound: Arc<Mutex<Sniffer>>,
    /// Frames the peer sent.
    outbound: Arc<Mutex<Sniffer>>,
}

impl Sniffers {
    fn saw_fin(&self, id: u32) -> bool {
        self.inbound.lock().unwrap().fins.contains(&id)
    }
}

struct CratePeer {
    out: Sender<String>,
    opts: Opts,
    sniff: Sniffers,
}

/// One `RESULT` line's fields, in order.
type Fields = Vec<(&'static str, String)>;

fn err_text(e: &Option<String>) -> String {
    format!("{:?}", e.as_deref().unwrap_or("none"))
}

impl CratePeer {
    fn result(&self, fields: Fields) {
        let parts: Vec<String> = fields.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = self.out.send(format!("RESULT {}", parts.join(" ")));
    }

    async fn run(&self) -> Result<bool, String> {
        let tcp = if let Some(addr) = &self.opts.listen {
            let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("bind: {e}"))?;
            let local = l.local_addr().map_err(|e| e.to_string())?;
            let _ = self.out.send(format!("LISTENING {local}"));
            l.accept().await.map_err(|e| format!("accept: {e}"))?.0
        } else {
            let addr = self.opts.connect.clone().unwrap_or_default();
            tokio::net::TcpStream::connect(&addr).await.map_err(|e| format!("connect: {e}"))?
        };
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let io = Sniffed { inner: tcp, sniff: self.sniff.clone() };
        let (mut ctl, _ended) =
            spawn_connection(io.compat(), yamux::Config::default(), self.opts.mode);
        match self.opts.scenario.as_str() {
            "echo" | "sink" | "respond" => Ok(self.accepting(&mut ctl).await),
            "open-echo" => Ok(self.opening(&mut ctl, true).await),
            "source" => Ok(self.opening(&mut ctl, false).await),
            "goaway" => Ok(self.goaway(&mut ctl).await),
            "idle" => Ok(self.idle(&mut ctl).await),
            other => Err(format!("unsupported scenario {other}")),
        }
    }

    /// Closes the session as the crate does (`poll_close`: Go Away, code 0,
    /// then the socket is closed) and waits for the end.
    async fn close(&self, ctl: &mut Ctl) -> String {
        ctl.close();
        ctl.ended().await
    }

    // -----------------------------------------------------------------------
    // Accepting scenarios: echo, sink, respond

    async fn accepting(&self, ctl: &mut Ctl) -> bool {
        let (mut served, mut ok_streams, mut index) = (0, 0, 0);
        let mut order = Vec::new();
        let mut tasks = JoinSet::new();
        let mut accepting = true;
        while self.opts.streams == 0 || served < self.opts.streams {
            tokio::select! {
                s = ctl.accept(), if accepting => match s {
                    Some(s) => {
                        let serve = Serve { opts: self.opts.clone(), sniff: self.sniff.clone() };
                        tasks.spawn_local(serve.run(s, index));
                        index += 1;
                    }
                    None => accepting = false,
                },
                Some(done) = tasks.join_next() => {
                    let (id, ok, fields) = done.expect("stream task");
                    self.result(fields);
                    served += 1;
                    ok_streams += usize::from(ok);
                    order.push(id.to_string());
                }
                else => break,
            }
        }
        let end = if accepting { "streams done" } else { "session closed" };
        // The session's end is left to the other side (see the module docs).
        let session_err = ctl.ended().await;
        self.report_remote_go_away(ctl).await;
        self.result(vec![
            ("served", served.to_string()),
            ("ok_streams", ok_streams.to_string()),
            ("end", format!("{end:?}")),
            ("session_err", format!("{session_err:?}")),
            ("finish_order", if order.is_empty() { "none".into() } else { order.join(",") }),
        ]);
        served >= 1 && ok_streams == served
    }

    /// After the connection ended: if it was the peer's Go Away that ended
    /// it (the crate ends the session on any Go Away), says so and what an
    /// open says now.
    async fn report_remote_go_away(&self, ctl: &mut Ctl) {
        let code = {
            let s = self.sniff.inbound.lock().unwrap();
            (s.goaway > 0).then_some(s.goaway_code)
        };
        if let Some(code) = code {
            let open_err = ctl.open().await.err();
            self.result(vec![
                ("remote_goaway", "true".into()),
                ("code", code.to_string()),
                ("open_err", err_text(&open_err)),
            ]);
        }
    }

    // -----------------------------------------------------------------------
    // Opening scenarios: open-echo, source, goaway, idle

    fn length(&self) -> u64 {
        self.opts.bytes.unwrap_or(1 << 20)
    }

    async fn opening(&self, ctl: &mut Ctl, echo: bool) -> bool {
        let n = self.length();
        let mut tasks = JoinSet::new();
        for k in 0..self.opts.streams.max(1) {
            let opened = ctl.open().await;
            let (seed, sniff) = (self.opts.seed + k as u64, self.sniff.clone());
            tasks.spawn_local(exchange(opened, k, n, seed, sniff));
        }
        let mut lines = Vec::new();
        while let Some(done) = tasks.join_next().await {
            lines.push(done.expect("stream task"));
        }
        lines.sort_by_key(|l| l.index);
        let mut all = true;
        for l in lines {
            let written = l.sent == n && l.open_err.is_none() && l.write_err.is_none();
            let written = written && l.read_err.is_none() && l.fin;
            let ok = if echo { written && l.recv == n && l.mismatch_at.is_none() } else { written };
            all &= ok;
            self.result(l.fields(ok));
        }
        self.close(ctl).await;
        all
    }

    /// One echoed stream, then the crate's `poll_close` (Go Away, code 0,
    /// then the socket is closed), then an open to see it refused.
    async fn goaway(&self, ctl: &mut Ctl) -> bool {
        let n = self.length();
        let opened = ctl.open().await;
        let l = exchange(opened, 0, n, self.opts.seed, self.sniff.clone()).await;
        let ok = l.recv == n && l.mismatch_at.is_none() && l.fin && l.read_err.is_none();
        self.result(l.fields(ok));
        let end = self.close(ctl).await;
        let open_err = ctl.open().await.err();
        self.result(vec![
            ("goaway_sent", "true".into()),
            ("open_after_goaway_err", err_text(&open_err)),
        ]);
        self.result(vec![("session_closed", "true".into()), ("reason", format!("{end:?}"))]);
        ok
    }

    async fn idle(&self, ctl: &mut Ctl) -> bool {
        let t0 = Instant::now();
        let hold = self.opts.hold.unwrap_or(Duration::from_secs(3600));
        let ended = tokio::time::timeout(hold, ctl.ended()).await.ok();
        let (i, o) = (
            self.sniff.inbound.lock().unwrap().clone(),
            self.sniff.outbound.lock().unwrap().clone(),
        );
        self.result(vec![
            ("session_closed", ended.is_some().to_string()),
            ("reason", format!("{:?}", ended.as_deref().unwrap_or("hold expired"))),
            ("after_ms", t0.elapsed().as_millis().to_string()),
            ("pings_out", o.ping.to_string()),
            ("pongs_in", i.pong.to_string()),
            ("pings_in", i.ping.to_string()),
            ("pongs_out", o.pong.to_string()),
        ]);
        if ended.is_none() {
            self.close(ctl).await;
        }
        true
    }
}

/// Serves one accepted stream in the scenario's way.
struct Serve {
    opts: Opts,
    sniff: Sniffers,
}

impl Serve {
    fn exact(&self, n: u64) -> bool {
        self.opts.bytes.is_none_or(|b| b == n)
    }

    async fn run(self, mut s: Stream, index: usize) -> (u32, bool, Fields) {
        let id = s.id().val();
        let t0 = Instant::now();
        let mut r = Received::new(id);
        let base = vec![("stream", id.to_string()), ("index", index.to_string())];
        let (ok, mut fields) = match self.opts.scenario.as_str() {
            "echo" => {
                let (mut echoed, mut write_err) = (0u64, None);
                let mut buf = vec![0u8; 32 * 1024];
                let read_err = loop {
                    match s.read(&mut buf).await {
                        Ok(0) => break None,
                        Ok(k) => {
                            r.take(&buf[..k]);
                            if let Err(e) = s.write_all(&buf[..k]).await {
                                write_err = Some(e.to_string());
                                break None;
                            }
                            echoed += k as u64;
                        }
                        Err(e) => break Some(e.to_string()),
                    }
                };
                if let Err(e) = s.close().await {
                    write_err.get_or_insert(e.to_string());
                }
                let fin = self.sniff.saw_fin(id);
                let ok = fin && read_err.is_none() && write_err.is_none();
                let ok = ok && echoed == r.bytes && self.exact(r.bytes);
                (
                    ok,
                    vec![
                        ("bytes", r.bytes.to_string()),
                        ("echoed", echoed.to_string()),
                        ("fnv", r.fnv.hex()),
                        ("fin", fin.to_string()),
                        ("read_err", err_text(&read_err)),
                        ("write_err", err_text(&write_err)),
                    ],
                )
            }
            "sink" => {
                let read_err = r.read_to_end(&mut s).await;
                let _ = s.close().await;
                let fin = self.sniff.saw_fin(id);
                let ok = fin && read_err.is_none() && self.exact(r.bytes);
                (
                    ok,
                    vec![
                        ("bytes", r.bytes.to_string()),
                        ("fnv", r.fnv.hex()),
                        ("pattern", r.mismatch_at.is_none().to_string()),
                        ("fin", fin.to_string()),
                        ("read_err", err_text(&read_err)),
                    ],
                )
            }
            _ => {
                // respond: read to the peer's FIN, then write and FIN.
                let read_err = r.read_to_end(&mut s).await;
                let fin = self.sniff.saw_fin(id);
                let n = self.opts.bytes.unwrap_or(1 << 20);
                let mut w = Written::new(id);
                let mut write_err = w.write_pattern(&mut s, n, self.opts.seed + index as u64).await;
                if let Err(e) = s.close().await {
                    write_err.get_or_insert(e.to_string());
                }
                let ok = fin && read_err.is_none() && write_err.is_none() && w.sent == n;
                (
                    ok,
                    vec![
                        ("bytes", r.bytes.to_string()),
                        ("fin", fin.to_string()),
                        ("sent", w.sent.to_string()),
                        ("read_err", err_text(&read_err)),
                        ("write_err", err_text(&write_err)),
                    ],
                )
            }
        };
        fields.push(("elapsed_ms", t0.elapsed().as_millis().to_string()));
        fields.push(("ok", ok.to_string()));
        (id, ok, base.into_iter().chain(fields).collect())
    }
}

/// What one opened stream did (`open-echo`, `source`, `goaway`).
struct Exchanged {
    id: u32,
    index: usize,
    sent: u64,
    recv: u64,
    recv_fnv: Fnv,
    mismatch_at: Option<u64>,
    fin: bool,
    open_err: Option<String>,
    write_err: Option<String>,
    read_err: Option<String>,
    elapsed: Duration,
}

impl Exchanged {
    fn fields(&self, ok: bool) -> Fields {
        vec![
            ("stream", self.id.to_string()),
            ("index", self.index.to_string()),
            ("bytes_sent", self.sent.to_string()),
            ("bytes_recv", self.recv.to_string()),
            ("recv_fnv", self.recv_fnv.hex()),
            ("recv_pattern", self.mismatch_at.is_none().to_string()),
            ("mismatch_at", self.mismatch_at.map_or(-1, |m| m as i64).to_string()),
            ("fin", self.fin.to_string()),
            ("open_err", err_text(&self.open_err)),
            ("write_err", err_text(&self.write_err)),
            ("read_err", err_text(&self.read_err)),
            ("elapsed_ms", self.elapsed.as_millis().to_string()),
            ("ok", ok.to_string()),
        ]
    }
}

/// On an opened stream: writes `n` pattern bytes in random chunks while
/// reading, half-closes, reads to the end.
async fn exchange(
    opened: Result<Stream, String>,
    index: usize,
    n: u64,
    seed: u64,
    sniff: Sniffers,
) -> Exchanged {
    let t0 = Instant::now();
    let s = match opened {
        Ok(s) => s,
        Err(e) => {
            return Exchanged {
                id: 0,
                index,
                sent: 0,
                recv: 0,
                recv_fnv: Fnv::default(),
                mismatch_at: None,
                fin: false,
                open_err: Some(e),
                write_err: None,
                read_err: None,
                elapsed: t0.elapsed(),
            }
        }
    };
    let id = s.id().val();
    let (mut rd, mut wr) = AsyncReadExt::split(s);
    let writing = async {
        let mut w = Written::new(id);
        let mut err = w.write_pattern(&mut wr, n, seed).await;
        if let Err(e) = wr.close().await {
            err.get_or_insert(e.to_string());
        }
        (w.sent, err)
    };
    let reading = async {
        let mut r = Received::new(id);
        let err = r.read_to_end(&mut rd).await;
        (r, err)
    };
    let ((sent, write_err), (r, read_err)) = futures::join!(writing, reading);
    Exchanged {
        id,
        index,
        sent,
        recv: r.bytes,
        recv_fnv: r.fnv,
        mismatch_at: r.mismatch_at,
        fin: sniff.saw_fin(id),
        open_err: None,
        write_err,
        read_err,
        elapsed: t0.elapsed(),
    }
}

/// Bytes read on one stream, checked against its pattern.
struct Received {
    id: u32,
    bytes: u64,
    fnv: Fnv,
    mismatch_at: Option<u64>,
}

impl Received {
    fn new(id: u32) -> Received {
        Received { id, bytes: 0, fnv: Fnv::default(), mismatch_at: None }
    }

    fn take(&mut self, b: &[u8]) {
        if self.mismatch_at.is_none() {
            let off = self.bytes;
            let bad =
                b.iter().enumerate().position(|(j, &x)| x != pattern_byte(self.id, off + j as u64));
            self.mismatch_at = bad.map(|j| off + j as u64);
        }
        self.fnv.write(b);
        self.bytes += b.len() as u64;
    }

    /// Reads until the end of the stream; the error, if reading failed.
    async fn read_to_end<S: futures::AsyncRead + Unpin>(&mut self, s: &mut S) -> Option<String> {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return None,
                Ok(k) => self.take(&buf[..k]),
                Err(e) => return Some(e.to_string()),
            }
        }
    }
}

/// Pattern bytes written on one stream.
struct Written {
    id: u32,
    sent: u64,
}

impl Written {
    fn new(id: u32) -> Written {
        Written { id, sent: 0 }
    }

    /// Writes `n` pattern bytes in random chunks of 1..=65536 bytes.
    async fn write_pattern<S: futures::AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        n: u64,
        seed: u64,
    ) -> Option<String> {
        let mut rng = Rng::new(seed);
        while self.sent < n {
            let size = (rng.range(1, 65536)).min(n - self.sent) as usize;
            if let Err(e) = s.write_all(&pattern(self.id, self.sent, size)).await {
                return Some(e.to_string());
            }
            self.sent += size as u64;
        }
        None
    }
}

// ---------------------------------------------------------------------------
// The sniffer

/// Frame counts for one direction of the socket, parsed from the bytes
/// that pass.
#[derive(Clone, Debug)]
struct Sniffer {
    total: u64,
    data: u64,
    window_update: u64,
    ping: u64,
    pong: u64,
    goaway: u64,
    goaway_code: i64,
    syn: u64,
    ack: u64,
    fin: u64,
    rst: u64,
    data_bytes: u64,
    fin_on_data: u64,
    bad: bool,
    fins: HashSet<u32>,
    rsts: HashSet<u32>,
    header: [u8; 12],
    have: usize,
    skip: u64,
}

impl Default for Sniffer {
    fn default() -> Sniffer {
        Sniffer {
            total: 0,
            data: 0,
            window_update: 0,
            ping: 0,
            pong: 0,
            goaway: 0,
            goaway_code: -1,
            syn: 0,
            ack: 0,
            fin: 0,
            rst: 0,
            data_bytes: 0,
            fin_on_data: 0,
            bad: false,
            fins: HashSet::new(),
            rsts: HashSet::new(),
            header: [0; 12],
            have: 0,
            skip: 0,
        }
    }
}

impl Sniffer {
    fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() && !self.bad {
            if self.skip > 0 {
                let n = self.skip.min(b.len() as u64) as usize;
                self.skip -= n as u64;
                b = &b[n..];
                continue;
            }
            let n = (12 - self.have).min(b.len());
            self.header[self.have..self.have + n].copy_from_slice(&b[..n]);
            self.have += n;
            b = &b[n..];
            if self.have == 12 {
                self.have = 0;
                self.frame();
            }
        }
    }

    fn frame(&mut self) {
        let h = self.header;
        let flags = u16::from_be_bytes([h[2], h[3]]);
        let id = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let length = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
        if h[0] != 0 || h[1] > 3 {
            self.bad = true;
            return;
        }
        self.total += 1;
        match h[1] {
            0 | 1 => {
                if h[1] == 0 {
                    self.data += 1;
                    self.data_bytes += u64::from(length);
                    self.skip = u64::from(length);
                    self.fin_on_data += u64::from(flags & 4 != 0);
                } else {
                    self.window_update += 1;
                }
                self.syn += u64::from(flags & 1 != 0);
                self.ack += u64::from(flags & 2 != 0);
                if flags & 4 != 0 {
                    self.fin += 1;
                    self.fins.insert(id);
                }
                if flags & 8 != 0 {
                    self.rst += 1;
                    self.rsts.insert(id);
                }
            }
            2 => {
                self.ping += u64::from(flags & 1 != 0);
                self.pong += u64::from(flags & 2 != 0);
            }
            _ => {
                self.goaway += 1;
                self.goaway_code = i64::from(length);
            }
        }
    }

    /// The `RESULT frames=DIR ...` line the peer programs print.
    fn summary(&self, dir: &str) -> String {
        format!(
            "RESULT frames={dir} total={} data={} window_update={} ping={} pong={} goaway={} \
             goaway_code={} syn={} ack={} fin={} rst={} data_bytes={} fin_on_data={} bad={}",
            self.total,
            self.data,
            self.window_update,
            self.ping,
            self.pong,
            self.goaway,
            self.goaway_code,
            self.syn,
            self.ack,
            self.fin,
            self.rst,
            self.data_bytes,
            self.fin_on_data,
            self.bad
        )
    }
}

/// The TCP socket with a sniffer on each direction.
struct Sniffed {
    inner: tokio::net::TcpStream,
    sniff: Sniffers,
}

impl AsyncRead for Sniffed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            self.sniff.inbound.lock().unwrap().feed(&buf.filled()[before..]);
        }
        r
    }
}

impl AsyncWrite for Sniffed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.sniff.outbound.lock().unwrap().feed(&buf[..n]);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
