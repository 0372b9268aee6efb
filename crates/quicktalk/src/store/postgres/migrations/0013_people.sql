-- People (issue 13, contract §7): profiles, guest upgrade, friends, blocks and
-- direct rooms. Pairs are stored lower id first, so one uniqueness rule holds
-- whichever side acts.
ALTER TABLE users ADD COLUMN status_message TEXT;
ALTER TABLE users ADD COLUMN avatar TEXT;
ALTER TABLE users ADD COLUMN dm_policy TEXT NOT NULL DEFAULT 'everyone';
-- Bumped by a guest upgrade: tokens issued in an older epoch stop working.
ALTER TABLE users ADD COLUMN token_epoch BIGINT NOT NULL DEFAULT 0;

CREATE TABLE friend_requests (
    id          BIGSERIAL PRIMARY KEY,
    from_id     BIGINT NOT NULL REFERENCES users(id),
    to_id       BIGINT NOT NULL REFERENCES users(id),
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    answered_at BIGINT
);
-- At most one pending request per pair, whichever side sent it.
CREATE UNIQUE INDEX friend_requests_one_pending
    ON friend_requests (LEAST(from_id, to_id), GREATEST(from_id, to_id)) WHERE status = 'pending';
CREATE INDEX friend_requests_to ON friend_requests (to_id) WHERE status = 'pending';
CREATE INDEX friend_requests_from ON friend_requests (from_id) WHERE status = 'pending';

CREATE TABLE friendships (
    user_lo    BIGINT NOT NULL REFERENCES users(id),
    user_hi    BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_lo, user_hi),
    CHECK (user_lo < user_hi)
);
CREATE INDEX friendships_hi ON friendships (user_hi);

CREATE TABLE blocks (
    blocker    BIGINT NOT NULL REFERENCES users(id),
    blocked    BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (blocker, blocked)
);
CREATE INDEX blocks_blocked ON blocks (blocked);

CREATE TABLE direct_rooms (
    user_lo BIGINT NOT NULL REFERENCES users(id),
    user_hi BIGINT NOT NULL REFERENCES users(id),
    room_id BIGINT NOT NULL UNIQUE REFERENCES rooms(id),
    PRIMARY KEY (user_lo, user_hi),
    CHECK (user_lo < user_hi)
);
