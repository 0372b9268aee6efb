//! The storage contract: one suite of behaviours every `Store` backend must have.
//! `contract.rs` holds the checks; this file instantiates them per backend.

mod contract;

use std::sync::Arc;

use quicktalk::store::sqlite::{SqliteStore, Synchronous};
use quicktalk::store::Store;

/// A fresh SQLite store in its own temp dir (kept alive by the returned guard).
async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contract.db");
    let store = SqliteStore::open(&path, Synchronous::Full).unwrap();
    (Arc::new(store), dir)
}

macro_rules! contract_tests {
    ($backend:ident, $make:expr, [$($name:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _guard) = $make.await;
                    super::contract::$name(store).await;
                }
            )*
        }
    };
}

contract_tests!(
    sqlite,
    super::sqlite(),
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
    ]
);
