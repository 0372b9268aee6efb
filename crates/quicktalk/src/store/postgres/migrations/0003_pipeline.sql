-- Multi-node pipeline: how far each log partition has been applied (advanced in
-- the same transaction as the messages), and where each message came from, so a
-- record delivered twice (after a crash or a rebalance) is applied once.
CREATE TABLE pipeline_offsets (
    topic       TEXT NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, partition)
);
ALTER TABLE messages ADD COLUMN log_partition INTEGER, ADD COLUMN log_offset BIGINT;
CREATE UNIQUE INDEX messages_log_pos ON messages (log_partition, log_offset)
    WHERE log_offset IS NOT NULL;
