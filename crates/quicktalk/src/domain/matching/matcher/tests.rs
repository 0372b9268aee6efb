use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::*;

fn u(id: UserId) -> UserRef {
    UserRef {
        id,
        name: format!("u{id}"),
        guest: id % 2 == 0,
    }
}

fn prefs(interests: &[&str], lang: Option<&str>) -> Prefs {
    Prefs {
        interests: interests.iter().map(|s| s.to_string()).collect(),
        lang: lang.map(str::to_owned),
    }
}

fn paired(events: &[Event]) -> Vec<(UserId, UserId)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Paired { a, b, .. } => Some((a.id, b.id)),
            _ => None,
        })
        .collect()
}

fn cfg() -> MatcherConfig {
    MatcherConfig {
        window: 3_000,
        grace: 10_000,
        memory: 60_000,
        memory_len: 64,
    }
}

#[test]
fn two_users_pair_fifo() {
    let mut m = Matcher::new(cfg());
    assert_eq!(
        m.connect(u(1), prefs(&["music"], None), 0).unwrap(),
        vec![Event::Waiting { user: 1 }]
    );
    m.connect(u(2), prefs(&["games"], None), 10).unwrap();
    let ev = m
        .connect(u(3), prefs(&["games", "music"], None), 20)
        .unwrap();
    assert_eq!(
        paired(&ev),
        vec![(3, 1)],
        "the longest-waiting preferred user is taken"
    );
    assert_eq!(m.state(2), State::Waiting);
    assert_eq!(
        m.state(1),
        State::Matched {
            partner: u(3),
            room: None
        }
    );
    m.set_room(1, 3, 77);
    assert!(matches!(m.state(3), State::Matched { room: Some(77), .. }));
    assert_eq!(m.connect(u(1), Prefs::default(), 30), Err(AlreadyMatched));
    // Without preferences, two users pair at once.
    m.connect(u(4), Prefs::default(), 40).unwrap();
    let ev = m.connect(u(5), Prefs::default(), 41).unwrap();
    assert_eq!(paired(&ev), vec![(5, 4)]);
    m.check_invariants();
}

#[test]
fn interests_are_preferred_until_the_window_passes() {
    let mut m = Matcher::new(cfg());
    m.connect(u(1), prefs(&["music"], None), 0).unwrap();
    m.connect(u(2), prefs(&["games"], None), 100).unwrap();
    assert!(m.tick(200).is_empty(), "no overlap, inside the window");
    let ev = m
        .connect(u(3), prefs(&["games", "art"], None), 300)
        .unwrap();
    assert_eq!(
        paired(&ev),
        vec![(3, 2)],
        "the overlapping partner, though later in line"
    );
    // Alone now; a user without preferences must wait for 1's window too.
    let ev = m.connect(u(4), Prefs::default(), 400).unwrap();
    assert!(paired(&ev).is_empty());
    let ev = m.tick(3_000);
    assert_eq!(paired(&ev), vec![(1, 4)], "after the window anyone will do");
    m.check_invariants();
}

#[test]
fn language_must_match_when_both_give_one() {
    let mut m = Matcher::new(cfg());
    m.connect(u(1), prefs(&[], Some("ko")), 0).unwrap();
    let ev = m.connect(u(2), prefs(&[], Some("en")), 1).unwrap();
    assert!(paired(&ev).is_empty());
    let ev = m.connect(u(3), prefs(&[], Some("ko")), 2).unwrap();
    assert_eq!(paired(&ev), vec![(3, 1)]);
}

#[test]
fn next_ends_both_sides_and_never_rematches_at_once() {
    let mut m = Matcher::new(cfg());
    m.connect(u(1), Prefs::default(), 0).unwrap();
    m.connect(u(2), Prefs::default(), 0).unwrap();
    m.set_room(1, 2, 5);
    let ev = m.next(&u(1), 1_000);
    assert!(ev.contains(&Event::Ended {
        user: 1,
        room: Some(5),
        reason: EndReason::YouLeft
    }));
    assert!(ev.contains(&Event::Ended {
        user: 2,
        room: Some(5),
        reason: EndReason::PartnerLeft
    }));
    assert_eq!(m.state(1), State::Waiting);
    assert_eq!(m.state(2), State::Idle);
    let ev = m.connect(u(2), Prefs::default(), 1_100).unwrap();
    assert!(paired(&ev).is_empty(), "not with the partner just left");
    let ev = m.connect(u(3), Prefs::default(), 1_200).unwrap();
    assert_eq!(paired(&ev), vec![(3, 1)]);
    // After the memory runs out they may meet again.
    m.disconnect(3, 1_300);
    assert!(paired(&m.connect(u(1), Prefs::default(), 1_400).unwrap()).is_empty());
    let ev = m.tick(61_001);
    assert_eq!(paired(&ev), vec![(2, 1)], "the memory has run out");
    m.check_invariants();
}

