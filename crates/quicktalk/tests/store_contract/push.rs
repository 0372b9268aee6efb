//! Contract §8 on every backend: push subscriptions and notification levels.

use quicktalk::model::{MessageKind, Visibility};
use quicktalk::store::push::{NotifyLevel, PushSubscription, PushTarget};

use crate::contract::{join, msg, room, user, S};

fn sub(endpoint: &str, user: i64, at: i64) -> PushSubscription {
    PushSubscription {
        endpoint: endpoint.into(),
        user_id: user,
        p256dh: format!("key-{endpoint}"),
        auth: "auth".into(),
        created_at: at,
    }
}

/// Subscriptions are per endpoint: a second account on the same browser takes
/// it over; past `keep` the oldest go; removal can be limited to the owner.
pub async fn push_subscriptions_are_per_endpoint_and_bounded(s: S) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    s.add_push_subscription(sub("https://p/1", alice.id, 1), 3)
        .await
        .unwrap();
    s.add_push_subscription(sub("https://p/2", alice.id, 2), 3)
        .await
        .unwrap();
    let mine = s.push_subscriptions(alice.id).await.unwrap();
    assert_eq!(
        mine.iter().map(|x| x.endpoint.as_str()).collect::<Vec<_>>(),
        ["https://p/1", "https://p/2"],
        "oldest first"
    );
    assert_eq!(mine[0], sub("https://p/1", alice.id, 1));

    // The browser of endpoint 2 now belongs to bob, with new keys.
    let mut moved = sub("https://p/2", bob.id, 3);
    moved.p256dh = "new".into();
    s.add_push_subscription(moved.clone(), 3).await.unwrap();
    assert_eq!(s.push_subscriptions(alice.id).await.unwrap().len(), 1);
    assert_eq!(s.push_subscriptions(bob.id).await.unwrap(), vec![moved]);

    // Keep the newest 3.
    for (i, e) in ["https://p/3", "https://p/4", "https://p/5"]
        .iter()
        .enumerate()
    {
        s.add_push_subscription(sub(e, alice.id, 10 + i as i64), 3)
            .await
            .unwrap();
    }
    let mine: Vec<String> = s
        .push_subscriptions(alice.id)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.endpoint)
        .collect();
    assert_eq!(mine, ["https://p/3", "https://p/4", "https://p/5"]);

    // Only the owner's removal counts; `None` removes whoever's it is.
    assert!(!s
        .remove_push_subscription("https://p/3", Some(bob.id))
        .await
        .unwrap());
    assert!(s
        .remove_push_subscription("https://p/3", Some(alice.id))
        .await
        .unwrap());
    assert!(!s
        .remove_push_subscription("https://p/3", Some(alice.id))
        .await
        .unwrap());
    assert!(s
        .remove_push_subscription("https://p/2", None)
        .await
        .unwrap());
    assert!(s.push_subscriptions(bob.id).await.unwrap().is_empty());
}

/// Levels are per user and room; `None` puts back the default; push targets
/// are the members with a subscription, with their levels.
pub async fn notification_levels_and_push_targets(s: S) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let carol = user(&s, "carol").await;
    let r = room(&s, &alice, Visibility::Public).await;
    let other = room(&s, &alice, Visibility::Public).await;
    for u in [&alice, &bob, &carol] {
        join(&s, r, u).await;
    }
    assert_eq!(s.notification_level(bob.id, r).await.unwrap(), None);
    s.set_notification_level(bob.id, r, Some(NotifyLevel::None))
        .await
        .unwrap();
    s.set_notification_level(bob.id, r, Some(NotifyLevel::All))
        .await
        .unwrap();
    s.set_notification_level(bob.id, other, Some(NotifyLevel::None))
        .await
        .unwrap();
    assert_eq!(
        s.notification_level(bob.id, r).await.unwrap(),
        Some(NotifyLevel::All)
    );
    assert_eq!(s.notification_level(alice.id, r).await.unwrap(), None);

    assert!(
        s.push_targets(r).await.unwrap().is_empty(),
        "no one subscribed"
    );
    s.add_push_subscription(sub("https://p/b", bob.id, 1), 10)
        .await
        .unwrap();
    s.add_push_subscription(sub("https://p/b2", bob.id, 2), 10)
        .await
        .unwrap();
    s.add_push_subscription(sub("https://p/c", carol.id, 1), 10)
        .await
        .unwrap();
    let t = s.push_targets(r).await.unwrap();
    assert_eq!(
        t,
        vec![
            PushTarget {
                user_id: bob.id,
                username: Some("bob".into()),
                level: Some(NotifyLevel::All),
            },
            PushTarget {
                user_id: carol.id,
                username: Some("carol".into()),
                level: None,
            },
        ],
        "one row per member however many browsers"
    );
    // Leaving the room ends being a target; clearing the level restores the default.
    s.append(vec![msg(r, &carol, MessageKind::Leave, "", None)])
        .await
        .unwrap();
    s.set_notification_level(bob.id, r, None).await.unwrap();
    assert_eq!(
        s.push_targets(r).await.unwrap(),
        vec![PushTarget {
            user_id: bob.id,
            username: Some("bob".into()),
            level: None,
        }]
    );
}
