//! Spawning and reading the interop peers: hashicorp/yamux (Go,
//! `tests/go-peer`), js-libp2p's yamux (Node, `tests/js-peer`) and the
//! `yamux` crate (`crate_peer.rs`, in a thread of the test process).
//!
//! All three run one scenario on one TCP connection and speak the same
//! command line and line protocol (`LISTENING`, `RESULT k=v ...`,
//! `DONE ...`), parsed here; `tests/go-peer/README.md` and
//! `tests/js-peer/README.md` describe the scenarios and line formats. A test
//! written against [`Peer`] runs unchanged against any of them.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Which yamux implementation the peer program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerKind {
    /// hashicorp/yamux, the Debian snapshot (`tests/go-peer`).
    Hashicorp,
    /// `@chainsafe/libp2p-yamux` 7.0.4 on Node (`tests/js-peer`).
    Js,
    /// The `yamux` crate 0.14 (`crate_peer.rs`), run in a thread.
    YamuxCrate,
}

impl PeerKind {
    /// The peer's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Hashicorp => "hashicorp",
            PeerKind::Js => "js-libp2p",
            PeerKind::YamuxCrate => "yamux-crate",
        }
    }

    /// Whether the peer takes a Go Away as the end of the session, and ends
    /// its own sessions with Go Away (code 0) then TCP FIN: js-libp2p and
    /// the `yamux` crate. Hashicorp keeps serving after a normal Go Away and
    /// ends a session by closing TCP alone.
    pub fn ends_session_with_go_away(self) -> bool {
        self != PeerKind::Hashicorp
    }

    /// The program and the arguments that come before the scenario's;
    /// `None` for the peer that runs in-process.
    fn command(self) -> Option<(PathBuf, Vec<String>)> {
        match self {
            PeerKind::Hashicorp => Some((go_binary().to_path_buf(), Vec::new())),
            PeerKind::Js => {
                let script = js_peer_dir().join("peer.mjs");
                Some((PathBuf::from("node"), vec![script.display().to_string()]))
            }
            PeerKind::YamuxCrate => None,
        }
    }
}

/// The peer's yamux role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerRole {
    /// `-role client`: the peer opens odd ids; we are the server.
    Client,
    /// `-role server`: the peer opens even ids; we are the client.
    Server,
}

impl PeerRole {
    fn flag(self) -> &'static str {
        match self {
            PeerRole::Client => "client",
            PeerRole::Server => "server",
        }
    }

    /// Our role, the opposite one.
    pub fn ours(self) -> yamux_proto::Role {
        match self {
            PeerRole::Client => yamux_proto::Role::Server,
            PeerRole::Server => yamux_proto::Role::Client,
        }
    }
}

/// Who listens for the TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dial {
    /// The peer listens (`-listen`), we connect.
    PeerListens,
    /// We listen, the peer connects (`-connect`).
    WeListen,
}

/// The two setups every scenario runs in: the peer as yamux server
/// listening, and the peer as yamux client dialling us. Together they cover
/// both yamux roles on both sides and both TCP directions.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// The peer's yamux role.
    pub peer_role: PeerRole,
    /// Who listens.
    pub dial: Dial,
}

impl Setup {
    /// The peer is the yamux server and listens; we are the client.
    pub const PEER_SERVER: Setup = Setup { peer_role: PeerRole::Server, dial: Dial::PeerListens };
    /// The peer is the yamux client and dials us; we are the server.
    pub const PEER_CLIENT: Setup = Setup { peer_role: PeerRole::Client, dial: Dial::WeListen };
}

static GO_BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The Go peer binary, built on first use. Panics with instructions if Go or
/// hashicorp/yamux is missing.
fn go_binary() -> &'static Path {
    let built = GO_BINARY.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let script = root.join("tests/go-peer/build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .map_err(|e| format!("could not run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}):\n{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let path = root.join("target/go-peer/yamux-go-peer");
        if path.exists() {
            Ok(path)
        } else {
            Err(format!("{} did not produce {}", script.display(), path.display()))
        }
    });
    match built {
        Ok(p) => p,
        Err(e) => panic!(
            "the hashicorp/yamux Go peer is unavailable: {e}\n\
             Install Go and hashicorp/yamux (apt-get install -y golang-go \
             golang-github-hashicorp-yamux-dev) and run tests/go-peer/build.sh \
             (CI installs them)."
        ),
    }
}

