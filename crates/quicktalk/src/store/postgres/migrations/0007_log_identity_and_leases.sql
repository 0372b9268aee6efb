-- Multi-node pipeline, keyed by the log's identity and owned by leases.
--
-- log_id names one incarnation of one (topic, partition): a message's place in
-- the log is (log_id, log_offset), so a recreated topic (offsets from 0 again)
-- or another prefix can never be mistaken for records applied before. A node
-- that finds the broker's partition behind the stored next_offset gives the
-- partition a new log_id.
--
-- The lease (owner, epoch, expiry) says which node may apply a partition: it is
-- renewed every round, taken over once expired (or its owner's session is gone),
-- and append_logged writes only while the row still names its owner and epoch.
CREATE SEQUENCE pipeline_log_ids;
ALTER TABLE pipeline_offsets
    ADD COLUMN log_id BIGINT NOT NULL DEFAULT nextval('pipeline_log_ids'),
    ADD COLUMN lease_owner TEXT,
    ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN lease_expires TIMESTAMPTZ;
ALTER TABLE messages ADD COLUMN log_id BIGINT;
-- Positions recorded before: attributable only when one topic was ever used.
UPDATE messages m SET log_id = o.log_id
    FROM pipeline_offsets o
    WHERE m.log_offset IS NOT NULL AND m.log_partition = o.partition
      AND (SELECT count(DISTINCT topic) FROM pipeline_offsets) = 1;
DROP INDEX messages_log_pos;
ALTER TABLE messages DROP COLUMN log_partition;
CREATE UNIQUE INDEX messages_log_pos ON messages (log_id, log_offset)
    WHERE log_id IS NOT NULL;

-- The nodes taking part, with the PostgreSQL session that proves each is alive
-- (a killed node's session ends at once; a hung node's lease expires).
CREATE TABLE pipeline_members (
    topic         TEXT NOT NULL,
    node          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    backend_start TIMESTAMPTZ NOT NULL,
    expires       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (topic, node)
);
