//! The storage contract: one suite of behaviours every `Store` backend must have.
//! `contract.rs` holds the checks; this file instantiates them per backend.

mod contract;
mod log;
mod media;
mod people;
mod push;
mod search;
mod shared_matcher;
#[path = "../common/skip.rs"]
mod skip;

use std::sync::Arc;

use quicktalk::store::postgres::PostgresStore;
use quicktalk::store::sqlite::{SqliteStore, Synchronous};
use quicktalk::store::Store;

/// Keeps a backend's scratch space alive for one test.
enum Guard {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema { url: String, schema: String },
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Schema { url, schema } = self {
            let (url, schema) = (url.clone(), schema.clone());
            // Dropped inside the test's runtime: clean up from a thread of our own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                            .execute(&pool)
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

/// A fresh SQLite store in its own temp dir.
async fn sqlite() -> Option<(Arc<dyn Store>, Guard)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contract.db");
    let store = SqliteStore::open(&path, Synchronous::Full).unwrap();
    Some((Arc::new(store), Guard::Dir(dir)))
}

/// A fresh PostgreSQL schema in `QUICKTALK_TEST_POSTGRES_URL`'s database. Without
/// the variable the test says so and passes, except under CI, where it fails.
async fn postgres() -> Option<(Arc<dyn Store>, Guard)> {
    let Ok(url) = std::env::var("QUICKTALK_TEST_POSTGRES_URL") else {
        skip::skip(
            "PostgreSQL store contract",
            "QUICKTALK_TEST_POSTGRES_URL is not set",
            "set it to e.g. postgres://postgres@127.0.0.1:5432/test",
        );
        return None;
    };
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let schema = format!(
        "qt_contract_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let store = PostgresStore::open_in_schema(&url, &schema)
        .await
        .expect("opening the PostgreSQL store");
    Some((Arc::new(store), Guard::Schema { url, schema }))
}

macro_rules! contract_tests {
    (
        $backend:ident,
        $make:expr,
        [$($name:ident),* $(,)?],
        media: [$($media:ident),* $(,)?],
        people: [$($people:ident),* $(,)?],
        push: [$($push:ident),* $(,)?],
        search: [$($search:ident),* $(,)?]
    ) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some((store, _guard)) = $make.await else { return };
                    super::contract::$name(store).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $media() {
                    let Some((store, _guard)) = $make.await else { return };
                    super::media::$media(store).await;
                }
            )*
            $(
                // Several worker threads: some of these race callers.
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $people() {
                    let Some((store, _guard)) = $make.await else { return };
                    super::people::$people(store).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $push() {
                    let Some((store, _guard)) = $make.await else { return };
                    super::push::$push(store).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $search() {
                    let Some((store, _guard)) = $make.await else { return };
                    super::search::$search(store).await;
                }
            )*
        }
    };
}

/// Every contract check, instantiated for one backend.
macro_rules! all_contract_tests {
    ($backend:ident, $make:expr) => {
        contract_tests!(
            $backend,
            $make,
            [
                users_are_unique_case_insensitively,
                guests_have_no_username,
                rooms_start_empty,
                join_and_leave_change_membership,
                text_needs_membership_and_a_room,
                seq_is_gapless_per_room_within_and_across_batches,
                client_id_deduplicates_per_sender_and_room,
                history_pages,
                listing_shows_public_and_own_rooms_with_unread,
                read_cursor_is_clamped_and_monotonic,
                members_in_join_order,
                membership_changes_apply_within_a_batch,
                a_poisoned_item_is_rejected_alone,
                a_closed_room_takes_no_more_messages,
                reports_make_users_avoid_each_other,
                registered_names_are_held_as_skeletons,
                messages_keep_the_senders_guest_status,
                the_review_queue_lists_pages_and_resolves,
                roles_and_bans_are_stored,
                deleted_messages_become_tombstones,
                room_moderation_can_be_changed,
                message_reports_are_queued_once_per_reporter,
                strikes_are_counted_per_user_by_time,
            ],
            media: [
                media_records_round_trip_and_count_towards_usage,
                attachments_are_stored_in_order_and_read_back_everywhere,
                a_batch_mixes_messages_with_and_without_attachments,
                an_attachment_of_an_unknown_file_is_rejected_alone,
                who_may_read_a_file,
                unattached_files_are_listed_oldest_first_and_deleted_only_unattached,
                uploads_advance_by_compare_and_set,
                stale_uploads_are_listed_oldest_first,
                concurrent_pieces_of_one_upload_let_one_win,
            ],
            people: [
                profiles_update_and_move_the_name_skeleton,
                users_are_found_by_username_and_by_ids,
                guests_upgrade_in_place,
                friend_requests_follow_the_matrix,
                friend_requests_are_answered_by_the_right_side,
                friendships_are_listed_and_removed,
                blocks_end_friendships_and_pending_requests,
                match_avoid_includes_blocks_both_ways,
                direct_rooms_are_created_once_per_pair,
                direct_room_is_symmetric,
                concurrent_direct_room_calls_make_one_room,
                concurrent_friend_requests_keep_one_pending,
            ],
            push: [
                push_subscriptions_are_per_endpoint_and_bounded,
                notification_levels_and_push_targets,
            ],
            search: [
                korean_corpus_is_searched_by_substring,
                search_is_scoped_and_leaves_out_blocked_and_deleted,
                search_pages_by_cursor,
                search_equals_contains_over_random_corpora,
                rare_old_words_are_found_below_thousands_of_newer_messages,
            ]
        );
    };
}

all_contract_tests!(sqlite, super::sqlite());
all_contract_tests!(postgres, super::postgres());

mod concurrent {
    use std::sync::Arc;

