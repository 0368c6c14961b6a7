-- Keyed writes' receipts (idempotency keys, CONTRACT.md §4.5): the answer of each write
-- that carried a key, written in the write's own transaction, by the caller's scope and
-- key. Kept for the receipt window, then removed by the server's sweep (oldest first,
-- through the index on recorded_at).
CREATE TABLE receipts (
    scope       TEXT COLLATE "C" NOT NULL,
    key         TEXT COLLATE "C" NOT NULL,
    fingerprint BYTEA NOT NULL,
    status      SMALLINT NOT NULL,
    body        BYTEA NOT NULL,
    recorded_at BIGINT NOT NULL,
    CONSTRAINT receipts_pkey PRIMARY KEY (scope, key)
);
CREATE INDEX receipts_recorded_at_idx ON receipts (recorded_at);
