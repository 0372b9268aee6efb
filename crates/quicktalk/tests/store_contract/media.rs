//! Backend-independent checks of the media records: files, attachments,
//! who may read a file, the unattached-file cleanup, resumable uploads.

use quicktalk::model::{
    AppendRejected, Appended, HistoryQuery, Media, MediaKind, Message, MessageKind, NewMessage,
    UserRef, Visibility,
};
use quicktalk::store::media::Upload;
use quicktalk::store::moderation::Deleted;

use crate::contract::{join, msg, room, text, user, S};

/// A media id of the right shape (22 URL-safe characters), distinct per `n`.
fn mid(n: u32) -> String {
    let id = format!("file{n:0>18}");
    assert!(quicktalk::model::is_media_id(&id));
    id
}

fn file(n: u32, owner: &UserRef, size: u64, created_at: i64) -> Media {
    Media {
        id: mid(n),
        owner: owner.id,
        name: format!("file{n}.bin"),
        mime: "application/octet-stream".into(),
        kind: MediaKind::File,
        size,
        width: None,
        height: None,
        thumbnail: false,
        created_at,
    }
}

fn image(n: u32, owner: &UserRef, created_at: i64) -> Media {
    Media {
        name: format!("photo{n}.jpg"),
        mime: "image/jpeg".into(),
        kind: MediaKind::Image,
        width: Some(4032),
        height: Some(3024),
        thumbnail: true,
        ..file(n, owner, 2_500_000, created_at)
    }
}

async fn stored(s: &S, m: &Media) {
    s.create_media(m.clone()).await.unwrap();
}

fn with(mut m: NewMessage, files: &[&Media]) -> NewMessage {
    m.attachments = files.iter().map(|f| (*f).clone()).collect();
    m
}

fn new(r: &Result<Appended, AppendRejected>) -> &Message {
    match r {
        Ok(Appended::New(m)) => m,
        other => panic!("not new: {other:?}"),
    }
}

async fn page(s: &S, room: i64, ascending: bool) -> Vec<Message> {
    let q = HistoryQuery {
        before_seq: None,
        after_seq: ascending.then_some(0),
        limit: 50,
    };
    s.messages(room, q).await.unwrap().0
}

fn names(m: &Message) -> Vec<&str> {
    m.attachments.iter().map(|a| a.name.as_str()).collect()
}

pub async fn media_records_round_trip_and_count_towards_usage(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let photo = image(1, &a, 1_000);
    // Past 4 GiB: sizes are 64-bit.
    let big = file(2, &a, 5_000_000_000, 2_000);
    let other = Media {
        kind: MediaKind::Audio,
        mime: "audio/ogg".into(),
        ..file(3, &b, 7, 3_000)
    };
    assert_eq!(s.media_usage(a.id).await.unwrap(), 0);
    for m in [&photo, &big, &other] {
        stored(&s, m).await;
    }
    assert_eq!(s.media(&photo.id).await.unwrap(), Some(photo.clone()));
    assert_eq!(s.media(&big.id).await.unwrap(), Some(big.clone()));
    assert_eq!(s.media(&other.id).await.unwrap(), Some(other.clone()));
    assert_eq!(s.media(&mid(99)).await.unwrap(), None);
    assert_eq!(
        s.media_usage(a.id).await.unwrap(),
        photo.size + big.size,
        "attached or not, every file counts"
    );
    assert_eq!(s.media_usage(b.id).await.unwrap(), 7);
    let c = user(&s, "carol").await;
    assert_eq!(s.media_usage(c.id).await.unwrap(), 0);
}

