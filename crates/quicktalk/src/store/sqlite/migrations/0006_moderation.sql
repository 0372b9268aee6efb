-- Moderation (issue 11, contract §5).
-- A user's role: user, moderator or admin.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user';
-- A ban: until when (ms; 9223372036854775807 = until lifted; NULL = not banned) and why.
ALTER TABLE users ADD COLUMN banned_until INTEGER;
ALTER TABLE users ADD COLUMN ban_reason TEXT;
-- A room's moderation policy: off, standard or strict (random chats: strict).
ALTER TABLE rooms ADD COLUMN moderation TEXT NOT NULL DEFAULT 'standard';
UPDATE rooms SET moderation = 'strict' WHERE kind = 'random';
-- Whether moderation masked spans of the stored text.
ALTER TABLE messages ADD COLUMN masked INTEGER NOT NULL DEFAULT 0;
-- The moderators' review queue: user reports (kind 'report') and flagged
-- messages (kind 'flag'), open until resolved.
CREATE TABLE moderation_queue (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    room_id     INTEGER NOT NULL REFERENCES rooms(id),
    -- the reported or flagged message, if any
    message_id  INTEGER REFERENCES messages(id),
    -- the reported user, or the flagged message's sender
    subject_id  INTEGER NOT NULL REFERENCES users(id),
    -- NULL for flags
    reporter_id INTEGER REFERENCES users(id),
    -- a report's reason, or a flag's categories (comma-separated)
    reason      TEXT NOT NULL,
    -- a flag's classifier score (0..1)
    score       REAL,
    created_at  INTEGER NOT NULL,
    resolved_at INTEGER,
    resolved_by INTEGER REFERENCES users(id),
    resolution  TEXT
);
CREATE INDEX moderation_queue_open ON moderation_queue(id) WHERE resolved_at IS NULL;
CREATE INDEX moderation_queue_by_subject ON moderation_queue(subject_id);
INSERT INTO moderation_queue (kind, room_id, subject_id, reporter_id, reason, created_at)
    SELECT 'report', room_id, reported_id, reporter_id, reason, created_at FROM reports ORDER BY id;
-- Blocked messages per user, for escalation (a matching cool-down, then a temporary ban).
CREATE TABLE moderation_strikes (
    user_id INTEGER NOT NULL REFERENCES users(id),
    at      INTEGER NOT NULL
);
CREATE INDEX moderation_strikes_by_user ON moderation_strikes(user_id, at);
