//! Driving a [`Connection`] by hand from a `mio` readiness loop: no async,
//! no adapter. A client and a server, each on its own thread with its own
//! `mio::Poll`, talk over loopback TCP; the client opens a few streams (one
//! of 64 MiB, far beyond the 256 KiB window, so credit has to flow back
//! while it is sent), the server answers each with its bytes upper-cased,
//! and the client checks every answer.
//!
//! ```text
//! cargo run --release --example mio_loop
//! ```
//!
//! [`drive`] is the drive-loop contract of [`Connection`] for an
//! edge-triggered readiness loop:
//!
//! 1. read until the socket would block, into `handle_input`;
//! 2. `handle_timeout`;
//! 3. handle every event, then write output until the socket would block
//!    or nothing is left, and **repeat 3 until a pass finds no event**:
//!    writing frees send room (a `Writable` event), and handling events
//!    queues frames. Waiting with an event still queued can hang both
//!    peers, since the socket may never become ready again;
//! 4. sleep in `mio::Poll` until the socket is ready or `poll_timeout`.
//!
//! `tests/mio_loop.rs` runs this example's [`exchange`] with 200 MiB.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use yamux_proto::{Config, Connection, Event, Role, StreamId};

/// What an application does with its connection: it handles events, and
/// says when it is done (then the loop goes away and drains).
trait App {
    fn on_event(&mut self, conn: &mut Connection, event: Event) -> Result<(), String>;
    fn done(&self) -> bool;
}

/// Drives `conn` over `sock` until the connection has ended and its last
/// frame is written, or `deadline` passes.
fn drive(
    conn: &mut Connection,
    mut sock: TcpStream,
    app: &mut impl App,
    deadline: Instant,
) -> Result<(), String> {
    let err = |e: io::Error| e.to_string();
    let mut poll = Poll::new().map_err(err)?;
    let interest = Interest::READABLE | Interest::WRITABLE;
    poll.registry().register(&mut sock, Token(0), interest).map_err(err)?;
    let mut events = Events::with_capacity(8);
    let mut buf = vec![0; 64 * 1024];
    let (mut out, mut out_pos) = (Vec::new(), 0);
    let mut going_away = false;
    loop {
        // 1. Input. Edge-triggered: read until the socket would block.
        loop {
            match sock.read(&mut buf) {
                Ok(0) => break conn.handle_transport_closed(),
                Ok(n) => conn.handle_input(Instant::now(), &buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break conn.handle_transport_closed(),
            }
        }
        // 2. Timers (cheap when nothing is due).
        conn.handle_timeout(Instant::now());
        // 3. Events and output, until a pass finds no event.
        loop {
            let mut handled = false;
            while let Some(event) = conn.poll_event() {
                handled = true;
                app.on_event(conn, event)?;
            }
            if app.done() && !going_away {
                going_away = true;
                conn.go_away(yamux_proto::GoAwayCode::Normal);
                handled = true;
            }
            // Output: frames are built lazily from stream state, so what the
            // socket does not take stays in the connection.
            loop {
                if out_pos == out.len() {
                    out.clear();
                    out_pos = 0;
                    if conn.write_transmits(&mut out, 256 * 1024) == 0 {
                        break;
                    }
                }
                match sock.write(&out[out_pos..]) {
                    Ok(n) => out_pos += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("write: {e}")),
                }
            }
            if !handled {
                break;
            }
        }
        if conn.is_closed() && out_pos == out.len() && !conn.has_pending_output() {
            return Ok(());
        }
        // 4. Wait for the socket or the next timer.
        let now = Instant::now();
        if now >= deadline {
            return Err(format!("not finished in time ({:?})", conn.close_reason()));
        }
        let timeout = conn.poll_timeout().unwrap_or(deadline).min(deadline);
        poll.poll(&mut events, Some(timeout.saturating_duration_since(now))).map_err(err)?;
    }
}

/// Sends on a stream what the connection takes, the rest on `Writable`,
/// then half-closes.
#[derive(Default)]
struct Outbox {
    pending: HashMap<StreamId, (Vec<u8>, usize)>,
}

impl Outbox {
    fn send(&mut self, conn: &mut Connection, id: StreamId, data: Vec<u8>) -> Result<(), String> {
        self.pending.insert(id, (data, 0));
        self.push(conn, id)
    }

    fn push(&mut self, conn: &mut Connection, id: StreamId) -> Result<(), String> {
        let Some((data, off)) = self.pending.get_mut(&id) else { return Ok(()) };
        *off += conn.send(id, &data[*off..]).map_err(|e| format!("send on {id}: {e}"))?;
        if *off == data.len() {
            self.pending.remove(&id);
            conn.close_write(id).map_err(|e| format!("close_write on {id}: {e}"))?;
        }
        Ok(())
    }
}