pub async fn attachments_are_stored_in_order_and_read_back_everywhere(s: S) {
    let a = user(&s, "alice").await;
    let r = room(&s, &a, Visibility::Public).await;
    join(&s, r, &a).await;
    let (f1, f2, f3) = (image(1, &a, 1), file(2, &a, 10, 2), file(3, &a, 20, 3));
    for f in [&f1, &f2, &f3] {
        stored(&s, f).await;
    }
    let out = s
        .append(vec![
            with(
                msg(r, &a, MessageKind::Text, "three files", Some("c1")),
                &[&f3, &f1, &f2],
            ),
            // A second message carrying one of the same files.
            with(text(r, &a, "again"), &[&f1]),
            text(r, &a, "none"),
        ])
        .await
        .unwrap();
    let (first, second, plain) = (new(&out[0]), new(&out[1]), new(&out[2]));
    assert_eq!(first.attachments, vec![f3.clone(), f1.clone(), f2.clone()]);
    assert_eq!(second.attachments, vec![f1.clone()]);
    assert!(plain.attachments.is_empty());

    // History pages, both directions (the older-first one is also the replay).
    for ascending in [true, false] {
        let h = page(&s, r, ascending).await;
        assert_eq!(h.len(), 4, "join + three");
        assert_eq!(h[0].kind, MessageKind::Join);
        assert!(h[0].attachments.is_empty());
        assert_eq!(&h[1], first);
        assert_eq!(&h[2], second);
        assert_eq!(&h[3], plain);
    }
    // One message.
    assert_eq!(s.message(first.id).await.unwrap().as_ref(), Some(first));
    assert_eq!(s.message(plain.id).await.unwrap().as_ref(), Some(plain));
    // A retry answers with the original as stored, its files included (not the
    // retry's).
    let again = s
        .append(vec![with(
            msg(r, &a, MessageKind::Text, "three files", Some("c1")),
            &[&f2],
        )])
        .await
        .unwrap();
    assert_eq!(again[0], Ok(Appended::Duplicate(first.clone())));
    // Both messages carry f1: readable, and not unattached.
    assert!(s.unattached_media(i64::MAX, 10).await.unwrap().is_empty());
}

pub async fn a_batch_mixes_messages_with_and_without_attachments(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let r = room(&s, &a, Visibility::Private).await;
    join(&s, r, &a).await;
    let (f1, f2, f3) = (image(1, &a, 1), file(2, &a, 10, 2), file(3, &b, 30, 3));
    for f in [&f1, &f2, &f3] {
        stored(&s, f).await;
    }
    let out = s
        .append(vec![
            text(r, &a, "plain"),
            with(text(r, &a, "two"), &[&f1, &f2]),
            msg(r, &b, MessageKind::Join, "", None),
            with(text(r, &b, "bob's"), &[&f3]),
            text(r, &b, "plain too"),
            with(msg(r, &a, MessageKind::Text, "once", Some("x")), &[&f2]),
            // A repeat inside the batch is the first one, files and all.
            msg(r, &a, MessageKind::Text, "once", Some("x")),
            with(text(r, &a, "last"), &[&f2, &f1]),
        ])
        .await
        .unwrap();
    let want: Vec<Vec<&str>> = vec![
        vec![],
        vec!["photo1.jpg", "file2.bin"],
        vec![],
        vec!["file3.bin"],
        vec![],
        vec!["file2.bin"],
    ];
    let stored_now: Vec<Message> = out[..6].iter().map(|o| new(o).clone()).collect();
    assert_eq!(stored_now.iter().map(names).collect::<Vec<_>>(), want);
    let Ok(Appended::Duplicate(d)) = &out[6] else {
        panic!("{:?}", out[6])
    };
    assert_eq!(d, &stored_now[5]);
    assert_eq!(names(new(&out[7])), ["file2.bin", "photo1.jpg"]);
    let h = page(&s, r, true).await;
    let got: Vec<Vec<&str>> = h.iter().map(names).collect();
    let mut all = vec![vec![]];
    all.extend(want);
    all.push(vec!["file2.bin", "photo1.jpg"]);
    assert_eq!(got, all);
    assert_eq!(&h[1..7], &stored_now[..]);
}

pub async fn an_attachment_of_an_unknown_file_is_rejected_alone(s: S) {
    let a = user(&s, "alice").await;
    let r = room(&s, &a, Visibility::Public).await;
    join(&s, r, &a).await;
    let f1 = file(1, &a, 10, 1);
    stored(&s, &f1).await;
    let ghost = file(2, &a, 10, 1);
    let out = s
        .append(vec![
            with(text(r, &a, "ok"), &[&f1]),
            with(text(r, &a, "ghost"), &[&ghost]),
            text(r, &a, "after"),
        ])
        .await
        .unwrap();
    assert_eq!(out[1], Err(AppendRejected::Unstorable));
    assert_eq!(new(&out[0]).attachments, vec![f1]);
    assert_eq!(new(&out[2]).seq, new(&out[0]).seq + 1, "seq stays gapless");
}

