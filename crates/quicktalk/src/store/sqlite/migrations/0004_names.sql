-- Impersonation (issue 10). Whether a message's sender was a guest when it was
-- sent (snapshotted: history shows what readers saw live); older rows take
-- their sender's status now.
ALTER TABLE messages ADD COLUMN sender_guest INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET sender_guest = 1 WHERE sender_id IN (SELECT id FROM users WHERE guest = 1);

-- The confusable skeletons (UTS #39, `confusables::skeleton`) of every
-- registered user's username and display name: a name whose skeleton is here
-- belongs to that user, and no two registered users share one. Existing users'
-- rows are filled in by the migration code (SQL cannot compute skeletons).
CREATE TABLE name_skeletons (
    skeleton TEXT PRIMARY KEY,
    user_id  INTEGER NOT NULL REFERENCES users(id)
) WITHOUT ROWID;
CREATE INDEX name_skeletons_by_user ON name_skeletons(user_id);
