//! The futures-io adapter on smol: an echo server and a client in one
//! process over loopback TCP, with smol's timer for keep-alive.
//!
//! ```text
//! cargo run --example smol_echo [-- --streams N --bytes M]
//! ```
//!
//! Each of N streams (default 4) writes M bytes (default 256 KiB) while
//! reading the echo, half-closes, and verifies. Exits 0 on success.

use std::process::ExitCode;
use std::time::Instant;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use yamux_proto::adapter::futures_io as yf;
use yamux_proto::adapter::{Session, Stream};
use yamux_proto::{Config, Role};

fn main() -> ExitCode {
    let mut streams = 4usize;
    let mut bytes = 256 * 1024usize;
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse().ok());
        match (pair[0].as_str(), value) {
            ("--streams", Some(n)) => streams = n,
            ("--bytes", Some(n)) => bytes = n,
            _ => {
                eprintln!("usage: smol_echo [--streams N] [--bytes M]");
                return ExitCode::from(2);
            }
        }
    }
    match smol::block_on(run(streams, bytes)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smol_echo: FAILED: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(streams: usize, bytes: usize) -> Result<(), String> {
    let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;

    // Server: one session per connection, every stream echoed.
    smol::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (session, driver) =
                yf::new(tcp, Config::default(), Role::Server, smol::Timer::after).unwrap();
            smol::spawn(driver).detach();
            smol::spawn(serve(session)).detach();
        }
    })
    .detach();

    // Client.
    let tcp = smol::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (session, driver) = yf::new(tcp, Config::default(), Role::Client, smol::Timer::after)
        .map_err(|e| e.to_string())?;
    let driver = smol::spawn(driver);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..streams {
        let stream = session.open().await.map_err(|e| e.to_string())?;
        tasks.push(smol::spawn(check_echo(k, stream, bytes)));
    }
    for (k, t) in tasks.into_iter().enumerate() {
        t.await.map_err(|e| format!("stream {k}: {e}"))?;
    }
    let rtt = session.ping().await.map_err(|e| e.to_string())?;
    println!(
        "ok: {streams} streams x {bytes} bytes echoed and verified in {:?}; ping rtt {rtt:?}",
        start.elapsed()
    );
    let reason = session.close().await;
    println!("session closed: {reason}; driver finished: {}", driver.await);
    Ok(())
}

async fn serve(session: Session) {
    while let Ok(stream) = session.accept().await {
        smol::spawn(async move {
            let (r, mut w) = stream.into_split();
            futures::io::copy(r, &mut w).await?;
            w.close().await // half-close after the peer's
        })
        .detach();
    }
}

async fn check_echo(k: usize, stream: Stream, bytes: usize) -> Result<(), String> {
    let data: Vec<u8> = (0..bytes).map(|i| (i * 7 + k * 13 + (i >> 10)) as u8).collect();
    let (mut r, mut w) = stream.into_split();
    let write = async {
        w.write_all(&data).await?;
        w.close().await
    };
    let mut got = Vec::new();
    let (wrote, read) = futures::join!(write, r.read_to_end(&mut got));
    wrote.map_err(|e| format!("write: {e}"))?;
    read.map_err(|e| format!("read: {e}"))?;
    if got != data {
        return Err(format!("echo differs ({} of {} bytes)", got.len(), data.len()));
    }
    Ok(())
}
