-- QuickTalk schema v1 (PostgreSQL). Times are UTC milliseconds.
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT,
    password_hash TEXT,
    display_name  TEXT NOT NULL,
    guest         BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (lower(username)) WHERE username IS NOT NULL;

CREATE TABLE rooms (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT NOT NULL,
    visibility      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    created_by      BIGINT NOT NULL REFERENCES users(id),
    created_at      BIGINT NOT NULL,
    member_count    BIGINT NOT NULL DEFAULT 0,
    last_seq        BIGINT NOT NULL DEFAULT 0,
    last_message_at BIGINT
);
CREATE INDEX rooms_public ON rooms (visibility, kind);

CREATE TABLE members (
    room_id   BIGINT NOT NULL REFERENCES rooms(id),
    user_id   BIGINT NOT NULL REFERENCES users(id),
    joined_at BIGINT NOT NULL,
    -- seq of the join message: orders members by when they joined
    join_seq  BIGINT NOT NULL,
    read_seq  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id);

CREATE TABLE messages (
    id          BIGSERIAL PRIMARY KEY,
    room_id     BIGINT NOT NULL REFERENCES rooms(id),
    seq         BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    sender_id   BIGINT NOT NULL,
    sender_name TEXT NOT NULL,
    text        TEXT NOT NULL,
    client_id   TEXT,
    sent_at     BIGINT NOT NULL,
    UNIQUE (room_id, seq)
);
CREATE UNIQUE INDEX messages_client_id ON messages (room_id, sender_id, client_id)
    WHERE client_id IS NOT NULL;

-- Reports from random chats; a reported pair is never matched again.
CREATE TABLE reports (
    id          BIGSERIAL PRIMARY KEY,
    room_id     BIGINT NOT NULL REFERENCES rooms(id),
    reporter_id BIGINT NOT NULL REFERENCES users(id),
    reported_id BIGINT NOT NULL REFERENCES users(id),
    reason      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX reports_by_pair ON reports (reporter_id, reported_id);