pub async fn who_may_read_a_file(s: S) {
    let owner = user(&s, "alice").await;
    let member = user(&s, "bob").await;
    let outsider = user(&s, "carol").await;
    let private = room(&s, &owner, Visibility::Private).await;
    let public = room(&s, &owner, Visibility::Public).await;
    for r in [private, public] {
        join(&s, r, &owner).await;
    }
    join(&s, private, &member).await;
    let (secret, open, loose) = (
        image(1, &owner, 1),
        file(2, &owner, 1, 2),
        file(3, &owner, 1, 3),
    );
    for f in [&secret, &open, &loose] {
        stored(&s, f).await;
    }
    let out = s
        .append(vec![
            with(text(private, &owner, "secret"), &[&secret]),
            with(text(public, &owner, "open"), &[&open]),
        ])
        .await
        .unwrap();
    let (in_private, in_public) = (new(&out[0]).clone(), new(&out[1]).clone());
    let may = |id: String, u: i64| {
        let s = s.clone();
        async move { s.can_read_media(&id, u).await.unwrap() }
    };
    // The uploader always, attached or not.
    for f in [&secret, &open, &loose] {
        assert!(may(f.id.clone(), owner.id).await, "owner, {}", f.name);
    }
    // A private room's file: its members only.
    assert!(may(secret.id.clone(), member.id).await);
    assert!(!may(secret.id.clone(), outsider.id).await);
    // A public room's file: anyone.
    assert!(may(open.id.clone(), outsider.id).await);
    assert!(may(open.id.clone(), member.id).await);
    // A file no message carries: nobody but its uploader.
    assert!(!may(loose.id.clone(), member.id).await);
    // An unknown file: nobody.
    assert!(!may(mid(99), owner.id).await);
    assert!(!may(mid(99), outsider.id).await);
    // A member who leaves loses access.
    s.append(vec![msg(private, &member, MessageKind::Leave, "", None)])
        .await
        .unwrap();
    assert!(!may(secret.id.clone(), member.id).await);
    join(&s, private, &member).await;
    assert!(may(secret.id.clone(), member.id).await);
    // A tombstone carries no files: access through it ends (not the owner's).
    for m in [&in_private, &in_public] {
        let Deleted::Now(t) = s.delete_message(m.id).await.unwrap() else {
            panic!("not deleted")
        };
        assert!(t.attachments.is_empty());
        assert!(s
            .message(m.id)
            .await
            .unwrap()
            .unwrap()
            .attachments
            .is_empty());
    }
    assert!(!may(secret.id.clone(), member.id).await);
    assert!(!may(open.id.clone(), outsider.id).await);
    assert!(may(secret.id.clone(), owner.id).await);
    assert!(page(&s, private, true)
        .await
        .iter()
        .all(|m| m.attachments.is_empty()));
}

pub async fn unattached_files_are_listed_oldest_first_and_deleted_only_unattached(s: S) {
    let a = user(&s, "alice").await;
    let r = room(&s, &a, Visibility::Public).await;
    join(&s, r, &a).await;
    let files: Vec<Media> = (1..=4)
        .map(|n| file(n, &a, 10, i64::from(n) * 100))
        .collect();
    // Stored out of order: the listing orders by creation.
    for f in files.iter().rev() {
        stored(&s, f).await;
    }
    let out = s
        .append(vec![with(text(r, &a, "keep"), &[&files[1]])])
        .await
        .unwrap();
    let carrier = new(&out[0]).id;
    let ids = |v: Vec<Media>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.unattached_media(350, 10).await.unwrap()),
        [files[0].id.clone(), files[2].id.clone()]
    );
    assert_eq!(
        ids(s.unattached_media(i64::MAX, 1).await.unwrap()),
        [files[0].id.clone()]
    );
    assert_eq!(
        ids(s.unattached_media(100, 10).await.unwrap()),
        Vec::<String>::new(),
        "strictly before"
    );
    // An attached file stays.
    assert!(!s.delete_unattached_media(&files[1].id).await.unwrap());
    assert!(s.media(&files[1].id).await.unwrap().is_some());
    // An unattached one goes, once.
    assert!(s.delete_unattached_media(&files[0].id).await.unwrap());
    assert!(!s.delete_unattached_media(&files[0].id).await.unwrap());
    assert_eq!(s.media(&files[0].id).await.unwrap(), None);
    assert!(!s.delete_unattached_media(&mid(99)).await.unwrap());
    assert_eq!(s.media_usage(a.id).await.unwrap(), 30);
    // Once its message is a tombstone, the kept file is unattached too.
    s.delete_message(carrier).await.unwrap();
    assert_eq!(
        ids(s.unattached_media(i64::MAX, 10).await.unwrap()),
        [
            files[1].id.clone(),
            files[2].id.clone(),
            files[3].id.clone()
        ]
    );
    assert!(s.delete_unattached_media(&files[1].id).await.unwrap());
}

