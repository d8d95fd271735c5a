//! Work per request stays O(1) or O(log n) with tens of thousands pending: measured in table
//! entries visited ([`Session::steps`]), not in time, so the test means the same on any machine.

use super::tests::{connected, quiet, req, OPEN};
use super::*;

const N: u64 = 40_000;

#[test]
fn forty_thousand_pending_requests_cost_linear_work_in_ack_mode() {
    let mut s = connected(Config {
        timeout_ms: 1000,
        ..quiet()
    });
    for i in 0..N {
        s.request(i / 100, req("create", "/api/t", "{}"));
    }
    assert_eq!(s.pending() as u64, N);
    let before = s.steps();
    // One request answered, one tick with one request due: a handful of steps, not N.
    assert_eq!(s.on_frame(500, "43123[null,1]").len(), 1);
    assert_eq!(s.tick(1000).len(), 100, "the first 100 are due");
    assert!(s.steps() - before <= 200, "{} steps", s.steps() - before);
    // Every remaining one times out in one tick: one step each.
    let before = s.steps();
    let fx = s.tick(u64::from(u32::MAX));
    let settled = fx
        .iter()
        .filter(|e| matches!(e, Effect::Settle { .. }))
        .count();
    assert_eq!(settled as u64, N - 101);
    assert!(s.steps() - before <= 2 * N, "{} steps", s.steps() - before);
    assert_eq!(s.pending(), 0);
}

#[test]
fn forty_thousand_queued_requests_flush_and_pump_in_linear_work() {
    for replies in [ReplyMode::Ack, ReplyMode::Event] {
        let mut s: Session<String> = Session::new(Config {
            replies,
            queue_size: N as usize,
            ..quiet()
        });
        s.start(0);
        for i in 0..N {
            // Event mode: 100 reply names, 400 requests waiting in each lane.
            let endpoint = format!("/api/t{}", i % 100);
            s.request(0, req("read", &endpoint, "{}"));
        }
        s.on_frame(1, OPEN);
        let before = s.steps();
        let fx = s.on_frame(1, r#"40{"sid":"s"}"#);
        let sent = if replies == ReplyMode::Ack { N } else { 100 };
        assert_eq!(fx.len() as u64, 1 + sent);
        assert!(
            s.steps() - before <= 2 * N,
            "{replies:?}: {} steps",
            s.steps() - before
        );
        if replies == ReplyMode::Event {
            // Each reply settles one request and sends the next of its lane: O(1) each.
            let before = s.steps();
            for round in 0..400 {
                for lane in 0..100 {
                    let fx = s.on_frame(2, format!(r#"42["read:/api/t{lane}",{round}]"#));
                    assert!(!fx.is_empty());
                }
            }
            assert_eq!(s.pending(), 0);
            assert!(s.steps() - before <= 2 * N, "{} steps", s.steps() - before);
        }
    }
}

#[test]
fn aborting_many_queued_requests_does_not_rescan_the_queue() {
    let mut s: Session<String> = Session::new(Config {
        queue_size: N as usize,
        ..quiet()
    });
    s.start(0);
    let ids: Vec<RequestId> = (0..N)
        .map(|_| s.request(0, req("read", "/a", "{}")).0)
        .collect();
    let before = s.steps();
    for id in &ids[..(N as usize - 1)] {
        assert_eq!(s.abort(0, *id).len(), 1);
    }
    assert_eq!(s.steps(), before, "an abort visits no other entry");
    s.on_frame(1, OPEN);
    let fx = s.on_frame(1, r#"40{"sid":"s"}"#);
    assert_eq!(fx.len(), 2, "connect and the one request left: {fx:?}");
    assert!(s.steps() - before <= N + 10);
}

#[test]
fn a_request_made_when_the_order_is_compacted_is_still_failed_at_the_end() {
    let mut s = connected(quiet());
    // Answered one by one, 64 requests leave 64 ids in the order and none pending: the next
    // request compacts the order, and it must still be in it afterwards.
    for ack in 0..64u64 {
        s.request(1, req("create", "/api/t", "{}"));
        assert_eq!(s.on_frame(2, format!("43{ack}[null,{{}}]")).len(), 1);
    }
    s.request(3, req("create", "/api/t", "{}"));
    s.request(3, req("create", "/api/t", "{}"));
    assert_eq!(s.pending(), 2);
    let fx = s.on_frame(4, "41");
    let failed = fx
        .iter()
        .filter(|e| {
            matches!(
                e,
                Effect::Settle {
                    outcome: Err(_),
                    ..
                }
            )
        })
        .count();
    assert_eq!(
        failed, 2,
        "both pending requests fail at the server's DISCONNECT"
    );
    assert_eq!(s.pending(), 0);
}
