-- History search (contract §9). `search_text` is `store::search::fold` of a
-- `text` message's text where that differs from the text (NULL: the text is
-- its own fold, as every Hangul text is); the append writes it in the storing
-- transaction, a tombstone clears it. A `pg_trgm` GIN index over the folded
-- text of `text` messages narrows substring matches of three or more
-- characters (tombstones leave it with their kind). Messages stored before
-- this migration are folded by the nodes afterwards (`search_backfill`).
ALTER TABLE messages ADD COLUMN search_text TEXT;

-- The newest message id that may still need its fold written; 0 when done.
CREATE TABLE search_backfill (upto BIGINT NOT NULL);
INSERT INTO search_backfill SELECT COALESCE(MAX(id), 0) FROM messages;

-- pg_trgm lives in one schema per database (public when we create it); the
-- index names its operator class there, whatever this schema is.
DO $$
DECLARE
    trgm_schema TEXT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE EXTENSION pg_trgm WITH SCHEMA public;
    END IF;
    SELECT n.nspname INTO trgm_schema
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_trgm';
    EXECUTE format(
        'CREATE INDEX messages_search ON messages USING gin ((COALESCE(search_text, text)) %I.gin_trgm_ops) WHERE kind = %L',
        trgm_schema, 'text');
END
$$;
