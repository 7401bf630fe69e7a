-- 003_search_ids.sql: the search index's channel token is 'c' || hex(channel_id).
--
-- Channel ids are 16-byte BLOBs in a UUID store (msgstore/id.h) and INTEGERs in
-- an int64 store; hex() of either is one token of letters and digits, the same
-- for the trigger and for the query (sqlite_internal.h, SQ_SEARCH_SELECT), where
-- 'c' || channel_id of 002 would splice raw bytes into the index. The index is
-- rebuilt from `messages` after this file runs (sqlite_search.c, with progress).
DROP TRIGGER message_search_insert;
DROP TRIGGER message_search_update;
DROP TRIGGER message_search_delete;
DELETE FROM message_search;

CREATE TRIGGER message_search_insert AFTER INSERT ON messages
WHEN NEW.is_deleted = 0 AND NEW.content <> '' BEGIN
    INSERT INTO message_search(rowid, content, channel)
    VALUES (NEW.message_id, NEW.content, 'c' || hex(NEW.channel_id));
END;

CREATE TRIGGER message_search_update AFTER UPDATE OF content, is_deleted ON messages BEGIN
    DELETE FROM message_search WHERE rowid = OLD.message_id
        AND channel = 'c' || hex(OLD.channel_id);
    INSERT INTO message_search(rowid, content, channel)
    SELECT NEW.message_id, NEW.content, 'c' || hex(NEW.channel_id)
    WHERE NEW.is_deleted = 0 AND NEW.content <> '';
END;

CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM message_search WHERE rowid = OLD.message_id
        AND channel = 'c' || hex(OLD.channel_id);
END;
