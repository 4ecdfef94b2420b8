//! An echo server and a verifying client over yamux, usable against any
//! yamux peer (this crate, the `yamux` crate, hashicorp/yamux).
//!
//! ```text
//! cargo run --release --example echo -- server ADDR
//! cargo run --release --example echo -- client ADDR [--streams N] [--bytes M] [--timeout SECS]
//! ```
//!
//! * `server ADDR` listens on ADDR (port 0 picks one; the address is printed
//!   as `listening on IP:PORT`). Each TCP connection is a server-role
//!   session; every accepted stream's bytes are echoed back unchanged, and
//!   the stream is half-closed after the peer's half-close.
//! * `client ADDR` connects as the client role, opens N streams at once
//!   (default 8); each writes M bytes (default 1 MiB) of a checkable pattern
//!   while reading the echo, half-closes, and verifies every byte. Exits 0
//!   on success; otherwise prints what went wrong and exits 1 (2 for bad
//!   arguments).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use yamux_proto::adapter::tokio as yt;
use yamux_proto::adapter::{Session, Stream};
use yamux_proto::{Config, Role};

const USAGE: &str = "usage: echo server ADDR\n       \
                     echo client ADDR [--streams N] [--bytes M] [--timeout SECS]";

/// The byte at `offset` of stream number `k`: depends on both, and on the
/// offset's higher bits, so shifted, swapped or repeated blocks are caught.
fn pattern_byte(k: usize, offset: usize) -> u8 {
    (offset.wrapping_mul(31) ^ (offset >> 9) ^ k.wrapping_mul(0x9d)) as u8
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok(Cmd::Server(addr)) => match server(&addr).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("echo server: {e}");
                ExitCode::from(1)
            }
        },
        Ok(Cmd::Client { addr, streams, bytes, timeout }) => {
            match tokio::time::timeout(timeout, client(&addr, streams, bytes)).await {
                Ok(Ok(())) => ExitCode::SUCCESS,
                Ok(Err(e)) => {
                    eprintln!("echo client: FAILED: {e}");
                    ExitCode::from(1)
                }
                Err(_) => {
                    eprintln!("echo client: FAILED: not done after {timeout:?}");
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => {
            eprintln!("echo: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

enum Cmd {
    Server(String),
    Client { addr: String, streams: usize, bytes: usize, timeout: Duration },
}

fn parse(args: &[String]) -> Result<Cmd, String> {
    let (mode, addr, rest) = match args {
        [mode, addr, rest @ ..] => (mode.as_str(), addr.clone(), rest),
        _ => return Err("missing arguments".into()),
    };
    match mode {
        "server" if rest.is_empty() => Ok(Cmd::Server(addr)),
        "server" => Err(format!("unexpected argument {:?}", rest[0])),
        "client" => {
            let (mut streams, mut bytes, mut timeout) = (8, 1 << 20, 120);
            let mut it = rest.iter();
            while let Some(flag) = it.next() {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                let n: usize =
                    value.parse().map_err(|_| format!("{flag}: bad number {value:?}"))?;
                match flag.as_str() {
                    "--streams" => streams = n,
                    "--bytes" => bytes = n,
                    "--timeout" => timeout = n as u64,
                    _ => return Err(format!("unknown option {flag:?}")),
                }
            }
            Ok(Cmd::Client { addr, streams, bytes, timeout: Duration::from_secs(timeout) })
        }
        _ => Err(format!("unknown mode {mode:?}")),
    }
}

// ---- server ----

async fn server(addr: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (tcp, peer) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let session = yt::spawn(tcp, Config::default(), Role::Server)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        tokio::spawn(serve_session(session, peer));
    }
}

async fn serve_session(session: Session, peer: SocketAddr) {
    loop {
        match session.accept().await {
            Ok(stream) => {
                tokio::spawn(async move {
                    let id = stream.id();
                    if let Err(e) = echo(stream).await {
                        eprintln!("echo server: {peer} stream {id}: {e}");
                    }
                });
            }
            Err(e) => {
                eprintln!("echo server: {peer}: session ended: {e}");
                return;
            }
        }
    }
}

/// Echoes until the peer's half-close, then half-closes.
async fn echo(stream: Stream) -> std::io::Result<()> {
    let (mut r, mut w) = stream.into_split();
    tokio::io::copy(&mut r, &mut w).await?;
    w.shutdown().await
}

// ---- client ----

async fn client(addr: &str, streams: usize, bytes: usize) -> Result<(), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let session = yt::spawn(tcp, Config::default(), Role::Client).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(streams);
    for k in 0..streams {
        let stream = session.open().await.map_err(|e| format!("open stream {k}: {e}"))?;
        tasks.push(tokio::spawn(run_stream(k, stream, bytes)));
    }
    let mut failures = Vec::new();
    for (k, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("stream {k}: {e}")),
            Err(e) => failures.push(format!("stream {k}: task failed: {e}")),
        }
    }
    let elapsed = start.elapsed();
    session.close().await;
    if !failures.is_empty() {
        return Err(format!(
            "{} of {streams} streams failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        ));
    }
    let total = (streams * bytes) as f64;
    println!(
        "ok: {streams} streams x {bytes} bytes echoed and verified in {:.3} s ({:.1} MiB/s each way)",
        elapsed.as_secs_f64(),
        total / elapsed.as_secs_f64().max(1e-9) / (1024.0 * 1024.0)
    );
    Ok(())
}

/// Writes the pattern while reading the echo (both at once, or the two
/// directions' windows would deadlock), half-closes, verifies.
async fn run_stream(k: usize, stream: Stream, bytes: usize) -> Result<(), String> {
    let (mut r, mut w) = stream.into_split();
    let writer = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut off = 0;
        while off < bytes {
            let n = buf.len().min(bytes - off);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern_byte(k, off + i);
            }
            w.write_all(&buf[..n]).await.map_err(|e| format!("write at {off}: {e}"))?;
            off += n;
        }
        w.shutdown().await.map_err(|e| format!("half-close: {e}"))
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0;
    loop {
        let n = r.read(&mut buf).await.map_err(|e| format!("read at {off}: {e}"))?;
        if n == 0 {
            break;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            let want = pattern_byte(k, off + i);
            if b != want {
                return Err(format!("byte {} is {b:#04x}, expected {want:#04x}", off + i));
            }
        }
        off += n;
        if off > bytes {
            return Err(format!("received {off} bytes, more than the {bytes} sent"));
        }
    }
    writer.await.map_err(|e| format!("writer task: {e}"))??;
    if off != bytes {
        return Err(format!("echo ended after {off} of {bytes} bytes"));
    }
    Ok(())
}
