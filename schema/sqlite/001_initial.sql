-- 001_initial.sql: msgstore's tables on SQLite (the embedded backend).
--
-- The same tables and keys as schema/cql/001_initial.cql, so the two backends
-- behave the same. Ids are snowflakes and user/channel ids stored as INTEGER
-- (signed 64-bit: the API accepts 1..2^63-1). Times are Unix milliseconds.
-- WITHOUT ROWID clusters each table on its primary key, as Cassandra does.

-- Messages of a channel, partitioned as in Cassandra by (channel_id, bucket);
-- the primary key (channel_id, message_id) serves every page with one index
-- range scan. Soft delete keeps the row (is_deleted, content '').
CREATE TABLE messages (
    channel_id          {{id}} NOT NULL,
    bucket              INTEGER NOT NULL,
    message_id          INTEGER NOT NULL,
    sender_id           {{id}} NOT NULL,
    type                INTEGER NOT NULL,
    source              INTEGER NOT NULL,
    content             TEXT    NOT NULL,
    reply_to            INTEGER,
    attachments         TEXT,
    metadata            TEXT,
    nonce               TEXT,
    telegram_chat_id    INTEGER,
    telegram_message_id INTEGER,
    created_at          INTEGER NOT NULL,
    is_edited           INTEGER NOT NULL DEFAULT 0,
    edited_at           INTEGER,
    is_deleted          INTEGER NOT NULL DEFAULT 0,
    deleted_at          INTEGER,
    PRIMARY KEY (channel_id, message_id)
) WITHOUT ROWID;

-- Fix 6: the non-empty buckets of each channel, so paging back through a
-- sparse channel jumps from one non-empty bucket to the next instead of
-- probing every empty 10-day bucket, and stops at the first one.
CREATE TABLE channel_buckets (
    channel_id {{id}} NOT NULL,
    bucket     INTEGER NOT NULL,
    PRIMARY KEY (channel_id, bucket)
) WITHOUT ROWID;

-- O(1) Telegram lookup and dedup (fix 7): the primary key is the dedup
-- constraint, checked inside the writer's transaction.
CREATE TABLE telegram_message_mapping (
    telegram_chat_id    INTEGER NOT NULL,
    telegram_message_id INTEGER NOT NULL,
    channel_id          {{id}} NOT NULL,
    message_id          INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    PRIMARY KEY (telegram_chat_id, telegram_message_id)
) WITHOUT ROWID;

-- Idempotent sends (fix 7): a client nonce maps to the first message sent
-- with it in the channel.
CREATE TABLE message_nonces (
    channel_id {{id}} NOT NULL,
    nonce      TEXT    NOT NULL,
    message_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (channel_id, nonce)
) WITHOUT ROWID;

-- Edit history: the content each edit replaced.
CREATE TABLE message_edits (
    channel_id {{id}} NOT NULL,
    message_id INTEGER NOT NULL,
    edited_at  INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    content    TEXT    NOT NULL,
    PRIMARY KEY (channel_id, message_id, seq)
) WITHOUT ROWID;

-- Who reacted with what; the primary key makes add/remove idempotent.
CREATE TABLE message_reactions (
    channel_id {{id}} NOT NULL,
    message_id INTEGER NOT NULL,
    emoji      TEXT    NOT NULL,
    user_id    {{id}} NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (channel_id, message_id, emoji, user_id)
) WITHOUT ROWID;

-- Counts per emoji, moved in the same transaction as a reaction row is
-- created or removed (fix 2: only a new row counts).
CREATE TABLE message_reaction_counts (
    channel_id {{id}} NOT NULL,
    message_id INTEGER NOT NULL,
    emoji      TEXT    NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (channel_id, message_id, emoji)
) WITHOUT ROWID;

-- Pins with a content preview, listed newest first.
CREATE TABLE pinned_messages (
    channel_id      {{id}} NOT NULL,
    message_id      INTEGER NOT NULL,
    pinned_at       INTEGER NOT NULL,
    pinned_by       {{id}} NOT NULL,
    content_preview TEXT    NOT NULL,
    sender_id       {{id}} NOT NULL,
    PRIMARY KEY (channel_id, message_id)
) WITHOUT ROWID;

CREATE TABLE telegram_sync_state (
    channel_id             {{id}} PRIMARY KEY,
    telegram_chat_id       INTEGER NOT NULL,
    last_synced_message_id INTEGER NOT NULL,
    direction              INTEGER NOT NULL,
    last_sync_at           INTEGER NOT NULL,
    created_at             INTEGER NOT NULL
);

-- Denormalized channel info, kept current by every insert.
CREATE TABLE channel_metadata (
    channel_id      {{id}} PRIMARY KEY,
    name            TEXT    NOT NULL DEFAULT '',
    type            TEXT    NOT NULL DEFAULT 'channel',
    created_at      INTEGER NOT NULL,
    last_message_id INTEGER NOT NULL DEFAULT 0,
    message_count   INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL
);

-- Last read message per (channel, user); only ever moves forward.
CREATE TABLE message_read_positions (
    channel_id   {{id}} NOT NULL,
    user_id      {{id}} NOT NULL,
    last_read_id INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (channel_id, user_id)
) WITHOUT ROWID;
