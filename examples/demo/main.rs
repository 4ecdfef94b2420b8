//! A client and a server [`Connection`] speaking yamux over loopback TCP.
//!
//! Each side runs on its own thread with a non-blocking `std::net` socket and
//! a small drive loop that follows the contract in the `Connection` docs:
//! read → `handle_input`; `handle_timeout` every turn (timers due by
//! `poll_timeout` run, and the connection's clock stays fresh); drain
//! `poll_event`; write `poll_transmit` frames (header and body together with
//! `write_vectored`, no copy); sleep a little when nothing moved.
//!
//! The client opens four streams and pings; the server answers:
//!
//! * stream 1, **bulk**: 16 MiB client → server; the server reads as it
//!   arrives, credit comes back (`CreditsReturned`), FIN both ways.
//! * stream 3, **echo**: 200 KiB echoed back byte for byte; the client
//!   half-closes first, the server keeps writing, then half-closes too.
//! * stream 5, **reset**: the client sends 1 KiB and resets the stream once
//!   the server acknowledged it; the server sees the data, then `StreamReset`.
//! * stream 7, **stop-reading** (hashicorp/yamux#133): the client writes
//!   messages without end; the server reads 5, half-closes and stops reading.
//!   The client's next write fails at once (RST), far from any timeout.
//! * a **ping** with its RTT.
//! * a **go-away**: the server sends it once all four streams are open; the
//!   client can no longer open streams, answers with its own go-away, and both
//!   sides end with `ConnectionClosed { reason: Drained }` after the streams
//!   finished.
//!
//! Run it with `cargo run --release --example demo`. It prints what happens,

use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use yamux_proto::{CloseReason, Config, Connection, Role, StreamId};

/// `say!(log, "...", args)`: one timestamped line of the story.
macro_rules! say {
    ($log:expr, $($arg:tt)*) => { $log.say(format_args!($($arg)*)) };
}

#[path = "apps.rs"]
pub(crate) mod apps;
#[path = "drive.rs"]
pub(crate) mod drive;
#[path = "report.rs"]
pub(crate) mod report;

use apps::{ClientApp, ServerApp};
use report::{ms, print_summary, Log};

/// The client opens odd ids from 1, in this order, so both sides know which
/// stream plays which part without any handshake of their own.
pub(crate) const BULK: StreamId = StreamId(1);
pub(crate) const ECHO: StreamId = StreamId(3);
pub(crate) const RESET: StreamId = StreamId(5);
pub(crate) const STOP: StreamId = StreamId(7);

pub(crate) const BULK_BYTES: usize = 16 << 20;
pub(crate) const ECHO_BYTES: usize = 200 << 10;
pub(crate) const RESET_BYTES: usize = 1 << 10;
/// The stop-reading writer sends messages of this size...
pub(crate) const MSG: usize = 1 << 10;
/// ...and would send this many (4 MiB, far more than a window)...
pub(crate) const STOP_MSGS_WRITTEN: usize = 4096;
/// ...but the reader reads this many and stops.
pub(crate) const STOP_MSGS_READ: usize = 5;
/// The whole demo must be over by then; a stall fails it instead of hanging.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);
/// How long the drive loop sleeps when nothing moved (a real loop would wait
/// in `poll`/`epoll` on the socket and `poll_timeout`).
pub(crate) const IDLE_SLEEP: Duration = Duration::from_micros(200);

fn main() -> ExitCode {
    let (client, server, elapsed) = match run_demo() {
        Ok(done) => done,
        Err(e) => {
            eprintln!("demo: cannot listen on loopback: {e}");
            return ExitCode::FAILURE;
        }
    };
    print_summary(&client, &server, elapsed);
    let clean = |r: &report::Report| {
        matches!(r.outcome, Some(Ok(()))) && r.closed == Some(CloseReason::Drained)
    };
    if clean(&client.report) && clean(&server.report) {
        println!("\nboth sides drained cleanly in {:.0} ms", ms(elapsed));
        ExitCode::SUCCESS
    } else {
        println!(
            "\nFAILED: client {:?} / {:?}, server {:?} / {:?}",
            client.report.outcome,
            client.report.closed,
            server.report.outcome,
            server.report.closed
        );
        ExitCode::FAILURE
    }
}

/// Runs a client and a server, each on its own thread, over loopback TCP;
/// returns what each side saw and how long it took.
pub(crate) fn run_demo() -> std::io::Result<(ClientApp, ServerApp, Duration)> {
    let t0 = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    println!("yamux-proto demo: client and server over TCP {addr}\n");
    println!("{:>12}  {:<6}  what happened", "time", "side");

    let server = thread::spawn(move || {
        let log = Log { side: "server", t0 };
        let mut app = ServerApp::new(log);
        let result = listener.accept().and_then(|(sock, _)| {
            let conn = Connection::new(Config::default(), Role::Server, Instant::now())
                .expect("the default config is valid");
            drive::run(&mut app, conn, sock, log)
        });
        app.report.finish(result, t0);
        app
    });
    let client = thread::spawn(move || {
        let log = Log { side: "client", t0 };
        let mut app = ClientApp::new(log);
        let result = TcpStream::connect(addr).and_then(|sock| {
            let conn = Connection::new(Config::default(), Role::Client, Instant::now())
                .expect("the default config is valid");
            drive::run(&mut app, conn, sock, log)
        });
        app.report.finish(result, t0);
        app
    });
    let client = client.join().expect("client thread panicked");
    let server = server.join().expect("server thread panicked");
    Ok((client, server, t0.elapsed()))
}
