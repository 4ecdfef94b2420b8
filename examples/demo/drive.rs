//! The drive loop: the only place that touches the socket and the clock.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Instant;

use yamux_proto::{Connection, Event, Transmit};

use super::report::{Log, Report};
use super::{DEADLINE, IDLE_SLEEP};

// ---------------------------------------------------------------------------
// The drive loop: the only place that touches the socket and the clock.
// ---------------------------------------------------------------------------

/// What a side's application does; the drive loop calls it.
pub(crate) trait App {
    /// Once, before the first input.
    fn start(&mut self, conn: &mut Connection);
    /// For every event, in order.
    fn on_event(&mut self, conn: &mut Connection, event: &Event);
    /// Once per loop turn, for work that waits on state rather than events.
    fn tick(&mut self, _conn: &mut Connection) {}
    /// Where the application records what it saw.
    fn report(&mut self) -> &mut Report;
}

/// Drives `conn` over `sock` until the connection has closed, its last frame
/// is written and the peer has closed its side of the TCP connection.
pub(crate) fn run(
    app: &mut dyn App,
    mut conn: Connection,
    sock: TcpStream,
    log: Log,
) -> io::Result<()> {
    let mut sock = sock;
    sock.set_nonblocking(true)?;
    sock.set_nodelay(true)?;
    let deadline = log.t0 + DEADLINE;
    let mut buf = vec![0u8; 256 << 10];
    let mut out = OutQueue::default();
    let mut eof = false;
    let mut shut_down = false;
    app.start(&mut conn);
    loop {
        let now = Instant::now();
        if now > deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "did not finish in time"));
        }
        let mut busy = false;
        // 1. Input: whatever the transport has, in whatever chunking.
        if !eof {
            match sock.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    conn.handle_transport_closed();
                }
                Ok(n) => {
                    conn.handle_input(now, &buf[..n]);
                    busy = true;
                }
                Err(e) if would_block(&e) => {}
                Err(e) => {
                    say!(log, "transport read error: {e}");
                    eof = true;
                    conn.handle_transport_closed();
                }
            }
        }
        // 2. Timers. Calling it early is harmless, so it is called every turn:
        // that also keeps the connection's clock fresh, which stamps the
        // commands below (a stale clock would arm their timers early).
        // A loop that sleeps would wake at `poll_timeout()` at the latest.
        conn.handle_timeout(now);
        // 3. Events, and the application's reaction to them.
        while let Some(event) = conn.poll_event() {
            app.on_event(&mut conn, &event);
            busy = true;
        }
        app.tick(&mut conn);
        while let Some(event) = conn.poll_event() {
            app.on_event(&mut conn, &event);
        }
        // 4. Output, until the socket is full or nothing is left.
        match out.flush(&mut conn, &mut sock) {
            Ok(wrote) => busy |= wrote,
            Err(e) => {
                say!(log, "transport write error: {e}");
                out = OutQueue::default();
                eof = true;
                conn.handle_transport_closed();
            }
        }
        // 5. The end: closed, last frame (our Go Away) written, peer done.
        if conn.is_closed() && out.is_empty() && !conn.has_pending_output() {
            if !shut_down {
                let _ = sock.shutdown(Shutdown::Write);
                shut_down = true;
            }
            if eof {
                let invariants = conn.check_invariants();
                let report = app.report();
                report.stats = conn.stats().clone();
                report.invariants = Some(invariants);
                return Ok(());
            }
        }
        if !busy {
            let until_timer = conn.poll_timeout().map(|t| t.saturating_duration_since(now));
            thread::sleep(until_timer.map_or(IDLE_SLEEP, |d| d.min(IDLE_SLEEP)));
        }
    }
}

pub(crate) fn would_block(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

/// Frames taken from `poll_transmit` and not yet fully written. Header and
/// body (a slice of the sender's own buffer) go out together through
/// `write_vectored`: the payload is never copied on its way to the socket.
#[derive(Default)]
pub(crate) struct OutQueue {
    pub(crate) frames: VecDeque<Transmit>,
    /// Bytes of the front frame already written.
    pub(crate) offset: usize,
}

impl OutQueue {
    /// Frames gathered per `writev`; more are produced only as these drain,
    /// so the connection keeps deciding what goes next (control first).
    const BATCH: usize = 32;

    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Writes until the socket would block or nothing is left. Returns
    /// whether any byte was written.
    pub(crate) fn flush(
        &mut self,
        conn: &mut Connection,
        sock: &mut TcpStream,
    ) -> io::Result<bool> {
        let mut wrote = false;
        loop {
            while self.frames.len() < Self::BATCH {
                match conn.poll_transmit() {
                    Some(t) => self.frames.push_back(t),
                    None => break,
                }
            }
            if self.frames.is_empty() {
                return Ok(wrote);
            }
            let mut slices = Vec::with_capacity(2 * self.frames.len());
            let mut skip = self.offset;
            for t in &self.frames {
                for part in [&t.header[..], &t.body[..]] {
                    if skip >= part.len() {
                        skip -= part.len();
                        continue;
                    }
                    slices.push(IoSlice::new(&part[skip..]));
                    skip = 0;
                }
            }
            match sock.write_vectored(&slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    wrote = true;
                    self.advance(n);
                }
                Err(e) if would_block(&e) => return Ok(wrote),
                Err(e) => return Err(e),
            }
        }
    }

    pub(crate) fn advance(&mut self, n: usize) {
        let mut n = n + self.offset;
        while let Some(t) = self.frames.front() {
            if n < t.len() {
                break;
            }
            n -= t.len();
            self.frames.pop_front();
        }
        self.offset = n;
    }
}
