-- 002_search.sql: full-text search (store_search) in the same file.
--
-- An FTS5 index of every message that is not deleted and has content. Its
-- rowid is the message id (snowflakes are unique in a store), so "newest
-- first" is FTS5's own descending rowid walk and `before` a rowid bound.
-- `channel` holds one token per message, 'c' || channel_id, so a search in
-- one channel is an index intersection rather than a filter over every match.
-- The triggers keep the index in the writer's transaction: a message is
-- found as soon as its insert returned, an edit re-indexes it, a delete
-- removes it. Messages already stored are indexed after this file runs, in
-- batches with progress (sqlite.c, search_backfill).
CREATE VIRTUAL TABLE message_search USING fts5(
    content,
    channel,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Relevance (ORDER BY rank) is BM25 over the content only: the channel token
-- would favour small channels.
INSERT INTO message_search(message_search, rank) VALUES('rank', 'bm25(1.0, 0.0)');

CREATE TRIGGER message_search_insert AFTER INSERT ON messages
WHEN NEW.is_deleted = 0 AND NEW.content <> '' BEGIN
    INSERT INTO message_search(rowid, content, channel)
    VALUES (NEW.message_id, NEW.content, 'c' || NEW.channel_id);
END;

CREATE TRIGGER message_search_update AFTER UPDATE OF content, is_deleted ON messages BEGIN
    DELETE FROM message_search WHERE rowid = OLD.message_id
        AND channel = 'c' || OLD.channel_id;
    INSERT INTO message_search(rowid, content, channel)
    SELECT NEW.message_id, NEW.content, 'c' || NEW.channel_id
    WHERE NEW.is_deleted = 0 AND NEW.content <> '';
END;

CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM message_search WHERE rowid = OLD.message_id
        AND channel = 'c' || OLD.channel_id;
END;
