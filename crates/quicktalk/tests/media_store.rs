//! The media store contract: one suite of behaviours every `MediaStore` backend
//! must have, run on the local-disk store and on an S3-compatible server
//! (`QUICKTALK_TEST_S3_URL`, e.g. `moto_server` on 127.0.0.1; `.ci/run` starts
//! one). Without that variable the S3 run is skipped loudly, and fails under CI.

#[path = "common/s3_env.rs"]
mod s3_env;
#[path = "common/skip.rs"]
mod skip;

use std::collections::BTreeSet;
use std::io;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{stream, StreamExt as _, TryStreamExt as _};
use quicktalk::media::{
    self, body_from_reader, s3::PART_SIZE, BodyStream, MediaError, MediaKey, MediaStore,
    MediaStoreSpec,
};

fn key(s: &str) -> MediaKey {
    MediaKey::parse(s).unwrap()
}

/// Byte `i` of the patterned test bodies.
fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 11)) as u8
}

/// `len` patterned bytes in 64 KiB chunks, generated as read.
fn patterned(len: u64) -> BodyStream<'static> {
    const CHUNK: u64 = 64 * 1024;
    stream::iter((0..len.div_ceil(CHUNK)).map(move |c| {
        let start = c * CHUNK;
        let end = (start + CHUNK).min(len);
        Ok(Bytes::from((start..end).map(pattern).collect::<Vec<u8>>()))
    }))
    .boxed()
}

async fn read_all(
    store: &dyn MediaStore,
    k: &MediaKey,
    range: Option<std::ops::Range<u64>>,
) -> (Vec<u8>, std::ops::Range<u64>, u64) {
    let read = store.get(k, range).await.unwrap();
    let chunks: Vec<Bytes> = read.body.try_collect().await.unwrap();
    (chunks.concat(), read.range, read.total_size)
}

async fn keys_listed(store: &dyn MediaStore, prefix: &str, cutoff: SystemTime) -> BTreeSet<String> {
    store
        .list_older_than(prefix, cutoff)
        .unwrap()
        .map_ok(|o| o.key.to_string())
        .try_collect()
        .await
        .unwrap()
}

