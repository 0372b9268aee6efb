-- Users the shared matcher holds (waiting or matched), kept in step with
-- match_state under its row lock: a socket of anyone else opens and closes
-- without locking or rewriting the matcher's state.
CREATE TABLE match_users (
    user_id BIGINT PRIMARY KEY
);
