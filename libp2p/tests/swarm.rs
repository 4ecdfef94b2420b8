//! Our muxer in a real libp2p `Swarm`, talking to a `Swarm` that uses
//! `libp2p-yamux` (the yamux crate), over libp2p's memory transport (or,
//! with `tcp` in the name, loopback TCP) with plaintext authentication. The protocol is an echo on
//! `libp2p-stream`: the opener writes a pattern, closes its write half,
//! and reads the echo back; 64 streams at once, in both directions, with
//! either side dialling.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p_core::{transport::MemoryTransport, upgrade::Version, Transport};
use libp2p_identity::{Keypair, PeerId};
use libp2p_swarm::{StreamProtocol, Swarm};
use libp2p_swarm_test::SwarmExt;

const ECHO: StreamProtocol = StreamProtocol::new("/echo/1.0.0");
const STREAMS: usize = 64;

/// Which muxer a swarm uses.
#[derive(Clone, Copy, Debug)]
enum Muxer {
    Ours,
    LibP2pYamux,
}

/// A swarm with `muxer` over the memory transport, plaintext, and the
/// `libp2p-stream` behaviour; idle connections are kept for the test.
fn swarm(muxer: Muxer) -> Swarm<libp2p_stream::Behaviour> {
    let identity = Keypair::generate_ed25519();
    let peer_id = PeerId::from(identity.public());
    // TCP beside memory: libp2p-swarm-test's `listen` listens on both.
    let authenticated = MemoryTransport::default()
        .or_transport(libp2p_tcp::tokio::Transport::default())
        .upgrade(Version::V1)
        .authenticate(libp2p_plaintext::Config::new(&identity));
    let transport = match muxer {
        Muxer::Ours => authenticated.multiplex(yamux_proto_libp2p::Config::default()).boxed(),
        Muxer::LibP2pYamux => authenticated.multiplex(libp2p_yamux::Config::default()).boxed(),
    };
    let config = libp2p_swarm::Config::with_tokio_executor()
        .with_idle_connection_timeout(Duration::from_secs(60));
    Swarm::new(transport, libp2p_stream::Behaviour::new(), peer_id, config)
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) ^ seed.wrapping_mul(17) ^ (i >> 8)) as u8).collect()
}

/// Echoes every `ECHO` stream `swarm` accepts, in tasks of their own.
fn serve_echo(swarm: &Swarm<libp2p_stream::Behaviour>) {
    let mut incoming = swarm.behaviour().new_control().accept(ECHO).expect("first accept");
    tokio::spawn(async move {
        while let Some((_, stream)) = incoming.next().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                futures::io::copy(&mut r, &mut w).await.expect("echo copy");
                w.close().await.expect("echo close");
            });
        }
    });
}

/// Opens `STREAMS` echo streams through `control` to `peer` at once, each with
/// its own pattern of a few KiB to a few hundred KiB, and checks every echo.
async fn echo_many(control: libp2p_stream::Control, peer: PeerId) -> usize {
    let mut tasks = Vec::new();
    for k in 0..STREAMS {
        let mut control = control.clone();
        tasks.push(tokio::spawn(async move {
            let stream = control.open_stream(peer, ECHO).await.expect("open_stream");
            let data = pattern(2_000 + k * 5_000, k);
            let (mut r, mut w) = stream.split();
            let write = async {
                w.write_all(&data).await.expect("write");
                w.close().await.expect("close");
            };
            let mut echo = Vec::new();
            let read = r.read_to_end(&mut echo);
            let ((), read) = futures::join!(write, read);
            read.expect("read");
            assert!(echo == data, "stream {k}: {} of {} bytes came back", echo.len(), data.len());
            data.len()
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("stream task");
    }
    total
}

/// `dialer` dials `listener` (over loopback TCP if `tcp`, else memory);
/// both serve echo; each side then runs `STREAMS` echo streams to the
/// other at the same time.
async fn exchange(dialer: Muxer, listener: Muxer, tcp: bool) {
    let mut a = swarm(dialer);
    let mut b = swarm(listener);
    if tcp {
        b.listen().with_tcp_addr_external().await;
    } else {
        b.listen().with_memory_addr_external().await;
    }
    a.connect(&mut b).await;
    let (a_id, b_id) = (*a.local_peer_id(), *b.local_peer_id());
    serve_echo(&a);
    serve_echo(&b);
    let (a_control, b_control) = (a.behaviour().new_control(), b.behaviour().new_control());
    let (from_a, from_b) = (echo_many(a_control, b_id), echo_many(b_control, a_id));
    tokio::spawn(a.loop_on_next());
    tokio::spawn(b.loop_on_next());
    let both = async { futures::join!(from_a, from_b) };
    let (sent_a, sent_b) =
        tokio::time::timeout(Duration::from_secs(60), both).await.expect("echoes in time");
    let expected: usize = (0..STREAMS).map(|k| 2_000 + k * 5_000).sum();
    assert_eq!((sent_a, sent_b), (expected, expected));
}

#[tokio::test]
async fn ours_dials_libp2p_yamux_and_both_echo_many_streams() {
    exchange(Muxer::Ours, Muxer::LibP2pYamux, false).await;
}

#[tokio::test]
async fn libp2p_yamux_dials_ours_and_both_echo_many_streams() {
    exchange(Muxer::LibP2pYamux, Muxer::Ours, false).await;
}

#[tokio::test]
async fn ours_dials_libp2p_yamux_over_tcp() {
    exchange(Muxer::Ours, Muxer::LibP2pYamux, true).await;
}

#[tokio::test]
async fn libp2p_yamux_dials_ours_over_tcp() {
    exchange(Muxer::LibP2pYamux, Muxer::Ours, true).await;
}

#[tokio::test]
async fn ours_on_both_sides() {
    exchange(Muxer::Ours, Muxer::Ours, false).await;
}
