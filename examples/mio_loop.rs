//! Driving [`Connection`]s by hand from a `mio` readiness loop: no async, no
//! adapter. A client and a server run in one thread over loopback TCP; the
//! client opens a few streams (one large enough to need flow control), the
//! server answers each with its bytes upper-cased, and the client checks the
//! answers.
//!
//! ```text
//! cargo run --example mio_loop
//! ```
//!
//! The loop is the drive-loop contract of [`Connection`]: read until the
//! socket would block into `handle_input`; run `handle_timeout` when
//! `poll_timeout` is reached; drain `poll_event`; write `write_transmits`
//! until the socket would block; sleep in `mio::Poll` until a socket is ready
//! or the earliest `poll_timeout`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use yamux_proto::{Config, Connection, Event, Role, StreamId};

/// One end: its socket, its connection, and bytes taken from the connection
/// that the socket has not accepted yet.
struct Peer {
    name: &'static str,
    sock: TcpStream,
    conn: Connection,
    out: Vec<u8>,
    out_pos: usize,
    /// Per stream: bytes the application still has to `send` (the
    /// connection takes at most its send buffer at a time), and whether to
    /// half-close once they are taken.
    pending: HashMap<StreamId, (Vec<u8>, usize, bool)>,
    /// Per stream: bytes received.
    received: HashMap<StreamId, Vec<u8>>,
}

impl Peer {
    fn new(name: &'static str, sock: TcpStream, role: Role, now: Instant) -> Peer {
        let conn = Connection::new(Config::default(), role, now).expect("valid config");
        Peer {
            name,
            sock,
            conn,
            out: Vec::new(),
            out_pos: 0,
            pending: HashMap::new(),
            received: HashMap::new(),
        }
    }

    /// Readable: read until the socket would block (mio is edge-triggered).
    fn read_ready(&mut self, now: Instant) {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match self.sock.read(&mut buf) {
                Ok(0) => return self.conn.handle_transport_closed(),
                Ok(n) => self.conn.handle_input(now, &buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.conn.handle_transport_closed(),
            }
        }
    }

    /// Writes frames until the socket would block or nothing is left.
    /// Frames stay in the connection (built lazily) until there is room.
    fn write_ready(&mut self) {
        loop {
            if self.out_pos == self.out.len() {
                self.out.clear();
                self.out_pos = 0;
                if self.conn.write_transmits(&mut self.out, 64 * 1024) == 0 {
                    return;
                }
            }
            match self.sock.write(&self.out[self.out_pos..]) {
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.conn.handle_transport_closed(),
            }
        }
    }

    /// Queues `data` on stream `id`, then FIN if `fin`.
    fn send(&mut self, id: StreamId, data: Vec<u8>, fin: bool) {
        self.pending.insert(id, (data, 0, fin));
        self.push(id);
    }

