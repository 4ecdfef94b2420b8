//! Benchmarks over real loopback TCP, where users meet the crate: our tokio
//! adapter, the `yamux` crate and raw TCP, in one run.
//!
//! ```text
//! cargo bench --bench tcp --all-features                   # everything
//! cargo bench --bench tcp --all-features -- --quick        # scaled down
//! cargo bench --bench tcp --all-features -- bulk rtt       # a subset
//! ```
//!
//! The server and the client each run on their own thread with their own
//! current-thread tokio runtime, as two processes would; every stream is
//! used through plain `AsyncRead`/`AsyncWrite` (`write_all`, `read`). The
//! server answers each stream by its first byte: `S` sinks (reads to the
//! end, then answers with the byte count) and `E` echoes. Raw TCP does the
//! same with one TCP connection per stream: it is the ceiling, with no
//! multiplexing at all (and no head-of-line blocking between "streams").
//!
//! Workloads: `bulk` (1 and 16 streams), `rr` (64 B request/response on one
//! stream), `churn` (short streams opened and closed), `rtt` (a 64 B
//! ping-pong's latency, p50 and p99, idle and beside a bulk stream). Each
//! measurement is repeated, the libraries alternating so that noise hits
//! all alike; the median is shown.
//!
//! Raw TCP's "beside a bulk stream" is two connections served by one
//! current-thread runtime on each side: the bulk connection's reads and
//! writes rarely block on loopback, so its task holds the thread until
//! tokio's cooperative budget runs out, and the ping waits. Its latency
//! there measures the runtime, not TCP.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};
use yamux_proto::adapter::tokio as yt;
use yamux_proto::{Config, Role};

#[path = "support/yamux_driver.rs"]
mod yamux_driver;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const BLOCK: usize = 64 * KIB;
const MSG: usize = 64;

/// A byte stream of any of the three.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}
type BoxIo = Box<dyn Io>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lib {
    Ours,
    Yamux,
    Raw,
}

const LIBS: [Lib; 3] = [Lib::Ours, Lib::Yamux, Lib::Raw];

// ---------------------------------------------------------------------------
// The server: its own thread and runtime.
// ---------------------------------------------------------------------------

/// Answers one stream by its first byte.
async fn serve_stream(mut s: BoxIo) {
    let mut tag = [0u8; 1];
    if s.read_exact(&mut tag).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; BLOCK];
    match tag[0] {
        b'S' => {
            let mut total = 0u64;
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n as u64,
                }
            }
            let _ = s.write_all(&total.to_be_bytes()).await;
            let _ = s.shutdown().await;
        }
        b'E' => loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = s.shutdown().await;
                    break;
                }
                Ok(n) => {
                    if s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        },
        _ => {}
    }
}

/// Starts a server for `lib` on its own thread; returns its address. It
/// serves until the client goes away.
fn start_server(lib: Lib) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send addr");
            match lib {
                Lib::Raw => loop {
                    let Ok((sock, _)) = listener.accept().await else { return };
                    tune(&sock);
                    tokio::spawn(serve_stream(Box::new(sock)));
                },
                Lib::Ours => {
                    let (sock, _) = listener.accept().await.expect("accept");
                    tune(&sock);
                    let session = yt::spawn(sock, Config::default(), Role::Server).expect("cfg");
                    while let Ok(s) = session.accept().await {
                        tokio::spawn(serve_stream(Box::new(s)));
                    }
                }
                Lib::Yamux => {
                    let (sock, _) = listener.accept().await.expect("accept");
                    tune(&sock);
                    let conn =
                        yamux::Connection::new(sock.compat(), yamux_config(), yamux::Mode::Server);
                    yamux_driver::server(conn, |s| {
                        tokio::spawn(serve_stream(Box::new(s.compat())));
                    })
                    .await;
                }
            }
        });
    });
    rx.recv().expect("server address")
}

/// Socket options for every socket of the run: TCP_NODELAY, and with
/// `LOWAT=n` in the environment TCP_NOTSENT_LOWAT (experiment).
fn tune(sock: &TcpStream) {
    // `NODELAY=0`: leave Nagle's algorithm on (experiment).
    let nodelay = std::env::var("NODELAY").map_or(true, |v| v != "0");
    sock.set_nodelay(nodelay).expect("nodelay");
    if let Some(n) = std::env::var("LOWAT").ok().and_then(|v| v.parse().ok()) {
        socket2::SockRef::from(sock).set_tcp_notsent_lowat(n).expect("lowat");
    }
}

fn yamux_config() -> yamux::Config {
    let mut c = yamux::Config::default();
    c.set_max_num_streams(1024);
    c
}

// ---------------------------------------------------------------------------
// The client: opens streams of the library under test.
// ---------------------------------------------------------------------------

