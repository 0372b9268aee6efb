-- Media records (issue 12, contract §6). Uploaded files' metadata (their bytes
-- are in the media store), which messages carry which files, and resumable
-- uploads in progress. A file no `message_media` row names is unattached.
CREATE TABLE media (
    id         TEXT PRIMARY KEY,
    owner      INTEGER NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    mime       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    width      INTEGER,
    height     INTEGER,
    thumbnail  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX media_by_owner ON media(owner);
-- The unattached-file cleanup scans oldest first.
CREATE INDEX media_by_created ON media(created_at);

-- A message's attachments, in the sender's order.
CREATE TABLE message_media (
    message_id INTEGER NOT NULL REFERENCES messages(id),
    position   INTEGER NOT NULL,
    media_id   TEXT NOT NULL REFERENCES media(id),
    PRIMARY KEY (message_id, position)
) WITHOUT ROWID;
CREATE INDEX message_media_by_media ON message_media(media_id);

-- Resumable uploads (tus): `offset` bytes stored so far, as the parts in `idx` order.
CREATE TABLE uploads (
    id         TEXT PRIMARY KEY,
    owner      INTEGER NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    length     INTEGER NOT NULL,
    "offset"   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX uploads_by_updated ON uploads(updated_at);

CREATE TABLE upload_parts (
    upload_id TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    idx       INTEGER NOT NULL,
    key       TEXT NOT NULL,
    PRIMARY KEY (upload_id, idx)
) WITHOUT ROWID;
