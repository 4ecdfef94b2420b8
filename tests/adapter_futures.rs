//! The futures-io adapter: over smol's TCP with smol's timer, and over an
//! in-memory pipe on the `futures` executor with timers disabled.

#![cfg(feature = "futures-io")]

mod support;
use support::pattern::pattern;

use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::task::LocalSpawnExt;
use yamux_proto::adapter::futures_io as yf;
use yamux_proto::adapter::{self, Session, Stream};
use yamux_proto::{CloseReason, Config, ResetReason, Role, StreamError};

/// Two sessions over loopback TCP, drivers spawned on smol.
async fn smol_pair(client: Config, server: Config) -> (Session, Session) {
    let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepting = smol::spawn(async move { listener.accept().await });
    let c = smol::net::TcpStream::connect(addr).await.unwrap();
    let (s, _) = accepting.await.unwrap();
    let (cs, cd) = yf::new(c, client, Role::Client, smol::Timer::after).unwrap();
    let (ss, sd) = yf::new(s, server, Role::Server, smol::Timer::after).unwrap();
    smol::spawn(cd).detach();
    smol::spawn(sd).detach();
    (cs, ss)
}

/// Echoes every accepted stream, half-closing after the peer's half-close.
async fn echo_server(session: Session, spawn: impl Fn(Stream)) {
    while let Ok(stream) = session.accept().await {
        spawn(stream);
    }
}

async fn echo_stream(stream: Stream) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    futures::io::copy(r, &mut w).await?;
    w.close().await
}

async fn echo_through(stream: Stream, data: Vec<u8>) -> Vec<u8> {
    let (mut r, mut w) = stream.into_split();
    let write = async move {
        for piece in data.chunks(10_007) {
            w.write_all(piece).await.unwrap();
        }
        w.close().await.unwrap();
    };
    let read = async move {
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        got
    };
    futures::join!(write, read).1
}

#[test]
fn smol_echo_many_streams_over_tcp() {
    smol::block_on(async {
        let (client, server) = smol_pair(Config::default(), Config::default()).await;
        smol::spawn(echo_server(server, |s| smol::spawn(echo_stream(s)).detach())).detach();
        let mut tasks = Vec::new();
        for i in 0..24u64 {
            let stream = client.open().await.unwrap();
            tasks.push(smol::spawn(async move {
                let data = pattern(20_000 + 45_000 * i as usize, i);
                let got = echo_through(stream, data.clone()).await;
                assert!(got == data, "stream {i}");
            }));
        }
        for t in tasks {
            t.await;
        }
    });
}

/// A proxy on smol: each yamux stream is spliced with a TCP connection to
/// an upstream echo; 4 MiB come back whole and splice counts them.
#[test]
fn smol_splice_proxies_a_stream_to_tcp() {
    smol::block_on(async {
        let upstream = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_addr = upstream.local_addr().unwrap();
        smol::spawn(async move {
            let (sock, _) = upstream.accept().await.unwrap();
            let (r, mut w) = futures::io::AsyncReadExt::split(sock);
            futures::io::copy(r, &mut w).await.unwrap();
            w.close().await.unwrap();
        })
        .detach();
        let (client, server) = smol_pair(Config::default(), Config::default()).await;
        let proxy = smol::spawn(async move {
            let stream = server.accept().await.unwrap();
            let tcp = smol::net::TcpStream::connect(upstream_addr).await.unwrap();
            yf::splice(stream, tcp).await
        });
        let data = pattern(4 << 20, 8);
        let got = echo_through(client.open().await.unwrap(), data.clone()).await;
        assert!(got == data, "{} of {} bytes came back intact", got.len(), data.len());
        let n = data.len() as u64;
        assert_eq!(proxy.await.unwrap(), (n, n));
    });
}

