//! The hand-written `mio` drive loop of `examples/mio_loop.rs`, run with
//! enough data that a loop which waits while an event is still queued
//! (writing output frees send room and queues `Writable`) hangs or fails:
//! with that naive order (one pass of events, output, then wait) these
//! 64 MiB did not get through in 3 of 3 runs of this test, each stuck
//! until the deadline. The deadline turns a hang into a failure.

#[allow(dead_code)]
#[path = "../examples/mio_loop.rs"]
mod mio_loop;

use std::time::Duration;

#[test]
fn the_documented_drive_loop_moves_64_mib_each_way_without_hanging() {
    let sizes = [64 << 20, 1, 1000, 300_000];
    let bytes = mio_loop::exchange(&sizes, Duration::from_secs(30)).expect("exchange");
    assert_eq!(bytes, sizes.iter().sum::<usize>());
}
