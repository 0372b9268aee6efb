-- History search (contract §9): a trigram index over the folded text
-- (`store::search::fold`) of every `text` message. Contentless (the text is
-- kept once, in `messages`), `detail=none` (each trigram lists the messages it
-- occurs in, no positions) and no column sizes: the least the writer has to
-- add to a message's transaction. A query asks for all its trigrams and every
-- candidate is checked against the text, so no positions are needed. The
-- writer keeps it in the storing transaction (append inserts, a tombstone
-- deletes with the text it indexed); existing messages are indexed right after
-- this migration, in its transaction. Folded queries shorter than a trigram
-- scan the rooms instead.
CREATE VIRTUAL TABLE message_search USING fts5(
    body,
    content = '',
    detail = none,
    columnsize = 0,
    tokenize = 'trigram case_sensitive 1'
);
