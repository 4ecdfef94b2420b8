//! The demo (`examples/demo/`), run as a test: a client and a server over
//! loopback TCP, and every scene checked from what each side recorded:
//! bulk transfer with credit, an echo half-closed both ways, a reset, the
//! hashicorp/yamux#133 stop-reading case, a ping, and a go-away that ends
//! both sides `Drained`.

#[allow(dead_code)]
#[path = "../examples/demo/main.rs"]
mod demo;

use std::time::Duration;

use demo::apps::{ClientApp, ServerApp};
use demo::report::size;
use demo::{
    BULK, BULK_BYTES, ECHO, ECHO_BYTES, MSG, RESET, RESET_BYTES, STOP, STOP_MSGS_READ,
    STOP_MSGS_WRITTEN,
};
use yamux_proto::{
    CloseReason, Config, GoAwayCode, OpenError, ResetReason, SendError, StreamError,
};

/// Every scene's checks: (passed, what was checked and what was seen).
fn checks(c: &ClientApp, s: &ServerApp) -> Vec<(bool, String)> {
    let (cr, sr) = (&c.report, &s.report);
    let mut v: Vec<(bool, String)> = Vec::new();
    let mut check = |ok: bool, what: String| v.push((ok, what));

    for (side, r) in [("client", cr), ("server", sr)] {
        check(
            r.outcome == Some(Ok(())),
            format!("{side}: drive loop ended cleanly ({:?})", r.outcome),
        );
        check(
            r.errors.is_empty(),
            format!("{side}: no command failed unexpectedly {:?}", r.errors),
        );
        check(
            r.invariants == Some(Ok(())),
            format!("{side}: connection invariants hold at the end ({:?})", r.invariants),
        );
        check(
            r.closed == Some(CloseReason::Drained),
            format!("{side}: ConnectionClosed {{ Drained }} (got {:?})", r.closed),
        );
        check(r.after_close == 0, format!("{side}: no event after ConnectionClosed"));
        for id in [BULK, ECHO, RESET, STOP] {
            let st = r.stream(id);
            check(
                st.closed == 1 && !st.out_of_order,
                format!("{side}: stream {id}: StreamClosed exactly once, events in order"),
            );
        }
    }

    // bulk
    let (cb, sb) = (cr.stream(BULK), sr.stream(BULK));
    check(
        sb.received == BULK_BYTES as u64 && s.bulk_fnv.0 == c.bulk_fnv,
        format!(
            "bulk: server got all {} intact (got {}, hash {})",
            size(BULK_BYTES as u64),
            size(sb.received),
            if s.bulk_fnv.0 == c.bulk_fnv { "matches" } else { "differs" }
        ),
    );
    check(sb.half_closed && cb.half_closed, "bulk: FIN seen by both sides".into());
    // Credit below half a window may never come back once the stream closes,
    // so all we can require is most of it.
    let window = u64::from(Config::default().max_stream_window);
    check(
        cb.credit_events > 0 && cb.credits + window >= BULK_BYTES as u64,
        format!("bulk: credit came back ({} events, {})", cb.credit_events, size(cb.credits)),
    );

    // echo
    check(
        c.echo_back == c.echo_sent[..],
        format!("echo: all {} came back unchanged", size(ECHO_BYTES as u64)),
    );
    check(
        sr.stream(ECHO).half_closed && cr.stream(ECHO).half_closed,
        "echo: half-closed in both directions (client first, server kept writing)".into(),
    );

    // reset
    let sreset = sr.stream(RESET);
    check(
        sreset.received == RESET_BYTES as u64
            && matches!(sreset.reset, Some(ResetReason::Remote { code: 0 })),
        format!(
            "reset: server got the {} then StreamReset {{ Remote }} ({:?})",
            size(RESET_BYTES as u64),
            sreset.reset
        ),
    );
    check(
        cr.stream(RESET).reset.is_none(),
        "reset: the client is not told of its own reset".into(),
    );
    check(
        matches!(c.send_after_reset, Some(Err(SendError::Reset(ResetReason::Local)))),
        format!("reset: send after reset fails ({:?})", c.send_after_reset),
    );

    // stop-reading (#133)
    let cstop = cr.stream(STOP);
    check(
        s.stop_read == STOP_MSGS_READ * MSG && sr.stream(STOP).received >= s.stop_read as u64,
        format!("stop-reading: server read {} of {MSG} B messages", s.stop_read / MSG),
    );
    check(
        matches!(cstop.reset, Some(ResetReason::Remote { .. })),
        format!("stop-reading: the writer saw StreamReset {{ Remote }} ({:?})", cstop.reset),
    );
    let promptly = match (&c.stop_write_error, s.stop_at) {
        (Some((Err(StreamError::Reset(_)), at)), Some(stop)) => {
            Some(at.saturating_duration_since(stop))
        }
        _ => None,
    };
    check(
        promptly.is_some_and(|d| d < Duration::from_secs(1)),
        format!(
            "stop-reading: the writer's next write failed promptly ({:?} after the reader \
             stopped; the linger timeout is {:?})",
            promptly,
            Config::default().linger_timeout.unwrap_or_default()
        ),
    );
    check(
        c.stop.accepted < (STOP_MSGS_WRITTEN * MSG) as u64,
        format!(
            "stop-reading: the writer was stopped before it wrote everything ({} of {})",
            size(c.stop.accepted),
            size((STOP_MSGS_WRITTEN * MSG) as u64)
        ),
    );

    // ping
    let ours = c.ping.and_then(|p| cr.pongs.iter().find(|(o, _)| *o == p));
    check(
        ours.is_some_and(|(_, rtt)| *rtt < Duration::from_secs(1)),
        format!("ping: answered with an RTT ({:?})", ours.map(|(_, rtt)| *rtt)),
    );

    // go-away
    check(cr.go_away == Some(GoAwayCode::Normal), "go-away: the client received it".into());
    check(
        c.open_after_go_away == Some(Err(OpenError::RemoteGoingAway)),
        format!("go-away: the client's open() is refused ({:?})", c.open_after_go_away),
    );
    check(
        sr.opened == [BULK, ECHO, RESET, STOP],
        format!("server: saw exactly the four streams opened ({:?})", sr.opened),
    );
    v
}

#[test]
fn every_scene_of_the_demo_does_what_it_says() {
    let (client, server, elapsed) = demo::run_demo().expect("loopback");
    let checks = checks(&client, &server);
    let failed: Vec<&String> = checks.iter().filter(|(ok, _)| !ok).map(|(_, what)| what).collect();
    assert!(failed.is_empty(), "{} of {} checks failed: {failed:#?}", failed.len(), checks.len());
    assert!(checks.len() >= 30, "only {} checks ran", checks.len());
    assert!(elapsed < Duration::from_secs(20));
}
