-- Impersonation (issue 10). Whether a message's sender was a guest when it was
-- sent (snapshotted: history shows what readers saw live); older rows take
-- their sender's status now.
ALTER TABLE messages ADD COLUMN sender_guest BOOLEAN NOT NULL DEFAULT false;
UPDATE messages m SET sender_guest = true FROM users u WHERE u.id = m.sender_id AND u.guest;

-- The confusable skeletons (UTS #39, `confusables::skeleton`) of every
-- registered user's username and display name: a name whose skeleton is here
-- belongs to that user, and no two registered users share one. Existing users'
-- rows are filled in when the store opens (SQL cannot compute skeletons).
CREATE TABLE name_skeletons (
    skeleton TEXT PRIMARY KEY,
    user_id  BIGINT NOT NULL REFERENCES users(id)
);
CREATE INDEX name_skeletons_by_user ON name_skeletons (user_id);
