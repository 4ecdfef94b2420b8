//! The two properties libp2p's muxer test harness checks, at the
//! `StreamMuxer` level, between our muxer and `libp2p-yamux`'s in both
//! roles and between two of ours:
//!
//! * **close implies flush**: a substream written and then closed delivers
//!   everything written before the close, with nothing else flushed;
//! * **read after close**: after closing its write half, a substream still
//!   reads what the other side writes afterwards.
//!
//! Each muxer runs in a task of its own that polls it unconditionally (as
//! libp2p's connection task does), hands out inbound substreams and opens
//! outbound ones on request. The connection is a `tokio::io::duplex`.

use std::future::poll_fn;
use std::task::Poll;

use futures::channel::{mpsc, oneshot};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p_core::muxing::{StreamMuxer, StreamMuxerExt};
use libp2p_core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

type Io = Compat<tokio::io::DuplexStream>;
type Substream = Box<dyn Substreamish>;

/// A substream of either muxer.
trait Substreamish: futures::AsyncRead + futures::AsyncWrite + Unpin + Send {}
impl<T: futures::AsyncRead + futures::AsyncWrite + Unpin + Send> Substreamish for T {}

/// A muxer running in its own task.
struct Running {
    open: mpsc::UnboundedSender<oneshot::Sender<Substream>>,
    inbound: mpsc::UnboundedReceiver<Substream>,
}

impl Running {
    async fn open(&self) -> Substream {
        let (tx, rx) = oneshot::channel();
        self.open.unbounded_send(tx).expect("muxer task alive");
        rx.await.expect("outbound substream")
    }

    async fn accept(&mut self) -> Substream {
        self.inbound.next().await.expect("inbound substream")
    }
}

/// Spawns a task that polls `muxer` unconditionally, opens outbound
/// substreams on request and passes inbound ones on.
fn run<M>(mut muxer: M) -> Running
where
    M: StreamMuxer + Unpin + Send + 'static,
    M::Substream: Substreamish + 'static,
    M::Error: std::fmt::Debug,
{
    let (open, mut requests) = mpsc::unbounded::<oneshot::Sender<Substream>>();
    let (inbound_tx, inbound) = mpsc::unbounded();
    tokio::spawn(async move {
        let mut waiting: Vec<oneshot::Sender<Substream>> = Vec::new();
        poll_fn(|cx| {
            if let Poll::Ready(Err(_)) = muxer.poll_unpin(cx) {
                return Poll::Ready(());
            }
            while let Poll::Ready(Some(reply)) = requests.poll_next_unpin(cx) {
                waiting.push(reply);
            }
            while !waiting.is_empty() {
                match muxer.poll_outbound_unpin(cx) {
                    Poll::Ready(Ok(s)) => {
                        let _ = waiting.remove(0).send(Box::new(s));
                    }
                    Poll::Ready(Err(e)) => panic!("poll_outbound: {e:?}"),
                    Poll::Pending => break,
                }
            }
            loop {
                match muxer.poll_inbound_unpin(cx) {
                    Poll::Ready(Ok(s)) => {
                        let _ = inbound_tx.unbounded_send(Box::new(s) as Substream);
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await;
    });
    Running { open, inbound }
}

/// Which muxer an end uses.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Ours,
    LibP2pYamux,
}

/// A dialer of `dialer`'s kind connected to a listener of `listener`'s.
fn pair(dialer: Kind, listener: Kind) -> (Running, Running) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    (start(dialer, a.compat(), true), start(listener, b.compat(), false))
}

fn start(kind: Kind, io: Io, dialer: bool) -> Running {
    match kind {
        Kind::Ours => upgrade_and_run(yamux_proto_libp2p::Config::default(), io, dialer),
        Kind::LibP2pYamux => upgrade_and_run(libp2p_yamux::Config::default(), io, dialer),
    }
}

/// Upgrades `io` with `config` in the dialer's or the listener's role, as
/// libp2p's transport does, and runs the muxer it gives.
fn upgrade_and_run<U, M>(config: U, io: Io, dialer: bool) -> Running
where
    U: InboundConnectionUpgrade<Io, Output = M, Error = std::io::Error>
        + OutboundConnectionUpgrade<Io, Output = M, Error = std::io::Error, Info = &'static str>,
    M: StreamMuxer + Unpin + Send + 'static,
    M::Substream: Substreamish + 'static,
    M::Error: std::fmt::Debug,
{
    let name = "/yamux/1.0.0";
    let muxer = if dialer {
        futures::executor::block_on(config.upgrade_outbound(io, name))
    } else {
        futures::executor::block_on(config.upgrade_inbound(io, name))
    };
    run(muxer.expect("upgrade"))
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + (i >> 10)) as u8).collect()
}

/// The opener writes 1 MiB (four times the initial window) and closes; the
/// accepter reads to the end and must get all of it.
async fn close_implies_flush(dialer: Kind, listener: Kind) {
    let (alice, mut bob) = pair(dialer, listener);
    let data = payload(1 << 20);
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        let mut s = alice.open().await;
        s.write_all(&sent).await.expect("write");
        s.close().await.expect("close");
        // Keep the muxer (and the substream) alive until the reader is done.
        (alice, s)
    });
    let mut s = bob.accept().await;
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.expect("read to end");
    assert!(got == data, "{} of {} bytes arrived", got.len(), data.len());
    drop(writer.await.expect("writer"));
}

/// The opener writes a request and closes its write half, then reads the
/// reply that the other side writes only after it has read the request to
/// its end.
async fn read_after_close(dialer: Kind, listener: Kind) {
    let (alice, mut bob) = pair(dialer, listener);
    let request = payload(300_000);
    let reply = payload(700_000);
    let expected = reply.clone();
    let server = tokio::spawn(async move {
        let mut s = bob.accept().await;
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.expect("read request");
        s.write_all(&reply).await.expect("write reply");
        s.close().await.expect("close reply");
        (bob, got)
    });
    let mut s = alice.open().await;
    s.write_all(&request).await.expect("write request");
    s.close().await.expect("close");
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.expect("read after close");
    assert!(got == expected, "{} of {} reply bytes", got.len(), expected.len());
    let (_bob, seen) = server.await.expect("server");
    assert!(seen == request);
}

/// A property that does not finish in 30 s fails instead of hanging.
async fn within(property: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(std::time::Duration::from_secs(30), property).await.expect("in time");
}

#[tokio::test]
async fn close_implies_flush_ours_to_libp2p_yamux() {
    within(close_implies_flush(Kind::Ours, Kind::LibP2pYamux)).await;
}

#[tokio::test]
async fn close_implies_flush_libp2p_yamux_to_ours() {
    within(close_implies_flush(Kind::LibP2pYamux, Kind::Ours)).await;
}

#[tokio::test]
async fn close_implies_flush_ours_to_ours() {
    within(close_implies_flush(Kind::Ours, Kind::Ours)).await;
}

#[tokio::test]
async fn read_after_close_ours_to_libp2p_yamux() {
    within(read_after_close(Kind::Ours, Kind::LibP2pYamux)).await;
}

#[tokio::test]
async fn read_after_close_libp2p_yamux_to_ours() {
    within(read_after_close(Kind::LibP2pYamux, Kind::Ours)).await;
}

#[tokio::test]
async fn read_after_close_ours_to_ours() {
    within(read_after_close(Kind::Ours, Kind::Ours)).await;
}