    use quicktalk::store::postgres::PostgresStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_one_store_two_callers() {
        let Some((store, _guard)) = super::sqlite().await else {
            return;
        };
        super::contract::concurrent_writers_keep_seq_gapless(store.clone(), store).await;
    }

    /// Two stores on one schema: two nodes' connection pools.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_two_nodes() {
        let Some((store, guard)) = super::postgres().await else {
            return;
        };
        let super::Guard::Schema { url, schema } = &guard else {
            unreachable!()
        };
        let other = PostgresStore::open_in_schema(url, schema).await.unwrap();
        super::contract::concurrent_writers_keep_seq_gapless(store, Arc::new(other)).await;
    }
}

/// PostgreSQL computes no skeletons in SQL: registered users from before the
/// `name_skeletons` table get theirs when a node opens the store (the older
/// user keeps a shared one; guests get none).
#[tokio::test]
async fn postgres_fills_in_the_skeletons_of_existing_users() {
    let Some((_store, guard)) = postgres().await else {
        return;
    };
    let Guard::Schema { url, schema } = &guard else {
        unreachable!()
    };
    let pool = PostgresStore::open_in_schema(url, schema)
        .await
        .unwrap()
        .pool()
        .clone();
    // As a database migrated from before: users, no skeleton rows.
    sqlx::query(
        "INSERT INTO users (id, username, display_name, guest, created_at) VALUES \
           (101, 'alice', 'Alice', false, 0), (102, 'a1ice', 'Someone', false, 0), \
           (103, NULL, 'Bob', true, 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let store = PostgresStore::open_in_schema(url, schema).await.unwrap();
    let sk = quicktalk::confusables::skeleton;
    for (name, owner) in [("ALICE", Some(101)), ("someone", Some(102)), ("bob", None)] {
        assert_eq!(store.name_owner(&sk(name)).await.unwrap(), owner, "{name}");
    }
}

/// Under ctype `C`, `pg_trgm` makes no trigrams of Hangul: the store says so
/// when it opens, and every search scans the caller's rooms instead, with the
/// same answers (the Korean corpus table and the scope checks, on a database
/// of that ctype of the test's own).
#[tokio::test]
async fn postgres_under_ctype_c_searches_by_scanning_rooms() {
    let Ok(url) = std::env::var("QUICKTALK_TEST_POSTGRES_URL") else {
        skip::skip(
            "PostgreSQL search under ctype C",
            "QUICKTALK_TEST_POSTGRES_URL is not set",
            "set it to e.g. postgres://postgres@127.0.0.1:5432/test",
        );
        return;
    };
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url.as_str(), String::new()),
    };
    let base = base.rsplit_once('/').unwrap().0;
    for (n, check) in [0, 1, 2].into_iter().zip([
        |s| Box::pin(search::korean_corpus_is_searched_by_substring(s)) as Check,
        |s| {
            Box::pin(search::search_is_scoped_and_leaves_out_blocked_and_deleted(
                s,
            )) as Check
        },
        |s| Box::pin(search::search_pages_by_cursor(s)) as Check,
    ]) {
        let name = format!("qt_ctype_c_{}_{n}", std::process::id());
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&admin)
            .await
            .unwrap();
        sqlx::query(&format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
        ))
        .execute(&admin)
        .await
        .expect("creating a database with ctype C");
        let store = PostgresStore::open(&format!("{base}/{name}{query}"), 4)
            .await
            .unwrap();
        assert!(!store.search_indexes_hangul());
        let pool = store.pool().clone();
        check(Arc::new(store)).await;
        pool.close().await;
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await;
    }
}

type Check = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;
