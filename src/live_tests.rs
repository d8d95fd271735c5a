//! [`Live`]'s decisions: rooms, subscriptions and catch-ups; and with versions (see
//! [`crate::live_versions`]), a room never steps back, and a gap or a `resync` starts the
//! catch-up a reconnection starts.

use super::*;

const ROOM: &str = "/api/t";

/// A live collection 1 on [`ROOM`], connected and joined once.
fn joined() -> Live<i32> {
    let mut l = Live::default();
    l.on(LiveEvent::Live {
        collection: 1,
        endpoint: ROOM.into(),
    });
    l.on(LiveEvent::Connected);
    let first = l.on(LiveEvent::Subscribed {
        room: ROOM.into(),
        ok: true,
    });
    assert_eq!(first, [], "first join: nothing to catch up");
    l
}

/// A broadcast `updated` of model `id` at `version`, whose item is `item`.
fn updated(item: i32, id: &str, version: Option<i64>) -> LiveEvent<i32> {
    LiveEvent::Broadcast {
        room: ROOM.into(),
        change: Change::Updated,
        item,
        id: Some(id.into()),
        version,
    }
}

fn apply(item: i32) -> LiveAction<i32> {
    LiveAction::Apply {
        collection: 1,
        change: Change::Updated,
        item,
    }
}

fn read() -> LiveAction<i32> {
    LiveAction::Read {
        room: ROOM.into(),
        collection: 1,
    }
}

#[test]
fn older_and_equal_broadcasts_are_ignored() {
    let mut l = joined();
    assert_eq!(l.on(updated(1, "7", Some(1))), [apply(1)]);
    assert_eq!(l.on(updated(2, "7", Some(2))), [apply(2)]);
    assert_eq!(l.on(updated(3, "7", Some(2))), [], "equal");
    assert_eq!(l.on(updated(4, "7", Some(1))), [], "older");
    assert_eq!(l.on(updated(5, "8", Some(1))), [apply(5)], "another model");
    assert_eq!(l.on(updated(6, "7", Some(3))), [apply(6)]);
}

#[test]
fn a_gap_applies_the_broadcast_and_catches_up_once() {
    let mut l = joined();
    l.on(updated(1, "7", Some(1)));
    assert_eq!(l.on(updated(3, "7", Some(3))), [apply(3), read()]);
    // Held while the read is out, a second gap reads again after it.
    assert_eq!(l.on(updated(4, "8", Some(1))), []);
    assert_eq!(l.on(updated(5, "8", Some(5))), []);
    let done = LiveEvent::ReadDone { room: ROOM.into() };
    assert_eq!(l.on(done.clone()), [apply(4), apply(5), read()]);
    assert_eq!(l.on(done), []);
    // The missed version arriving late is stale.
    assert_eq!(l.on(updated(2, "7", Some(2))), []);
}

#[test]
fn resync_catches_up_like_a_reconnection() {
    let mut l = joined();
    let resync = LiveEvent::Resync { room: ROOM.into() };
    assert_eq!(l.on(resync.clone()), [read()]);
    assert_eq!(l.on(updated(1, "7", None)), [], "held during the read");
    assert_eq!(l.on(resync), [], "one read at a time");
    let done = LiveEvent::ReadDone { room: ROOM.into() };
    assert_eq!(l.on(done.clone()), [apply(1), read()]);
    assert_eq!(l.on(done), []);
    let other = LiveEvent::Resync {
        room: "/other".into(),
    };
    assert_eq!(l.on(other), [], "not a live room");
}

#[test]
fn without_versions_everything_is_applied_as_before() {
    let mut l = joined();
    assert_eq!(l.on(updated(1, "7", None)), [apply(1)]);
    assert_eq!(l.on(updated(2, "7", None)), [apply(2)]);
    let no_id = LiveEvent::Broadcast {
        room: ROOM.into(),
        change: Change::Deleted,
        item: 3,
        id: None,
        version: Some(9),
    };
    assert_eq!(l.on(no_id).len(), 1);
    // Unversioned broadcasts leave no version behind: the next versioned one is no gap.
    assert_eq!(l.on(updated(4, "7", Some(5))), [apply(4)]);
    assert_eq!(
        l.settled("/api/t/9", Some(("9", 1))),
        (true, vec![]),
        "unknown model"
    );
}

/// A reply to the page's request on `endpoint`, sent and answered: whether it applies.
fn reply(l: &mut Live<i32>, endpoint: &str, id: &str, version: i64) -> bool {
    l.sent(endpoint);
    let (apply, actions) = l.settled(endpoint, Some((id, version)));
    assert_eq!(actions, [], "no catch-up");
    apply
}

#[test]
fn replies_and_broadcasts_never_step_back_in_either_order() {
    let mut l = joined();
    l.on(updated(1, "7", Some(1)));
    // A reply that overtook the broadcast of an earlier write: the broadcast is ignored.
    assert!(reply(&mut l, "/api/t/7", "7", 3));
    assert_eq!(l.on(updated(2, "7", Some(2))), []);
    // A broadcast that overtook the page's reply: the reply is stale.
    assert_eq!(l.on(updated(4, "7", Some(4))), [apply(4)]);
    assert!(!reply(&mut l, "/api/t/7/", "7", 4), "equal");
    assert!(!reply(&mut l, "http://h/api/t/7?x", "7", 2), "older");
    // A create's reply names the collection itself.
    assert!(reply(&mut l, "/api/t", "8", 1));
    assert_eq!(l.on(updated(5, "8", Some(1))), []);
    // No live collection on the endpoint: applied, nothing held.
    assert!(reply(&mut l, "/api/other/7", "7", 1));
    assert!(reply(&mut l, "/api/other/7", "7", 1));
}

