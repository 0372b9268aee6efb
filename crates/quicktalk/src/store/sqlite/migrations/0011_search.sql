-- History search (contract §9): a trigram index over the folded text
-- (`store::search::fold`) of every `text` message. Contentless: the text is
-- kept once, in `messages`; the index holds only trigrams and positions. The
-- writer keeps it in the storing transaction (append inserts, a tombstone
-- deletes); existing messages are indexed right after this migration, in its
-- transaction. Folded queries shorter than a trigram scan the rooms instead.
CREATE VIRTUAL TABLE message_search USING fts5(
    body,
    content = '',
    contentless_delete = 1,
    tokenize = 'trigram case_sensitive 1'
);