static JS_INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// `tests/js-peer`, with its packages installed (`npm ci` on first use if
/// `node_modules` is missing). Panics with instructions if Node or npm is.
fn js_peer_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js-peer");
    let installed = JS_INSTALLED.get_or_init(|| {
        let yamux = dir.join("node_modules/@chainsafe/libp2p-yamux/package.json");
        if yamux.exists() {
            return Ok(());
        }
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("could not run npm: {e}"))?;
        if out.status.success() && yamux.exists() {
            Ok(())
        } else {
            Err(format!(
                "npm ci failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = installed {
        panic!(
            "the js-libp2p yamux peer is unavailable: {e}\n\
             Install Node 20 and npm, then run `npm ci` in tests/js-peer (CI does)."
        );
    }
    dir
}

/// One `RESULT` line: its keys and values (quoted values unquoted).
#[derive(Clone, Debug, Default)]
pub struct ResultLine {
    /// The key of the first pair: what kind of line it is.
    pub kind: String,
    /// Every pair.
    pub kv: BTreeMap<String, String>,
    /// The line as printed.
    pub raw: String,
}

impl ResultLine {
    /// The value of `key`; panics (with the line) if absent.
    pub fn get(&self, key: &str) -> &str {
        self.kv
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("RESULT line has no {key}: {}", self.raw))
    }

    /// `key` parsed as an integer.
    pub fn int(&self, key: &str) -> i64 {
        let v = self.get(key);
        v.parse().unwrap_or_else(|_| panic!("{key}={v} is not an integer in: {}", self.raw))
    }

    /// `key` as a boolean.
    pub fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            "true" => true,
            "false" => false,
            v => panic!("{key}={v} is not a boolean in: {}", self.raw),
        }
    }
}

fn parse_result(line: &str) -> Option<ResultLine> {
    let rest = line.strip_prefix("RESULT ")?;
    let mut kv = BTreeMap::new();
    let mut kind = String::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some(other) => value.push(other),
                        None => break,
                    },
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        if kind.is_empty() {
            kind = key.clone();
        }
        kv.insert(key, value);
    }
    Some(ResultLine { kind, kv, raw: line.to_string() })
}

/// Accepts one connection on `listener` within `limit` (polling, so a peer
/// that never dials cannot hang the test), as a blocking socket. `None` when
/// the time is up; panics on an accept error.
pub fn accept_within(listener: &TcpListener, limit: Duration) -> Option<TcpStream> {
    listener.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).expect("blocking");
                return Some(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return None;
                }
                thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// What the peer printed by the time it exited.
#[derive(Debug)]
pub struct PeerOutput {
    /// Every RESULT line, in order.
    pub results: Vec<ResultLine>,
    /// The final line (`DONE ok`, `DONE fail ...`).
    pub done: String,
    /// Everything on stderr (hashicorp's logs and the peer's own).
    pub stderr: String,
}

impl PeerOutput {
    /// Whether the peer ended with `DONE ok`.
    pub fn ok(&self) -> bool {
        self.done == "DONE ok"
    }

    /// RESULT lines whose first key is `kind`.
    pub fn lines(&self, kind: &str) -> Vec<&ResultLine> {
        self.results.iter().filter(|r| r.kind == kind).collect()
    }

    /// The only RESULT line whose first key is `kind` and that has key `with`.
    pub fn line(&self, kind: &str, with: &str) -> &ResultLine {
        let found: Vec<_> =
            self.results.iter().filter(|r| r.kind == kind && r.kv.contains_key(with)).collect();
        assert_eq!(
            found.len(),
            1,
            "expected one RESULT {kind}=.. {with}=.. line:\n{}",
            self.dump()
        );
        found[0]
    }

    /// Per-stream lines (first key `stream`) that have key `with`.
    pub fn streams_with(&self, with: &str) -> Vec<&ResultLine> {
        self.results.iter().filter(|r| r.kind == "stream" && r.kv.contains_key(with)).collect()
    }

    /// The frame summary of what the peer received (`in`) or sent (`out`).
    pub fn frames(&self, dir: &str) -> &ResultLine {
        self.results
            .iter()
            .find(|r| r.kind == "frames" && r.get("frames") == dir)
            .unwrap_or_else(|| panic!("no frames={dir} summary:\n{}", self.dump()))
    }

    /// Everything, for failure messages.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for r in &self.results {
            s.push_str(&r.raw);
            s.push('\n');
        }
        s.push_str(&self.done);
        s.push_str("\n--- peer stderr ---\n");
        s.push_str(&self.stderr);
        s
    }
}

/// Spawns a peer program whose stdout lines go to `tx` and whose stderr
/// collects in `stderr`.
fn spawn_child(
    bin: &Path,
    args: &[String],
    cmdline: &str,
    tx: mpsc::Sender<String>,
    stderr: Arc<Mutex<String>>,
) -> Child {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmdline}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut err_pipe = child.stderr.take().expect("stderr");
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err_pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            stderr.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    child
}