#[test]
fn a_gap_while_the_page_writes_waits_for_its_replies() {
    let mut l = joined();
    l.on(updated(1, "7", Some(1)));
    // The page's write becomes v2; another client's v3 overtakes its reply.
    l.sent("/api/t/7");
    assert_eq!(l.on(updated(3, "7", Some(3))), [apply(3)], "no read yet");
    assert_eq!(
        l.settled("/api/t/7", Some(("7", 2))),
        (false, vec![]),
        "its own v2: no gap"
    );
    // The same, but v2 is someone else's and never arrives: read once the page's write is in.
    l.sent("/api/t/7");
    l.sent("/api/t");
    assert_eq!(l.on(updated(5, "7", Some(5))), [apply(5)]);
    assert_eq!(
        l.settled("/api/t/7", Some(("7", 6))),
        (true, vec![]),
        "one still out"
    );
    assert_eq!(
        l.settled("/api/t", None),
        (true, vec![read()]),
        "v4 never came"
    );
    // A failed request settles too; with nothing out, a gap reads at once.
    l.sent("/api/t/7");
    assert_eq!(l.settled("/api/t/7", None), (true, vec![]));
    assert_eq!(l.on(LiveEvent::ReadDone { room: ROOM.into() }), []);
    assert_eq!(l.on(updated(8, "7", Some(8))), [apply(8), read()]);
}

fn sub(room: &str) -> LiveAction<i32> {
    LiveAction::Subscribe {
        room: room.into(),
        endpoint: room.into(),
    }
}

fn live(live: &mut Live<i32>, collection: CollectionId, endpoint: &str) -> Vec<LiveAction<i32>> {
    live.on(LiveEvent::Live {
        collection,
        endpoint: endpoint.into(),
    })
}

#[test]
fn rooms_are_paths() {
    assert_eq!(room_of("/api/todos"), "/api/todos");
    assert_eq!(room_of("/api/todos/?x=1#y"), "/api/todos");
    assert_eq!(room_of("http://h:3000/api/todos"), "/api/todos");
    assert_eq!(room_of("http://h:3000"), "/");
    assert_eq!(room_of("/"), "/");
    assert_eq!(room_of("http://h:3000?x=1"), "/");
    assert_eq!(room_of("https://h/a/b//#frag"), "/a/b");
    assert_eq!(room_of("api/é/"), "api/é");
    assert_eq!(room_of(""), "/");
}

#[test]
fn subscribes_on_connect_and_catches_up_only_after_a_reconnection() {
    let mut l = Live::default();
    assert_eq!(live(&mut l, 1, "/api/t"), [LiveAction::Connect]);
    assert_eq!(l.on(LiveEvent::Connected), [sub("/api/t")]);
    let ok = LiveEvent::Subscribed {
        room: "/api/t".into(),
        ok: true,
    };
    assert_eq!(l.on(ok.clone()), [], "first join: nothing missed");
    assert_eq!(live(&mut l, 2, "/api/t/"), [], "same room");
    l.on(LiveEvent::Disconnected);
    assert_eq!(l.on(LiveEvent::Connected), [sub("/api/t")]);
    let read = |c| LiveAction::Read {
        room: "/api/t".into(),
        collection: c,
    };
    assert_eq!(l.on(ok), [read(1), read(2)]);
}

#[test]
fn broadcasts_during_a_catch_up_are_held_until_every_read_is_done() {
    let mut l = Live::default();
    live(&mut l, 1, "/a");
    l.on(LiveEvent::Connected);
    let ok = LiveEvent::Subscribed {
        room: "/a".into(),
        ok: true,
    };
    l.on(ok.clone());
    let b = |item| LiveEvent::Broadcast {
        room: "/a".into(),
        change: Change::Created,
        item,
        id: None,
        version: None,
    };
    let apply = |item| LiveAction::Apply {
        collection: 1,
        change: Change::Created,
        item,
    };
    assert_eq!(l.on(b(1)), [apply(1)]);
    l.on(LiveEvent::Connected);
    assert_eq!(l.on(ok.clone()).len(), 1, "the catch-up read");
    assert_eq!(l.on(b(2)), [], "held");
    // A reconnection during the read: read again after it.
    l.on(LiveEvent::Connected);
    assert_eq!(l.on(ok), []);
    let done = LiveEvent::ReadDone { room: "/a".into() };
    assert_eq!(
        l.on(done.clone()),
        [
            apply(2),
            LiveAction::Read {
                room: "/a".into(),
                collection: 1
            }
        ]
    );
    assert_eq!(l.on(b(3)), [], "held during the second read");
    assert_eq!(l.on(done), [apply(3)]);
    assert_eq!(l.on(b(4)), [apply(4)]);
    assert_eq!(
        l.on(LiveEvent::Broadcast {
            room: "/other".into(),
            change: Change::Deleted,
            item: 5,
            id: None,
            version: None,
        }),
        []
    );
}

#[test]
fn refusals_are_reported_and_the_last_unlive_unsubscribes() {
    let mut l = Live::default();
    live(&mut l, 1, "/a");
    live(&mut l, 2, "/a");
    l.on(LiveEvent::Connected);
    let refused = l.on(LiveEvent::Subscribed {
        room: "/a".into(),
        ok: false,
    });
    assert_eq!(
        refused,
        [
            LiveAction::Refused { collection: 1 },
            LiveAction::Refused { collection: 2 }
        ]
    );
    assert_eq!(l.on(LiveEvent::Unlive { collection: 1 }), []);
    assert_eq!(
        l.on(LiveEvent::Unlive { collection: 2 }),
        [LiveAction::Unsubscribe {
            endpoint: "/a".into()
        }]
    );
    assert_eq!(
        live(&mut l, 3, "/b"),
        [sub("/b")],
        "connected: joins at once"
    );
}
