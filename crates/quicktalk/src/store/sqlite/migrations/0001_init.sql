-- QuickTalk schema v1 (SQLite). Times are UTC milliseconds.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT UNIQUE COLLATE NOCASE,
    password_hash TEXT,
    display_name  TEXT NOT NULL,
    guest         INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE rooms (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    visibility      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    created_by      INTEGER NOT NULL REFERENCES users(id),
    created_at      INTEGER NOT NULL,
    member_count    INTEGER NOT NULL DEFAULT 0,
    last_seq        INTEGER NOT NULL DEFAULT 0,
    last_message_at INTEGER
);
CREATE INDEX rooms_public ON rooms(visibility, kind);

CREATE TABLE members (
    room_id   INTEGER NOT NULL REFERENCES rooms(id),
    user_id   INTEGER NOT NULL REFERENCES users(id),
    joined_at INTEGER NOT NULL,
    -- seq of the join message: orders members by when they joined
    join_seq  INTEGER NOT NULL,
    read_seq  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(user_id);

CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    room_id     INTEGER NOT NULL REFERENCES rooms(id),
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    sender_id   INTEGER NOT NULL,
    sender_name TEXT NOT NULL,
    text        TEXT NOT NULL,
    client_id   TEXT,
    sent_at     INTEGER NOT NULL,
    UNIQUE (room_id, seq)
);
CREATE UNIQUE INDEX messages_client_id ON messages(room_id, sender_id, client_id)
    WHERE client_id IS NOT NULL;