#[test]
fn smol_half_close_both_directions() {
    smol::block_on(async {
        let (client, server) = smol_pair(Config::default(), Config::default()).await;
        let mut c = client.open().await.unwrap();
        c.write_all(b"question").await.unwrap();
        c.close().await.unwrap(); // half-close: reading goes on
        let e = c.write(b"x").await.unwrap_err();
        assert_eq!(adapter::stream_error(&e), Some(StreamError::WriteClosed));
        let mut s = server.accept().await.unwrap();
        let mut q = Vec::new();
        s.read_to_end(&mut q).await.unwrap();
        assert_eq!(q, b"question");
        let answer = pattern(500_000, 3);
        let mut got = Vec::new();
        let (_, read) = futures::join!(
            async {
                s.write_all(&answer).await.unwrap();
                s.close().await.unwrap();
            },
            c.read_to_end(&mut got)
        );
        read.unwrap();
        assert!(got == answer);
    });
}

#[test]
fn smol_reset_reason_reaches_the_peer() {
    smol::block_on(async {
        let (client, server) = smol_pair(Config::default(), Config::default()).await;
        let mut c = client.open().await.unwrap();
        c.write_all(b"abc").await.unwrap();
        let mut s = server.accept().await.unwrap();
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).await.unwrap();
        s.reset();
        let e = c.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
        assert_eq!(adapter::reset_reason(&e), Some(ResetReason::Remote { code: 0 }));
    });
}

#[test]
fn smol_timer_drives_keep_alive() {
    smol::block_on(async {
        let cfg = {
            let mut c = Config::default();
            c.keep_alive_interval = Some(Duration::from_millis(20));
            c
        };
        let (client, _server) = smol_pair(cfg, Config::default()).await;
        let before = client.stats().pings_sent;
        smol::Timer::after(Duration::from_millis(300)).await;
        let sent = client.stats().pings_sent - before;
        // 15 intervals; allow for a loaded machine, but the timer must fire.
        assert!(sent >= 5, "only {sent} keep-alive pings in 300 ms");
        assert_eq!(client.close_reason(), None);
        assert!(client.ping().await.unwrap() < Duration::from_secs(1));
    });
}

#[test]
fn futures_executor_in_memory_pipe_without_timers() {
    use tokio_util::compat::TokioAsyncReadCompatExt;
    // tokio's duplex is a plain in-memory pipe (no reactor needed); through
    // `compat` it is a futures-io transport.
    let (a, b) = tokio::io::duplex(16 * 1024);
    let no_timer = |_: Duration| std::future::pending::<()>();
    let (client, cd) = yf::new(a.compat(), Config::default(), Role::Client, no_timer).unwrap();
    let (server, sd) = yf::new(b.compat(), Config::default(), Role::Server, no_timer).unwrap();
    let mut pool = futures::executor::LocalPool::new();
    let spawner = pool.spawner();
    spawner.spawn_local(async move { assert_eq!(cd.await, CloseReason::Drained) }).unwrap();
    spawner.spawn_local(async move { assert_eq!(sd.await, CloseReason::TransportClosed) }).unwrap();
    let echo_spawner = spawner.clone();
    spawner
        .spawn_local(echo_server(server, move |s| {
            echo_spawner.spawn_local(async move { echo_stream(s).await.unwrap() }).unwrap()
        }))
        .unwrap();
    pool.run_until(async move {
        let mut half_closed = client.open().await.unwrap();
        half_closed.close().await.unwrap();
        let mut nothing = Vec::new();
        half_closed.read_to_end(&mut nothing).await.unwrap();
        assert!(nothing.is_empty(), "an empty stream echoes nothing, then EOF");
        for i in 0..6u64 {
            let stream = client.open().await.unwrap();
            let data = pattern(300_000, i);
            assert!(echo_through(stream, data.clone()).await == data);
        }
        drop(half_closed);
        drop(client); // last handle: go away, drain, driver ends
    });
    pool.run(); // both drivers run to completion (asserting their reasons)
}