#[test]
fn idle_next_and_disconnect_are_no_ops() {
    let mut m = Matcher::new(cfg());
    assert_eq!(m.next(&u(1), 0), vec![Event::Idle { user: 1 }]);
    assert_eq!(m.disconnect(1, 0), vec![Event::Idle { user: 1 }]);
    m.connect(u(1), Prefs::default(), 0).unwrap();
    assert_eq!(
        m.connect(u(1), Prefs::default(), 5).unwrap(),
        vec![Event::Waiting { user: 1 }]
    );
    assert_eq!(m.queue_len(), 1, "queued once");
    assert_eq!(m.disconnect(1, 6), vec![Event::Idle { user: 1 }]);
    assert_eq!(m.queue_len(), 0);
}

#[test]
fn dropped_user_gets_a_grace_period() {
    let mut m = Matcher::new(cfg());
    m.connect(u(1), Prefs::default(), 0).unwrap();
    m.connect(u(2), Prefs::default(), 0).unwrap();
    m.offline(1, 1_000);
    assert!(m.tick(10_999).is_empty());
    assert!(m.online(1), "back in time: resumed");
    assert!(m.tick(20_000).is_empty());
    m.offline(1, 20_000);
    let ev = m.tick(30_000);
    assert!(ev.contains(&Event::Ended {
        user: 2,
        room: None,
        reason: EndReason::PartnerDisconnected
    }));
    assert_eq!(m.state(1), State::Idle);
    assert!(!m.online(1));
    // A waiting user who drops just leaves the queue.
    m.connect(u(3), Prefs::default(), 30_000).unwrap();
    m.offline(3, 30_001);
    assert_eq!(m.queue_len(), 0);
}

#[test]
fn old_partners_are_forgotten() {
    let mut m = Matcher::new(cfg());
    m.connect(u(1), Prefs::default(), 0).unwrap();
    m.connect(u(2), Prefs::default(), 0).unwrap();
    m.disconnect(1, 10);
    assert_eq!(m.recent.len(), 2);
    m.tick(cfg().memory + 11);
    assert!(m.recent.is_empty(), "expired memories are swept");
}

fn pair_key(a: UserId, b: UserId) -> (UserId, UserId) {
    (a.min(b), a.max(b))
}

#[test]
fn avoided_users_never_meet() {
    let mut m = Matcher::new(cfg());
    m.connect_avoiding(u(1), Prefs::default(), vec![2], 0)
        .unwrap();
    let ev = m.connect(u(2), Prefs::default(), 0).unwrap();
    assert!(paired(&ev).is_empty(), "avoided by the one already waiting");
    assert!(paired(&m.tick(1_000_000)).is_empty());
    let ev = m.connect(u(3), Prefs::default(), 0).unwrap();
    assert_eq!(paired(&ev), vec![(3, 1)]);
}

#[test]
fn a_block_applies_to_users_already_present() {
    let mut m = Matcher::new(cfg());
    m.connect(u(1), Prefs::default(), 0).unwrap();
    m.connect(u(2), Prefs::default(), 0).unwrap();
    // Matched; 1 reports 2 and goes next (keeping the list); 2 comes back later.
    m.block(1, 2);
    m.next(&u(1), 10);
    m.connect(u(2), Prefs::default(), 10).unwrap();
    let far = 10 + cfg().memory + 1;
    assert!(
        paired(&m.tick(far)).is_empty(),
        "the block outlives the memory"
    );
}