fn upload(n: u32, owner: &UserRef, at: i64) -> Upload {
    Upload {
        id: format!("upld{n:0>18}"),
        owner: owner.id,
        name: format!("big{n}.mp4"),
        length: 6_000_000_000,
        offset: 0,
        parts: vec![],
        created_at: at,
        updated_at: at,
    }
}

pub async fn uploads_advance_by_compare_and_set(s: S) {
    let a = user(&s, "alice").await;
    let u = upload(1, &a, 10);
    s.create_upload(u.clone()).await.unwrap();
    assert_eq!(s.upload(&u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(s.upload("upld000000000000000099").await.unwrap(), None);
    const GB: u64 = 1 << 30;
    assert!(s.advance_upload(&u.id, 0, GB, "part/a", 20).await.unwrap());
    // A second piece from the old offset lost the race: nothing changes.
    assert!(!s.advance_upload(&u.id, 0, GB, "part/x", 21).await.unwrap());
    assert!(!s.advance_upload(&u.id, 7, GB, "part/y", 22).await.unwrap());
    assert!(s
        .advance_upload(&u.id, GB, 5 * GB, "part/b", 30)
        .await
        .unwrap());
    assert!(s
        .advance_upload(&u.id, 5 * GB, u.length, "part/c", 40)
        .await
        .unwrap());
    assert!(!s
        .advance_upload("upld000000000000000099", 0, 1, "part/z", 40)
        .await
        .unwrap());
    let now = s.upload(&u.id).await.unwrap().unwrap();
    assert_eq!(
        now,
        Upload {
            offset: u.length,
            parts: vec!["part/a".into(), "part/b".into(), "part/c".into()],
            updated_at: 40,
            ..u.clone()
        }
    );
    assert!(s.delete_upload(&u.id).await.unwrap());
    assert!(!s.delete_upload(&u.id).await.unwrap());
    assert_eq!(s.upload(&u.id).await.unwrap(), None);
    // Its parts went with it: the same id starts afresh.
    s.create_upload(u.clone()).await.unwrap();
    assert_eq!(s.upload(&u.id).await.unwrap(), Some(u));
}

pub async fn stale_uploads_are_listed_oldest_first(s: S) {
    let a = user(&s, "alice").await;
    let (u1, u2, u3) = (upload(1, &a, 10), upload(2, &a, 20), upload(3, &a, 30));
    for u in [&u3, &u1, &u2] {
        s.create_upload(u.clone()).await.unwrap();
    }
    // u1 got a piece recently; u2 and u3 are idle since their creation.
    assert!(s
        .advance_upload(&u1.id, 0, 5, "part/1a", 100)
        .await
        .unwrap());
    assert!(s
        .advance_upload(&u1.id, 5, 9, "part/1b", 110)
        .await
        .unwrap());
    let ids = |v: &[Upload]| v.iter().map(|u| u.id.clone()).collect::<Vec<_>>();
    let stale = s.stale_uploads(50, 10).await.unwrap();
    assert_eq!(ids(&stale), [u2.id.clone(), u3.id.clone()]);
    assert_eq!(stale[0], u2);
    assert_eq!(
        ids(&s.stale_uploads(50, 1).await.unwrap()),
        std::slice::from_ref(&u2.id)
    );
    assert!(
        s.stale_uploads(20, 10).await.unwrap().is_empty(),
        "strictly before"
    );
    let all = s.stale_uploads(i64::MAX, 10).await.unwrap();
    assert_eq!(ids(&all), [u2.id.clone(), u3.id.clone(), u1.id.clone()]);
    assert_eq!(all[2].parts, ["part/1a", "part/1b"]);
    assert_eq!((all[2].offset, all[2].updated_at), (9, 110));
}

pub async fn concurrent_pieces_of_one_upload_let_one_win(s: S) {
    let a = user(&s, "alice").await;
    let u = upload(1, &a, 10);
    s.create_upload(u.clone()).await.unwrap();
    let mut offset = 0;
    for round in 0..10u64 {
        let tries: Vec<_> = (0..4)
            .map(|i| {
                let (s, id) = (s.clone(), u.id.clone());
                tokio::spawn(async move {
                    let part = format!("part/{round}-{i}");
                    let won = s
                        .advance_upload(&id, offset, offset + 100, &part, 20)
                        .await
                        .unwrap();
                    won.then_some(part)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tries {
            winners.extend(t.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        offset += 100;
        let now = s.upload(&u.id).await.unwrap().unwrap();
        assert_eq!(now.offset, offset);
        assert_eq!(now.parts.len() as u64, round + 1);
        assert_eq!(now.parts.last(), winners.last());
    }
}