/// A running peer.
pub struct Peer {
    /// Which implementation it runs.
    pub kind: PeerKind,
    /// The child process; `None` for the in-process yamux crate peer
    /// (whose own watchdog ends its thread).
    child: Option<Child>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    results: Vec<ResultLine>,
    /// The command line, for messages.
    pub cmdline: String,
}

impl Peer {
    /// Starts the `kind` peer in `setup` with `scenario` and extra flags,
    /// and returns it with our end of the TCP connection.
    pub fn start(
        kind: PeerKind,
        setup: Setup,
        scenario: &str,
        extra: &[&str],
    ) -> (Peer, TcpStream) {
        let (bin, mut args) = kind.command().unwrap_or_default();
        // `extra` comes last, so it may override the watchdog.
        let ours = ["-role", setup.peer_role.flag(), "-scenario", scenario, "-timeout", "40s"];
        args.extend(ours.iter().chain(extra).map(|s| s.to_string()));
        let listener = match setup.dial {
            Dial::PeerListens => {
                args.extend(["-listen".into(), "127.0.0.1:0".into()]);
                None
            }
            Dial::WeListen => {
                let l = TcpListener::bind("127.0.0.1:0").expect("bind");
                args.extend(["-connect".into(), l.local_addr().expect("addr").to_string()]);
                Some(l)
            }
        };
        let program =
            if bin.as_os_str().is_empty() { kind.name().into() } else { bin.display().to_string() };
        let cmdline = format!("{program} {}", args.join(" "));
        let (tx, lines) = mpsc::channel();
        let stderr = Arc::new(Mutex::new(String::new()));
        let child = if kind == PeerKind::YamuxCrate {
            crate::crate_peer::spawn(args, tx);
            None
        } else {
            Some(spawn_child(&bin, &args, &cmdline, tx, stderr.clone()))
        };
        let mut peer = Peer { kind, child, lines, stderr, results: Vec::new(), cmdline };
        let sock = match listener {
            None => {
                let deadline = Instant::now() + Duration::from_secs(10);
                let addr = loop {
                    let line = peer.next_line(deadline).unwrap_or_else(|| {
                        panic!("{} printed no LISTENING line:\n{}", kind.name(), peer.stderr())
                    });
                    if let Some(addr) = line.strip_prefix("LISTENING ") {
                        break addr.to_string();
                    }
                    peer.note(&line);
                };
                TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
            }
            Some(l) => accept_within(&l, Duration::from_secs(10)).unwrap_or_else(|| {
                panic!("{} did not connect within 10 s:\n{}", kind.name(), peer.stderr())
            }),
        };
        (peer, sock)
    }

    fn next_line(&mut self, deadline: Instant) -> Option<String> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(wait) {
            Ok(l) => Some(l),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    fn note(&mut self, line: &str) {
        if let Some(r) = parse_result(line) {
            self.results.push(r);
        }
    }

    /// The peer's log so far (its own lines and its yamux library's).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// RESULT lines printed so far (non-blocking).
    pub fn poll_results(&mut self) -> &[ResultLine] {
        while let Ok(line) = self.lines.try_recv() {
            self.note(&line);
        }
        &self.results
    }

    /// Waits (up to `limit`) for the peer's DONE line and exit.
    pub fn wait(mut self, limit: Duration) -> PeerOutput {
        let deadline = Instant::now() + limit;
        let done = loop {
            match self.next_line(deadline) {
                Some(line) if line.starts_with("DONE") => break line,
                Some(line) => self.note(&line),
                None => {
                    self.kill();
                    thread::sleep(Duration::from_millis(50));
                    panic!(
                        "the peer did not finish within {limit:?} ({})\nresults so far:\n{}\n--- peer stderr ---\n{}",
                        self.cmdline,
                        self.results.iter().map(|r| r.raw.as_str()).collect::<Vec<_>>().join("\n"),
                        self.stderr()
                    );
                }
            }
        };
        if let Some(child) = &mut self.child {
            let _ = child.wait();
        }
        // Let the stderr reader catch up with the last lines.
        thread::sleep(Duration::from_millis(20));
        PeerOutput { results: std::mem::take(&mut self.results), done, stderr: self.stderr() }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Peer {
    /// Kills the child process if it still runs. Only our own child, by
    /// handle: a panicking test must not leave it running.
    fn kill(&mut self) {
        if let Some(child) = &mut self.child {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Sends a signal (`STOP`, `CONT`, ...) to this child process, by its
    /// id. Panics for the in-process peer, which cannot be stopped so.
    pub fn signal(&self, sig: &str) {
        let child = self.child.as_ref().expect("the yamux crate peer has no process to signal");
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {} failed", child.id());
    }
}
