//! Tuning of a TCP transport: what a multiplexer can only ask of the socket.

use std::io;

/// Sets `TCP_NOTSENT_LOWAT` on `socket` (a TCP stream of any runtime, or a
/// std one): the kernel then keeps at most about `bytes` of written data
/// that it has not sent yet, and reports the socket writable only below
/// that. Call it once, before handing the socket to the session.
///
/// Why: a session's frames wait where they can still be reordered (in the
/// connection, which sends control frames and small streams ahead of bulk
/// data) rather than in the socket's send buffer, first in first out,
/// behind megabytes of a bulk stream. HTTP/2 servers set it for the same
/// reason. It matters where the network, not the CPU, is the bottleneck:
/// over loopback limited to 1 Gbit/s (a `tbf` queue), a 64 B ping-pong
/// beside a bulk stream took 4.2–8.4 ms at the median without it and
/// 2.1 ms with 32 KiB in two runs of three (4.2 ms in the third), at the
/// same bulk throughput (docs/performance.md). Over
/// plain loopback, where the CPU is the bottleneck, it changes nothing
/// measurable. 16–128 KiB are usual values.
///
/// Linux and Android; elsewhere it returns an error of kind `Unsupported`.
#[cfg(unix)]
pub fn set_notsent_lowat(socket: &impl std::os::fd::AsFd, bytes: u32) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        socket2::SockRef::from(socket).set_tcp_notsent_lowat(bytes)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (socket, bytes);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}