    /// Hands the connection as much of stream `id`'s pending data as it takes;
    /// the rest waits for `Event::Writable`.
    fn push(&mut self, id: StreamId) {
        let Some((data, off, fin)) = self.pending.get_mut(&id) else { return };
        match self.conn.send(id, &data[*off..]) {
            Ok(n) => *off += n,
            Err(e) => {
                eprintln!("{}: stream {id}: send failed: {e}", self.name);
                self.pending.remove(&id);
                return;
            }
        }
        if *off == data.len() {
            let fin = *fin;
            self.pending.remove(&id);
            if fin {
                let _ = self.conn.close_write(id);
            }
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mio_loop: FAILED: {e}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<(), String> {
    const SERVER: Token = Token(0);
    const CLIENT: Token = Token(1);
    let err = |e: io::Error| e.to_string();

    // Connect over loopback (blocking accept is fine for a one-off setup).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    let client_sock = std::net::TcpStream::connect(addr).map_err(err)?;
    let (server_sock, _) = listener.accept().map_err(err)?;
    drop(listener);
    for s in [&client_sock, &server_sock] {
        s.set_nonblocking(true).map_err(err)?;
        s.set_nodelay(true).map_err(err)?;
    }

    let mut poll = Poll::new().map_err(err)?;
    let start = Instant::now();
    let mut server = Peer::new("server", TcpStream::from_std(server_sock), Role::Server, start);
    let mut client = Peer::new("client", TcpStream::from_std(client_sock), Role::Client, start);
    let both = Interest::READABLE | Interest::WRITABLE;
    poll.registry().register(&mut server.sock, SERVER, both).map_err(err)?;
    poll.registry().register(&mut client.sock, CLIENT, both).map_err(err)?;

    // The client's requests: a few small ones and one of 1 MiB, four times
    // the initial window, so credit has to flow back during the exchange.
    let mut expected = HashMap::new();
    for k in 0..4usize {
        let len = if k == 0 { 1 << 20 } else { 20 + k };
        let msg: Vec<u8> = (0..len).map(|i| b"abcdefghijklmnopqrstuvwxyz"[(i + k) % 26]).collect();
        let id = client.conn.open().map_err(|e| e.to_string())?;
        expected.insert(id, msg.to_ascii_uppercase());
        client.send(id, msg, true);
    }
    let mut answered = 0;
    let mut events = Events::with_capacity(16);
    let deadline = start + Duration::from_secs(30);

    loop {
        let now = Instant::now();
        if now > deadline {
            return Err("not finished after 30 s".into());
        }
        for p in [&mut server, &mut client] {
            if p.conn.poll_timeout().is_some_and(|t| t <= now) {
                p.conn.handle_timeout(now);
            }
        }
        // Server application: upper-case what arrives, half-close after the
        // client's half-close once everything was sent.
        while let Some(event) = server.conn.poll_event() {
            match event {
                Event::Readable { id } => {
                    while let Ok(Some(data)) = server.conn.read(id, usize::MAX) {
                        server.received.entry(id).or_default().extend_from_slice(&data);
                    }
                }
                Event::HalfClosed { id } => {
                    let body = server.received.remove(&id).unwrap_or_default();
                    server.send(id, body.to_ascii_uppercase(), true);
                }
                Event::Writable { id } => server.push(id),
                Event::StreamReset { id, reason } => {
                    return Err(format!("server: stream {id} reset: {reason}"))
                }
                _ => {}
            }
        }
        // Client application: collect answers, check them at the FIN.
        while let Some(event) = client.conn.poll_event() {
            match event {
                Event::Readable { id } => {
                    while let Ok(Some(data)) = client.conn.read(id, usize::MAX) {
                        client.received.entry(id).or_default().extend_from_slice(&data);
                    }
                }
                Event::HalfClosed { id } => {
                    let got = client.received.remove(&id).unwrap_or_default();
                    if expected.get(&id) != Some(&got) {
                        return Err(format!("stream {id}: wrong answer ({} bytes)", got.len()));
                    }
                    answered += 1;
                    println!("stream {id}: {} bytes answered correctly", got.len());
                }
                Event::Writable { id } => client.push(id),
                Event::StreamReset { id, reason } => {
                    return Err(format!("client: stream {id} reset: {reason}"))
                }
                Event::ConnectionClosed { reason } => {
                    return Err(format!("client: connection closed: {reason}"))
                }
                _ => {}
            }
        }
        if answered == expected.len() {
            // Every stream finished: a graceful go-away closes at once
            // (nothing is open), its frame is flushed, and we are done.
            client.conn.go_away(yamux_proto::GoAwayCode::Normal);
            client.write_ready();
            println!("all {answered} streams verified: {:?}", client.conn.close_reason());
            return Ok(());
        }
        server.write_ready();
        client.write_ready();

        // Sleep until a socket is ready or the earliest timer.
        let next = [server.conn.poll_timeout(), client.conn.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.saturating_duration_since(Instant::now()));
        poll.poll(&mut events, next).map_err(err)?;
        let now = Instant::now();
        for event in events.iter() {
            let peer = if event.token() == SERVER { &mut server } else { &mut client };
            if event.is_readable() || event.is_read_closed() {
                peer.read_ready(now);
            }
            // Writable: the loop writes everything pending on every turn.
        }
    }
}