#[test]
fn state_holds_only_present_users() {
    // Blocks of users who are not in the matcher leave nothing behind, so the
    // (shared, serialized) state does not grow with the number of reports.
    let mut m = Matcher::new(cfg());
    let empty = serde_json::to_string(&m).unwrap();
    for i in 0..1_000 {
        m.block(i, i + 1);
    }
    assert_eq!(serde_json::to_string(&m).unwrap(), empty);
    let long: Vec<UserId> = (100..100 + 2 * MAX_AVOID as i64).collect();
    m.connect_avoiding(u(1), Prefs::default(), long, 0).unwrap();
    let Some(Entry::Waiting { avoid, .. }) = m.entries.get(&1) else {
        panic!("waiting")
    };
    assert_eq!(avoid.len(), MAX_AVOID, "the avoid list is capped");
}

#[derive(Clone, Debug)]
enum Op {
    Connect(UserId, u8),
    Next(UserId),
    Disconnect(UserId),
    Offline(UserId),
    Online(UserId),
    Block(UserId, UserId),
    Wait(Ms),
}

fn op() -> impl Strategy<Value = Op> {
    let user = 1..=12i64;
    prop_oneof![
        4 => (user.clone(), 0..6u8).prop_map(|(u, p)| Op::Connect(u, p)),
        2 => user.clone().prop_map(Op::Next),
        1 => user.clone().prop_map(Op::Disconnect),
        1 => user.clone().prop_map(Op::Offline),
        1 => user.clone().prop_map(Op::Online),
        1 => (user.clone(), user).prop_map(|(a, b)| Op::Block(a, b)),
        3 => (0..4_000u64).prop_map(Op::Wait),
    ]
}

fn prefs_of(p: u8) -> Prefs {
    match p {
        0 | 1 => Prefs::default(),
        2 => prefs(&["music"], None),
        3 => prefs(&["games"], None),
        4 => prefs(&["music", "games"], Some("ko")),
        _ => prefs(&[], Some("en")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random arrivals, leaves, nexts, drops and waits: the structure stays sound,
    /// no forbidden pair ever forms, and after every tick nobody who could be
    /// paired is left waiting (nobody starves past the window).
    #[test]
    fn matcher_invariants(ops in proptest::collection::vec(op(), 1..120)) {
        let mut m = Matcher::new(cfg());
        let mut now: Ms = 0;
        let mut blocked = HashSet::new();
        let mut last_end: HashMap<(UserId, UserId), Ms> = HashMap::new();
        let mut room = 0;
        for op in ops {
            let events = match op {
                Op::Connect(u_, p) => {
                    // What the engine does: the user's reports come from the store.
                    let avoid = blocked
                        .iter()
                        .filter_map(|&(a, b)| if a == u_ { Some(b) } else if b == u_ { Some(a) } else { None })
                        .collect();
                    m.connect_avoiding(u(u_), prefs_of(p), avoid, now).unwrap_or_default()
                }
                Op::Next(u_) => m.next(&u(u_), now),
                Op::Disconnect(u_) => m.disconnect(u_, now),
                Op::Offline(u_) => { m.offline(u_, now); vec![] }
                Op::Online(u_) => { m.online(u_); vec![] }
                Op::Block(a, b) => { m.block(a, b); blocked.insert(pair_key(a, b)); vec![] }
                Op::Wait(ms) => { now += ms; vec![] }
            };
            let mut events = events;
            events.extend(m.tick(now));
            let mut ends = Vec::new();
            for e in &events {
                match e {
                    Event::Paired { a, b, .. } => {
                        prop_assert_ne!(a.id, b.id);
                        prop_assert!(!blocked.contains(&pair_key(a.id, b.id)), "blocked pair matched");
                        if let Some(t) = last_end.get(&pair_key(a.id, b.id)) {
                            prop_assert!(now >= t + cfg().memory, "rematched within memory");
                        }
                        room += 1;
                        m.set_room(a.id, b.id, room);
                    }
                    Event::Ended { user, .. } => ends.push(*user),
                    _ => {}
                }
            }
            // Ends come in (user, partner) pairs: the model of "recent partners".
            for pair in ends.chunks(2) {
                prop_assert_eq!(pair.len(), 2);
                last_end.insert(pair_key(pair[0], pair[1]), now);
            }
            m.check_invariants();
            let waiting: Vec<UserId> = m.waiting_users().collect();
            for (i, a) in waiting.iter().enumerate() {
                for b in &waiting[i + 1..] {
                    prop_assert!(!m.compatible(*a, *b, now), "{a} and {b} could be paired but wait");
                }
            }
        }
    }
}
