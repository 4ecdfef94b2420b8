//! Running the `yamux` crate (0.14) as the peer of an interop test.
//!
//! The peer lives in its own thread with a tokio current-thread runtime and a
//! `LocalSet`, over a loopback TCP connection (`tokio_util::compat` adapts the
//! socket to the futures-io traits the crate wants). One task drives the
//! `yamux::Connection` (it only makes progress while `poll_next_inbound` is
//! polled) and serves the scenario's open / accept / close requests; the
//! scenario is an async closure given a [`Ctl`] and may spawn a local task per
//! stream. A watchdog ends the thread after [`PEER_LIFE`] whatever happens.

#![allow(dead_code)]

use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc as std_mpsc;
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::future::poll_fn;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use tokio_util::compat::TokioAsyncReadCompatExt;
use yamux::{Connection, ConnectionError, Mode, Stream};

use crate::driver::{pattern, pattern_byte, Fnv};
use crate::support::rng::Rng;

/// Longest a yamux peer thread runs.
pub const PEER_LIFE: Duration = Duration::from_secs(25);

/// The setups are the ones every peer runs in (`peer.rs`); the crate's
/// `Mode` is the peer's role.
pub use crate::peer::{Dial, Setup};

/// The yamux crate's mode for the peer's role in `setup`.
pub fn mode(setup: Setup) -> Mode {
    match setup.peer_role {
        crate::peer::PeerRole::Client => Mode::Client,
        crate::peer::PeerRole::Server => Mode::Server,
    }
}

/// The scenario's handle on the yamux connection.
pub struct Ctl {
    open_tx: mpsc::UnboundedSender<oneshot::Sender<Result<Stream, ConnectionError>>>,
    inbound: mpsc::UnboundedReceiver<Stream>,
    close_tx: mpsc::UnboundedSender<()>,
    end: Option<oneshot::Receiver<String>>,
    /// When the peer started (after the TCP connection was up).
    pub t0: Instant,
}

impl Ctl {
    /// Opens an outbound stream (lazily: the crate sends the SYN with the
    /// stream's first frame).
    pub async fn open(&self) -> Result<Stream, String> {
        let (tx, rx) = oneshot::channel();
        self.open_tx.unbounded_send(tx).map_err(|_| "connection task gone".to_string())?;
        match rx.await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("connection task gone".into()),
        }
    }

    /// The next inbound stream; `None` once the connection ended.
    pub async fn accept(&mut self) -> Option<Stream> {
        self.inbound.next().await
    }

    /// Asks for a graceful close (`Connection::poll_close`: pending frames,
    /// then GoAway, then the socket is closed).
    pub fn close(&self) {
        let _ = self.close_tx.unbounded_send(());
    }

    /// Waits until the connection has ended and says why.
    pub async fn ended(&mut self) -> String {
        match self.end.take() {
            Some(rx) => rx.await.unwrap_or_else(|_| "connection task gone".into()),
            None => "already reported".into(),
        }
    }

    /// Time since the peer started.
    pub fn elapsed(&self) -> Duration {
        self.t0.elapsed()
    }
}

/// What the peer thread reports at the end.
#[derive(Debug)]
pub struct Outcome<R> {
    /// The scenario's result.
    pub result: R,
    /// How the yamux connection ended (`closed`, `error: ...`, `closed by us`).
    pub conn_end: String,
}

/// A running yamux peer.
pub struct YamuxPeer<R> {
    rx: std_mpsc::Receiver<Result<Outcome<R>, String>>,
}

impl<R: Send + 'static> YamuxPeer<R> {
    /// Starts the crate in `setup` with `cfg`, running `scenario`; returns
    /// it with our end of the TCP connection.
    pub fn start<F, Fut>(setup: Setup, cfg: yamux::Config, scenario: F) -> (YamuxPeer<R>, TcpStream)
    where
        F: FnOnce(Ctl) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = std_mpsc::channel();
        let peer_listens = setup.dial == Dial::PeerListens;
        let peer_listener =
            if peer_listens { Some(listener.try_clone().expect("clone")) } else { None };
        thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let local = tokio::task::LocalSet::new();
            let outcome = local.block_on(&rt, async move {
                let tcp = match peer_listener {
                    Some(l) => {
                        l.set_nonblocking(true).expect("nonblocking");
                        let l = tokio::net::TcpListener::from_std(l).expect("listener");
                        l.accept().await.map(|(s, _)| s)
                    }
                    None => tokio::net::TcpStream::connect(addr).await,
                };
                let tcp = tcp.map_err(|e| format!("tcp: {e}"))?;
                tcp.set_nodelay(true).expect("nodelay");
                let (ctl, report_rx) = spawn_connection(tcp.compat(), cfg, mode(setup));
                let work = async move {
                    let result = scenario(ctl).await;
                    // Keep the connection running until it ends (our side
                    // closes it at the end of every test).
                    let conn_end =
                        report_rx.await.unwrap_or_else(|_| "connection task gone".into());
                    Outcome { result, conn_end }
                };
                tokio::time::timeout(PEER_LIFE, work)
                    .await
                    .map_err(|_| format!("yamux peer still running after {PEER_LIFE:?}"))
            });
            let _ = tx.send(outcome);
        });
        let sock = if peer_listens {
            drop(listener);
            TcpStream::connect(addr).expect("connect to the yamux peer")
        } else {
            crate::peer::accept_within(&listener, Duration::from_secs(10))
                .expect("the yamux peer did not connect")
        };
        (YamuxPeer { rx }, sock)
    }

    /// Waits up to `limit` for the peer's scenario and connection to end.
    pub fn wait(self, limit: Duration) -> Outcome<R> {
        match self.rx.recv_timeout(limit) {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => panic!("yamux peer failed: {e}"),
            Err(_) => panic!("yamux peer did not finish within {limit:?}"),
        }
    }
}