/// The client side's way to get a new stream.
enum Client {
    Ours(yt::Session),
    Yamux(yamux_driver::Opener),
    Raw(SocketAddr),
}

impl Client {
    async fn connect(lib: Lib, addr: SocketAddr) -> Client {
        if lib == Lib::Raw {
            return Client::Raw(addr);
        }
        let sock = TcpStream::connect(addr).await.expect("connect");
        tune(&sock);
        match lib {
            Lib::Ours => {
                Client::Ours(yt::spawn(sock, Config::default(), Role::Client).expect("cfg"))
            }
            _ => {
                let conn =
                    yamux::Connection::new(sock.compat(), yamux_config(), yamux::Mode::Client);
                let (opener, driver) = yamux_driver::client(conn);
                tokio::spawn(driver);
                Client::Yamux(opener)
            }
        }
    }

    async fn open(&self, tag: u8) -> BoxIo {
        let mut s: BoxIo = match self {
            Client::Ours(session) => Box::new(session.open().await.expect("open")),
            Client::Yamux(opener) => Box::new(opener.open().await.compat()),
            Client::Raw(addr) => {
                let s = TcpStream::connect(addr).await.expect("connect");
                tune(&s);
                Box::new(s)
            }
        };
        s.write_all(&[tag]).await.expect("tag");
        s
    }
}

/// Runs `body` against a fresh server of `lib`, on the client's own
/// runtime; returns what `body` measured.
fn measure<T, F, Fut>(lib: Lib, body: F) -> T
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = T>,
{
    let addr = start_server(lib);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async move {
        let client = Client::connect(lib, addr).await;
        body(client).await
    })
}

// ---------------------------------------------------------------------------
// Workloads.
// ---------------------------------------------------------------------------

/// Sinks `bytes` on a new stream; returns when the server has counted them.
async fn sink(client: &Client, bytes: usize) {
    let mut s = client.open(b'S').await;
    let block = vec![0x5a_u8; BLOCK];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(BLOCK);
        s.write_all(&block[..n]).await.expect("write");
        left -= n;
    }
    s.shutdown().await.expect("shutdown");
    let mut count = [0u8; 8];
    s.read_exact(&mut count).await.expect("count");
    assert_eq!(u64::from_be_bytes(count), bytes as u64, "the server got every byte");
}

async fn bulk(client: Client, streams: usize, total: usize) -> Duration {
    let start = Instant::now();
    let each = total / streams;
    let tasks: Vec<_> = (0..streams).map(|_| sink(&client, each)).collect();
    futures::future::join_all(tasks).await;
    start.elapsed()
}

/// Time per 64 B round trip on one stream.
async fn request_response(client: Client, trips: usize) -> Duration {
    let mut s = client.open(b'E').await;
    let mut msg = [7u8; MSG];
    let start = Instant::now();
    for _ in 0..trips {
        s.write_all(&msg).await.expect("write");
        s.read_exact(&mut msg).await.expect("read");
    }
    start.elapsed() / trips as u32
}

/// Time per short stream: open, 1 KiB each way, closed both ways; at most
/// 64 at once.
async fn churn(client: Client, streams: usize) -> Duration {
    let start = Instant::now();
    let client = &client;
    futures::stream::iter(0..streams)
        .for_each_concurrent(64, |_| async move {
            let mut s = client.open(b'E').await;
            s.write_all(&[3u8; KIB]).await.expect("write");
            s.shutdown().await.expect("shutdown");
            let mut back = Vec::with_capacity(KIB);
            s.read_to_end(&mut back).await.expect("read");
            assert_eq!(back.len(), KIB);
        })
        .await;
    start.elapsed() / streams as u32
}

/// The latencies of `trips` 64 B ping-pongs on one stream, sorted; beside a
/// stream that sinks bulk data all the while if `beside_bulk`.
async fn rtt(client: Client, trips: usize, beside_bulk: bool) -> Vec<Duration> {
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let bulk = async {
        if !beside_bulk {
            return;
        }
        let mut s = client.open(b'S').await;
        let block = vec![0x5a_u8; BLOCK];
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                r = s.write_all(&block) => r.expect("bulk write"),
            }
        }
        s.shutdown().await.expect("shutdown");
        let mut count = [0u8; 8];
        s.read_exact(&mut count).await.expect("count");
    };
    let pings = async {
        let mut s = client.open(b'E').await;
        let mut msg = [9u8; MSG];
        // Let the bulk stream fill every buffer on the way first.
        tokio::time::sleep(Duration::from_millis(if beside_bulk { 200 } else { 0 })).await;
        let mut samples = Vec::with_capacity(trips);
        // Raw TCP beside bulk can take hundreds of ms a trip (see the
        // module docs): at most 5 s of samples.
        let until = Instant::now() + Duration::from_secs(5);
        for _ in 0..trips {
            if Instant::now() > until {
                break;
            }
            let t = Instant::now();
            s.write_all(&msg).await.expect("write");
            s.read_exact(&mut msg).await.expect("read");
            samples.push(t.elapsed());
        }
        let _ = stop_tx.send(());
        samples
    };
    let ((), mut samples) = futures::join!(bulk, pings);
    samples.sort_unstable();
    samples
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