/// Reads everything readable on `id` into `into`.
fn read_all(conn: &mut Connection, id: StreamId, into: &mut Vec<u8>) {
    while let Ok(Some(chunk)) = conn.read(id, usize::MAX) {
        into.extend_from_slice(&chunk);
    }
}

/// Answers each stream with its bytes upper-cased, after the client's FIN.
#[derive(Default)]
struct Server {
    outbox: Outbox,
    received: HashMap<StreamId, Vec<u8>>,
}

impl App for Server {
    fn on_event(&mut self, conn: &mut Connection, event: Event) -> Result<(), String> {
        match event {
            Event::Readable { id } => read_all(conn, id, self.received.entry(id).or_default()),
            Event::PeerHalfClosed { id } => {
                // The peer's FIN: everything before it was read already.
                let body = self.received.remove(&id).unwrap_or_default();
                self.outbox.send(conn, id, body.to_ascii_uppercase())?;
            }
            Event::Writable { id } => self.outbox.push(conn, id)?,
            Event::StreamReset { id, reason } => return Err(format!("server: {id}: {reason}")),
            _ => {}
        }
        Ok(())
    }

    fn done(&self) -> bool {
        false // serves until the client goes away
    }
}

/// Sends its requests, checks the answers.
struct Client {
    outbox: Outbox,
    expected: HashMap<StreamId, Vec<u8>>,
    received: HashMap<StreamId, Vec<u8>>,
    verified: usize,
}

impl App for Client {
    fn on_event(&mut self, conn: &mut Connection, event: Event) -> Result<(), String> {
        match event {
            Event::Readable { id } => read_all(conn, id, self.received.entry(id).or_default()),
            Event::PeerHalfClosed { id } => {
                let got = self.received.remove(&id).unwrap_or_default();
                if self.expected.get(&id) != Some(&got) {
                    return Err(format!("stream {id}: wrong answer ({} bytes)", got.len()));
                }
                self.verified += 1;
            }
            Event::Writable { id } => self.outbox.push(conn, id)?,
            Event::StreamReset { id, reason } => return Err(format!("client: {id}: {reason}")),
            _ => {}
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.verified == self.expected.len()
    }
}

/// Runs one client and one server on their own threads over loopback TCP:
/// the client sends one request of each of `sizes` bytes, each on its own
/// stream. Returns the bytes verified, or what went wrong.
pub fn exchange(sizes: &[usize], limit: Duration) -> Result<usize, String> {
    let deadline = Instant::now() + limit;
    let err = |e: io::Error| e.to_string();
    let listener = TcpListener::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap()).map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    let server = std::thread::spawn(move || -> Result<(), String> {
        let sock = loop {
            match listener.accept() {
                Ok((sock, _)) => break sock,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        sock.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut conn = Connection::new(Config::default(), Role::Server, Instant::now())
            .map_err(|e| e.to_string())?;
        drive(&mut conn, sock, &mut Server::default(), deadline)
    });

    let sock = TcpStream::connect(addr).map_err(err)?;
    sock.set_nodelay(true).map_err(err)?;
    let mut conn = Connection::new(Config::default(), Role::Client, Instant::now())
        .map_err(|e| e.to_string())?;
    let mut client = Client {
        outbox: Outbox::default(),
        expected: HashMap::new(),
        received: HashMap::new(),
        verified: 0,
    };
    for (k, &len) in sizes.iter().enumerate() {
        let msg: Vec<u8> = (0..len).map(|i| b"abcdefghijklmnopqrstuvwxyz"[(i + k) % 26]).collect();
        let id = conn.open().map_err(|e| e.to_string())?;
        client.expected.insert(id, msg.to_ascii_uppercase());
        client.outbox.send(&mut conn, id, msg)?;
    }
    let ours = drive(&mut conn, sock, &mut client, deadline);
    let theirs = server.join().map_err(|_| "server thread panicked".to_string())?;
    ours.map_err(|e| format!("client: {e}"))?;
    theirs.map_err(|e| format!("server: {e}"))?;
    Ok(sizes.iter().sum())
}

fn main() -> ExitCode {
    let sizes = [64 << 20, 21, 22, 23];
    let started = Instant::now();
    match exchange(&sizes, Duration::from_secs(60)) {
        Ok(bytes) => {
            println!(
                "{} streams, {bytes} bytes each way, every answer verified, in {:.2?}",
                sizes.len(),
                started.elapsed()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mio_loop: FAILED: {e}");
            ExitCode::from(1)
        }
    }
}