/// Starts a task on the current `LocalSet` that drives a yamux connection
/// over `io` in `mode`; returns the scenario's handle on it and a receiver
/// that says how the connection ended (as [`Ctl::ended`] does).
pub fn spawn_connection<T>(
    io: T,
    cfg: yamux::Config,
    mode: Mode,
) -> (Ctl, oneshot::Receiver<String>)
where
    T: futures::AsyncRead + futures::AsyncWrite + Unpin + 'static,
{
    let conn = Connection::new(io, cfg, mode);
    let (open_tx, open_rx) = mpsc::unbounded();
    let (inbound_tx, inbound) = mpsc::unbounded();
    let (close_tx, close_rx) = mpsc::unbounded();
    let (end_tx, end_rx) = oneshot::channel();
    let (report_tx, report_rx) = oneshot::channel();
    tokio::task::spawn_local(async move {
        let end = drive(conn, open_rx, inbound_tx, close_rx).await;
        let _ = report_tx.send(end.clone());
        let _ = end_tx.send(end);
    });
    let ctl = Ctl { open_tx, inbound, close_tx, end: Some(end_rx), t0: Instant::now() };
    (ctl, report_rx)
}

/// The connection task: polls `poll_next_inbound` (which is what makes a
/// `yamux::Connection` progress), serves opens and the close request.
async fn drive<T>(
    mut conn: Connection<T>,
    mut open_rx: mpsc::UnboundedReceiver<oneshot::Sender<Result<Stream, ConnectionError>>>,
    inbound_tx: mpsc::UnboundedSender<Stream>,
    mut close_rx: mpsc::UnboundedReceiver<()>,
) -> String
where
    T: futures::AsyncRead + futures::AsyncWrite + Unpin,
{
    let mut pending_open: Option<oneshot::Sender<Result<Stream, ConnectionError>>> = None;
    let mut closing = false;
    poll_fn(|cx| loop {
        if !closing {
            if let Poll::Ready(Some(())) = close_rx.poll_next_unpin(cx) {
                closing = true;
            }
        }
        if closing {
            return match conn.poll_close(cx) {
                Poll::Ready(Ok(())) => Poll::Ready("closed by us".to_string()),
                Poll::Ready(Err(e)) => Poll::Ready(format!("error while closing: {e}")),
                Poll::Pending => Poll::Pending,
            };
        }
        if pending_open.is_none() {
            if let Poll::Ready(Some(tx)) = open_rx.poll_next_unpin(cx) {
                pending_open = Some(tx);
            }
        }
        if let Some(tx) = pending_open.take() {
            match conn.poll_new_outbound(cx) {
                Poll::Ready(r) => {
                    let _ = tx.send(r);
                    continue;
                }
                Poll::Pending => pending_open = Some(tx),
            }
        }
        match conn.poll_next_inbound(cx) {
            Poll::Ready(Some(Ok(s))) => {
                let _ = inbound_tx.unbounded_send(s);
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(format!("error: {e}")),
            Poll::Ready(None) => return Poll::Ready("closed".to_string()),
            Poll::Pending => return Poll::Pending,
        }
    })
    .await
}

// ---------------------------------------------------------------------------
// Stream helpers for scenarios.

/// What the yamux side did on one stream.
#[derive(Clone, Debug, Default)]
pub struct YStream {
    /// The stream id.
    pub id: u32,
    /// Bytes written.
    pub sent: u64,
    /// FNV-1a of the bytes written.
    pub sent_fnv: Fnv,
    /// Bytes read.
    pub recv: u64,
    /// FNV-1a of the bytes read.
    pub recv_fnv: Fnv,
    /// First offset where the bytes read differ from this stream's pattern.
    pub mismatch_at: Option<u64>,
    /// Reading ended with `Ok(0)`.
    pub eof: bool,
    /// Reading ended with an error.
    pub read_err: Option<String>,
    /// Writing ended with an error.
    pub write_err: Option<String>,
    /// Closing (half-close) failed.
    pub close_err: Option<String>,
    /// When the stream finished, from the peer's start.
    pub done_at: Duration,
    /// When writing failed, from the first write.
    pub write_failed_after: Option<Duration>,
}

impl YStream {
    fn feed(&mut self, b: &[u8]) {
        if self.mismatch_at.is_none() {
            if let Some(j) = b
                .iter()
                .enumerate()
                .position(|(j, &x)| x != pattern_byte(self.id, self.recv + j as u64))
            {
                self.mismatch_at = Some(self.recv + j as u64);
            }
        }
        self.recv_fnv.write(b);
        self.recv += b.len() as u64;
    }
}

/// Reads until EOF or an error, recording into `rec`; `pace` runs after
/// every read (a slow reader sleeps there). Reads at most `buf_size` at a time.
pub async fn read_to_end<S: futures::AsyncRead + Unpin>(
    s: &mut S,
    rec: &mut YStream,
    buf_size: usize,
    pace: Option<Duration>,
) {
    let mut buf = vec![0u8; buf_size];
    loop {
        match s.read(&mut buf).await {
            Ok(0) => {
                rec.eof = true;
                return;
            }
            Ok(n) => {
                rec.feed(&buf[..n]);
                if let Some(d) = pace {
                    tokio::time::sleep(d).await;
                }
            }
            Err(e) => {
                rec.read_err = Some(format!("{:?}: {e}", e.kind()));
                return;
            }
        }
    }
}

/// Writes `n` pattern bytes of stream `rec.id` in random chunks of
/// 1..=65536 bytes.
pub async fn write_pattern<S: futures::AsyncWrite + Unpin>(
    s: &mut S,
    rec: &mut YStream,
    n: u64,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let start = Instant::now();
    while rec.sent < n {
        let size = (rng.range(1, 65536)).min(n - rec.sent) as usize;
        let chunk = pattern(rec.id, rec.sent, size);
        if let Err(e) = s.write_all(&chunk).await {
            rec.write_err = Some(format!("{:?}: {e}", e.kind()));
            rec.write_failed_after = Some(start.elapsed());
            return;
        }
        rec.sent_fnv.write(&chunk);
        rec.sent += size as u64;
    }
}

/// Echoes every byte back as it arrives, then half-closes after EOF.
pub async fn echo(mut s: Stream, t0: Instant) -> YStream {
    let mut rec = YStream { id: s.id().val(), ..Default::default() };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) => {
                rec.eof = true;
                break;
            }
            Ok(n) => {
                rec.feed(&buf[..n]);
                if let Err(e) = s.write_all(&buf[..n]).await {
                    rec.write_err = Some(format!("{:?}: {e}", e.kind()));
                    break;
                }
                rec.sent += n as u64;
                rec.sent_fnv.write(&buf[..n]);
            }
            Err(e) => {
                rec.read_err = Some(format!("{:?}: {e}", e.kind()));
                break;
            }
        }
    }
    if let Err(e) = s.close().await {
        rec.close_err = Some(e.to_string());
    }
    rec.done_at = t0.elapsed();
    rec
}

/// Writes `n` pattern bytes (random chunks) while reading concurrently,
/// half-closes after writing, reads until EOF. `pace` slows the reader.
pub async fn drive_stream(
    s: Stream,
    n: u64,
    seed: u64,
    pace: Option<Duration>,
    t0: Instant,
) -> YStream {
    let id = s.id().val();
    let (mut r, mut w) = AsyncReadExt::split(s);
    let writer = async {
        let mut rec = YStream { id, ..Default::default() };
        write_pattern(&mut w, &mut rec, n, seed).await;
        if let Err(e) = w.close().await {
            rec.close_err = Some(e.to_string());
        }
        rec
    };
    let reader = async {
        let mut rec = YStream { id, ..Default::default() };
        read_to_end(&mut r, &mut rec, 32 * 1024, pace).await;
        rec
    };
    let (wrec, rrec) = futures::join!(writer, reader);
    YStream {
        sent: wrec.sent,
        sent_fnv: wrec.sent_fnv,
        write_err: wrec.write_err,
        close_err: wrec.close_err,
        write_failed_after: wrec.write_failed_after,
        done_at: t0.elapsed(),
        ..rrec
    }
}