// ---------------------------------------------------------------------------
// Running and reporting.
// ---------------------------------------------------------------------------

struct Scale {
    reps: usize,
    bulk: usize,
    rr_trips: usize,
    churn_streams: usize,
    rtt_trips: usize,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Runs `f` for each library `reps` times after a warm-up, alternating the
/// libraries; the median for each.
fn each_lib(reps: usize, mut f: impl FnMut(Lib) -> Duration) -> [Duration; 3] {
    let mut runs: [Vec<Duration>; 3] = Default::default();
    for rep in 0..=reps {
        for (i, lib) in LIBS.into_iter().enumerate() {
            let d = f(lib);
            if rep > 0 {
                runs[i].push(d);
            }
        }
    }
    runs.map(median)
}

fn mib_s(bytes: usize, d: Duration) -> String {
    format!("{:.0} MiB/s", bytes as f64 / MIB as f64 / d.as_secs_f64())
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn row(workload: &str, cells: [String; 3], ours_vs_yamux: f64, ours_vs_raw: f64) {
    println!(
        "| {workload} | {} | {} | {} | {ours_vs_yamux:.2}× | {:.0} % |",
        cells[0],
        cells[1],
        cells[2],
        ours_vs_raw * 100.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let words: Vec<&str> =
        args.iter().filter(|a| !a.starts_with("--")).map(String::as_str).collect();
    let wanted = |w: &str| words.is_empty() || words.contains(&w);
    let s = if quick {
        Scale { reps: 3, bulk: 128 * MIB, rr_trips: 2_000, churn_streams: 1_000, rtt_trips: 500 }
    } else {
        Scale { reps: 5, bulk: 512 * MIB, rr_trips: 10_000, churn_streams: 4_000, rtt_trips: 2_000 }
    };
    println!(
        "# loopback TCP, client and server on their own threads and runtimes; {} reps after a \
         warm-up, median\n",
        s.reps
    );
    println!("| workload | ours | yamux crate | raw TCP | ours / yamux crate | ours / raw TCP |");
    println!("|---|---|---|---|---|---|");
    if wanted("bulk") {
        for streams in [1, 16] {
            let t = each_lib(s.reps, |lib| measure(lib, |c| bulk(c, streams, s.bulk)));
            row(
                &format!("bulk {} MiB, {streams} stream(s), 64 KiB `write_all`", s.bulk / MIB),
                t.map(|d| mib_s(s.bulk, d)),
                t[1].as_secs_f64() / t[0].as_secs_f64(),
                t[2].as_secs_f64() / t[0].as_secs_f64(),
            );
        }
    }
    if wanted("rr") {
        let t = each_lib(s.reps, |lib| measure(lib, |c| request_response(c, s.rr_trips)));
        row(
            &format!("request/response: {} × 64 B on one stream (per round trip)", s.rr_trips),
            t.map(micros),
            t[1].as_secs_f64() / t[0].as_secs_f64(),
            t[2].as_secs_f64() / t[0].as_secs_f64(),
        );
    }
    if wanted("churn") {
        let t = each_lib(s.reps, |lib| measure(lib, |c| churn(c, s.churn_streams)));
        row(
            &format!(
                "churn: {} streams, 1 KiB each way, ≤ 64 at once (per stream)",
                s.churn_streams
            ),
            t.map(micros),
            t[1].as_secs_f64() / t[0].as_secs_f64(),
            t[2].as_secs_f64() / t[0].as_secs_f64(),
        );
    }
    if wanted("rtt") {
        for beside_bulk in [false, true] {
            let mut p50 = Vec::new();
            let mut p99 = Vec::new();
            for lib in LIBS {
                // All samples of all reps together: the tail needs them.
                let mut all = Vec::new();
                for _ in 0..s.reps {
                    all.extend(measure(lib, |c| rtt(c, s.rtt_trips, beside_bulk)));
                }
                all.sort_unstable();
                p50.push(percentile(&all, 0.50));
                p99.push(percentile(&all, 0.99));
            }
            let what = if beside_bulk { "beside a bulk stream" } else { "idle" };
            for (name, v) in [("p50", &p50), ("p99", &p99)] {
                row(
                    &format!("RTT of a 64 B ping-pong, {what}, {name}"),
                    [micros(v[0]), micros(v[1]), micros(v[2])],
                    v[1].as_secs_f64() / v[0].as_secs_f64(),
                    v[2].as_secs_f64() / v[0].as_secs_f64(),
                );
            }
        }
    }
}
