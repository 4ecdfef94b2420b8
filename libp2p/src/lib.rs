//! [yamux-proto](yamux_proto) as a rust-libp2p stream muxer: a drop-in for
//! `libp2p-yamux`, speaking the same protocol (`/yamux/1.0.0`) to it, to
//! go-libp2p and to js-libp2p.
//!
//! ```
//! use libp2p_core::{transport::MemoryTransport, upgrade::Version, Transport};
//!
//! let identity = libp2p_identity::Keypair::generate_ed25519();
//! // Where a transport is built with `.multiplex(libp2p_yamux::Config::default())`:
//! let transport = MemoryTransport::default()
//!     .upgrade(Version::V1)
//!     .authenticate(libp2p_plaintext::Config::new(&identity))
//!     .multiplex(yamux_proto_libp2p::Config::default())
//!     .boxed();
//! # drop(transport);
//! ```
//!
//! A [`Muxer`] is one yamux session driven by libp2p: its `poll` runs the
//! session (the transport, the timers), substreams are
//! [`yamux_proto::adapter::futures_io::Stream`]s (futures-io `AsyncRead` +
//! `AsyncWrite`; closing one half-closes it and waits until its FIN is
//! written, so close implies flush, and reading goes on after it).
//! Inbound streams wait in the session until libp2p asks for them; beyond
//! [`yamux_proto::Config::max_streams`] open streams the peer's new ones are
//! refused with RST, and an outbound open waits for one to end.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::{ready, Future, Ready};
use std::io;
use std::iter;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{AsyncRead, AsyncWrite};
use futures_timer::Delay;
use libp2p_core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p_core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};
use yamux_proto::adapter::{self, futures_io as yf};
use yamux_proto::{CloseReason, Role};

/// The protocol name negotiated for yamux, the same as `libp2p-yamux`'s.
pub const PROTOCOL_NAME: &str = "/yamux/1.0.0";

/// The upgrade that turns a libp2p connection into a [`Muxer`]: what
/// `Transport::multiplex` takes. The dialer is the yamux client, the
/// listener the server, as `libp2p-yamux` has it.
#[derive(Clone, Debug, Default)]
pub struct Config {
    config: yamux_proto::Config,
}

impl Config {
    /// An upgrade whose sessions use `config` (windows, limits, timers).
    pub fn new(config: yamux_proto::Config) -> Config {
        Config { config }
    }
}

impl UpgradeInfo for Config {
    type Info = &'static str;
    type InfoIter = iter::Once<&'static str>;

    fn protocol_info(&self) -> Self::InfoIter {
        iter::once(PROTOCOL_NAME)
    }
}

impl<C: AsyncRead + AsyncWrite + Unpin + Send + 'static> InboundConnectionUpgrade<C> for Config {
    type Output = Muxer<C>;
    type Error = io::Error;
    type Future = Ready<io::Result<Muxer<C>>>;

    fn upgrade_inbound(self, io: C, _: &'static str) -> Self::Future {
        ready(Muxer::new(io, self.config, Role::Server))
    }
}

impl<C: AsyncRead + AsyncWrite + Unpin + Send + 'static> OutboundConnectionUpgrade<C> for Config {
    type Output = Muxer<C>;
    type Error = io::Error;
    type Future = Ready<io::Result<Muxer<C>>>;

    fn upgrade_outbound(self, io: C, _: &'static str) -> Self::Future {
        ready(Muxer::new(io, self.config, Role::Client))
    }
}

/// The session's timer.
type Sleep = fn(Duration) -> Delay;

/// One yamux session over a libp2p connection, as a libp2p
/// [`StreamMuxer`]. libp2p polls it; [`StreamMuxer::poll`] is what runs the
/// session, so libp2p's "must be called unconditionally" is what keeps its
/// streams moving.
pub struct Muxer<C> {
    session: yf::Session,
    driver: yf::Driver<C, Sleep, Delay>,
    /// Why the session ended, once its driver has finished.
    ended: Option<CloseReason>,
}

impl<C: AsyncRead + AsyncWrite + Unpin + Send + 'static> Muxer<C> {
    /// A session over `io` in `role`. Fails only if `config` does not
    /// validate.
    pub fn new(io: C, config: yamux_proto::Config, role: Role) -> io::Result<Muxer<C>> {
        let (session, driver) = yf::new(io, config, role, Delay::new as Sleep)?;
        Ok(Muxer { session, driver, ended: None })
    }

    /// The session, for what libp2p does not ask: pings, statistics, the
    /// RTT, why it ended.
    pub fn session(&self) -> &yf::Session {
        &self.session
    }

    fn poll_driver(&mut self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        if let Some(reason) = self.ended {
            return Poll::Ready(reason);
        }
        let reason = std::task::ready!(Pin::new(&mut self.driver).poll(cx));
        self.ended = Some(reason);
        Poll::Ready(reason)
    }
}

impl<C: AsyncRead + AsyncWrite + Unpin + Send + 'static> StreamMuxer for Muxer<C> {
    type Substream = yf::Stream;
    type Error = io::Error;

    fn poll_inbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<yf::Stream>> {
        self.session.poll_accept(cx)
    }

    fn poll_outbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<yf::Stream>> {
        self.session.poll_open(cx)
    }

    /// Closes at once, as `libp2p-yamux` does: open streams are reset, Go
    /// Away is sent, and this is ready once the transport is flushed and
    /// shut down.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Starts the close; readiness is the driver's end, polled here
        // because nothing else runs it.
        let _ = this.session.poll_close(cx);
        this.poll_driver(cx).map(|_| Ok(()))
    }

    /// Runs the session. Pending while it lives; the error says why it
    /// ended (as `libp2p-yamux` reports its end as an error too).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<StreamMuxerEvent>> {
        let reason = std::task::ready!(self.get_mut().poll_driver(cx));
        Poll::Ready(Err(io::Error::new(adapter::error::close_kind(reason), reason)))
    }
}

impl<C> std::fmt::Debug for Muxer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Muxer").field("session", &self.session).finish_non_exhaustive()
    }
}