async fn contract(store: &dyn MediaStore) {
    // put / get / size
    let small = key("orig/small");
    let n = store
        .put(&small, body_from_reader(&b"hello, media"[..]), 1024)
        .await
        .unwrap();
    assert_eq!(n, 12);
    assert_eq!(store.size(&small).await.unwrap(), Some(12));
    assert_eq!(
        read_all(store, &small, None).await,
        (b"hello, media".to_vec(), 0..12, 12)
    );

    // Ranges: inside, clamped at the end, refused when empty or past the end.
    assert_eq!(
        read_all(store, &small, Some(7..12)).await,
        (b"media".to_vec(), 7..12, 12)
    );
    assert_eq!(read_all(store, &small, Some(7..1000)).await.0, b"media");
    for bad in [12..20, 40..50, 3..3, std::ops::Range { start: 5, end: 2 }] {
        assert!(
            matches!(
                store.get(&small, Some(bad.clone())).await,
                Err(MediaError::BadRange { .. })
            ),
            "range {bad:?} was served"
        );
    }

    // A body over one S3 part: streamed in, read back whole and across a part edge.
    let big = key("orig/big-1");
    let big_len = 2 * PART_SIZE as u64 + 1234;
    assert_eq!(
        store.put(&big, patterned(big_len), big_len).await.unwrap(),
        big_len
    );
    assert_eq!(store.size(&big).await.unwrap(), Some(big_len));
    let (all, range, total) = read_all(store, &big, None).await;
    assert_eq!(
        (all.len() as u64, range, total),
        (big_len, 0..big_len, big_len)
    );
    assert!(
        all.iter().enumerate().all(|(i, b)| *b == pattern(i as u64)),
        "big body changed"
    );
    let edge = PART_SIZE as u64 - 100..PART_SIZE as u64 + 100;
    let (part, range, total) = read_all(store, &big, Some(edge.clone())).await;
    assert_eq!((range, total), (edge.clone(), big_len));
    assert_eq!(part, edge.map(pattern).collect::<Vec<_>>());

    // Replacing an object.
    store
        .put(&small, body_from_reader(&b"bye"[..]), 3)
        .await
        .unwrap();
    assert_eq!(read_all(store, &small, None).await.0, b"bye");

    // Over the limit: refused, nothing left, an earlier object untouched; both
    // before and after a multipart upload began. Exactly the limit is fine.
    let refused = key("orig/refused");
    for (len, max) in [(100, 99), (big_len, PART_SIZE as u64 + 1)] {
        let r = store.put(&refused, patterned(len), max).await;
        assert!(
            matches!(r, Err(MediaError::TooLarge { limit }) if limit == max),
            "{r:?}"
        );
        assert_eq!(store.size(&refused).await.unwrap(), None);
        let r = store.put(&small, patterned(len), max).await;
        assert!(matches!(r, Err(MediaError::TooLarge { .. })), "{r:?}");
        assert_eq!(read_all(store, &small, None).await.0, b"bye");
    }
    assert!(matches!(
        store.get(&refused, None).await,
        Err(MediaError::NotFound)
    ));
    assert_eq!(store.put(&refused, patterned(100), 100).await.unwrap(), 100);
    store.delete(&refused).await.unwrap();

    // A body that fails, or a put abandoned mid-way, leaves nothing.
    let failed = key("thumb/failed");
    let failing: BodyStream<'static> = patterned(PART_SIZE as u64 + 10)
        .chain(stream::iter([Err(io::Error::other("client went away"))]))
        .boxed();
    let r = store.put(&failed, failing, u64::MAX).await;
    assert!(matches!(r, Err(MediaError::Body(_))), "{r:?}");
    assert_eq!(store.size(&failed).await.unwrap(), None);
    let stalled: BodyStream<'static> = patterned(1000).chain(stream::pending()).boxed();
    let put = store.put(&failed, stalled, u64::MAX);
    assert!(tokio::time::timeout(Duration::from_millis(300), put)
        .await
        .is_err());
    assert_eq!(store.size(&failed).await.unwrap(), None);
    assert!(keys_listed(
        store,
        "thumb",
        SystemTime::now() + Duration::from_secs(3600)
    )
    .await
    .is_empty());

    // Missing objects and idempotent deletes.
    let missing = key("orig/missing");
    assert!(matches!(
        store.get(&missing, None).await,
        Err(MediaError::NotFound)
    ));
    assert!(matches!(
        store.get(&missing, Some(0..1)).await,
        Err(MediaError::NotFound)
    ));
    assert_eq!(store.size(&missing).await.unwrap(), None);
    store.delete(&missing).await.unwrap();
    store.delete(&big).await.unwrap();
    assert_eq!(store.size(&big).await.unwrap(), None);
    assert!(matches!(
        store.get(&big, None).await,
        Err(MediaError::NotFound)
    ));
    store.delete(&big).await.unwrap();

    // Keys and prefixes of any other shape never reach the backend.
    for bad in [
        "orig/../small",
        "../orig/small",
        "orig/.tmp-x",
        "/etc/passwd",
        "orig/a/b",
    ] {
        assert!(
            matches!(MediaKey::parse(bad), Err(MediaError::BadKey(_))),
            "{bad}"
        );
    }
    for bad in ["..", "orig/", "", "a/../b"] {
        assert!(
            matches!(
                store.list_older_than(bad, SystemTime::now()),
                Err(MediaError::BadKey(_))
            ),
            "{bad:?}"
        );
    }

    // Listing for the grace-period cleanup: by prefix, only what is older than
    // the cutoff (S3 times have whole seconds, hence the pauses).
    store
        .put(&key("aged/old-1"), patterned(10), 10)
        .await
        .unwrap();
    store
        .put(&key("aged/old-2"), patterned(20), 20)
        .await
        .unwrap();
    store
        .put(&key("agedx/old-3"), patterned(5), 10)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let cutoff = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    store
        .put(&key("aged/new-1"), patterned(10), 10)
        .await
        .unwrap();
    assert_eq!(
        keys_listed(store, "aged", cutoff).await,
        BTreeSet::from(["aged/old-1".to_owned(), "aged/old-2".to_owned()])
    );
    let listed: Vec<_> = store
        .list_older_than("aged", cutoff)
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    for object in &listed {
        let expected = if object.key.name() == "old-1" { 10 } else { 20 };
        assert_eq!(object.size, expected);
        assert!(object.modified < cutoff);
    }
    assert_eq!(
        keys_listed(store, "aged", SystemTime::now() + Duration::from_secs(60))
            .await
            .len(),
        3
    );
    assert!(keys_listed(store, "nothing", SystemTime::now())
        .await
        .is_empty());
    store.delete(&key("aged/old-1")).await.unwrap();
    assert_eq!(
        keys_listed(store, "aged", cutoff).await,
        BTreeSet::from(["aged/old-2".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let spec: MediaStoreSpec = format!("file://{}", dir.path().join("media").display())
        .parse()
        .unwrap();
    let store = media::open(&spec).await.unwrap();
    contract(store.as_ref()).await;
    // No temp file of the refused, failed or abandoned puts is left behind.
    for prefix in ["orig", "thumb"] {
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("media").join(prefix))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{prefix}: {leftovers:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_keeps_the_contract() {
    let Some(spec) = s3_env::s3_bucket("media").await else {
        skip::skip(
            "media_store::s3",
            "QUICKTALK_TEST_S3_URL is not set",
            "pip install 'moto[server]'; moto_server -p 5000 & and set QUICKTALK_TEST_S3_URL=http://127.0.0.1:5000",
        );
        return;
    };
    let spec: MediaStoreSpec = spec.parse().unwrap();
    let store = media::open(&spec).await.unwrap();
    contract(store.as_ref()).await;
}
