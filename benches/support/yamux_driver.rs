//! Driving a `yamux::Connection` (the crate the benchmarks compare with)
//! from one task each side, as its own docs ask: `poll_next_inbound`
//! drives the connection. Shared by `compare.rs` and `tcp.rs`.

use std::future::Future;
use std::task::Poll;

use futures::channel::{mpsc, oneshot};
use futures::io::{AsyncRead, AsyncWrite};
use futures::StreamExt;

/// Asks a client connection's driver for new outbound streams.
#[derive(Clone)]
pub struct Opener(mpsc::UnboundedSender<oneshot::Sender<yamux::Stream>>);

impl Opener {
    pub async fn open(&self) -> yamux::Stream {
        let (tx, rx) = oneshot::channel();
        self.0.unbounded_send(tx).expect("driver gone");
        rx.await.expect("open failed")
    }
}

/// The client side's driver, to spawn, and the handle that opens streams
/// through it (`poll_new_outbound`, one request at a time).
pub fn client<T>(mut conn: yamux::Connection<T>) -> (Opener, impl Future<Output = ()>)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (open_tx, mut open_rx) = mpsc::unbounded::<oneshot::Sender<yamux::Stream>>();
    let mut waiting: Option<oneshot::Sender<yamux::Stream>> = None;
    let driver = futures::future::poll_fn(move |cx| loop {
        match conn.poll_next_inbound(cx) {
            Poll::Ready(Some(Ok(_))) => continue,
            Poll::Ready(_) => return Poll::Ready(()),
            Poll::Pending => {}
        }
        if waiting.is_none() {
            if let Poll::Ready(Some(req)) = open_rx.poll_next_unpin(cx) {
                waiting = Some(req);
            }
        }
        if waiting.is_some() {
            match conn.poll_new_outbound(cx) {
                Poll::Ready(Ok(s)) => {
                    let _ = waiting.take().expect("request").send(s);
                    continue;
                }
                Poll::Ready(Err(e)) => panic!("yamux open: {e}"),
                Poll::Pending => {}
            }
        }
        return Poll::Pending;
    });
    (Opener(open_tx), driver)
}

/// The server side's driver, to spawn: every inbound stream goes to
/// `on_stream`.
pub fn server<T>(
    mut conn: yamux::Connection<T>,
    mut on_stream: impl FnMut(yamux::Stream),
) -> impl Future<Output = ()>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    futures::future::poll_fn(move |cx| loop {
        match conn.poll_next_inbound(cx) {
            Poll::Ready(Some(Ok(s))) => on_stream(s),
            Poll::Ready(_) => return Poll::Ready(()),
            Poll::Pending => return Poll::Pending,
        }
    })
}
