-- Multi-node random matching: the matcher's whole state, one row, changed only
-- under its row lock (SELECT … FOR UPDATE), so every node sees one queue.
CREATE TABLE match_state (
    id    INTEGER PRIMARY KEY,
    state TEXT NOT NULL
);
