-- Secrets every node must share (the token signing key), created by the first node.
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
