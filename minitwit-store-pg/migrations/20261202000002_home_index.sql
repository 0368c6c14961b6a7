-- Home timelines kept on write (see src/home.rs): each user's home index holds their own
-- and their followees' newest unflagged messages, written by the triggers below in the
-- transaction of the write that changes it, so that a home page is one index range read.
--
-- Bounds, from the connection's settings (PgOptions::home):
-- - `minitwit.home_kept`: the entries an index keeps. A follow copies at most this many
--   of the followee's newest messages; when it leaves older ones out, the newest left
--   out becomes the index's floor. A copy into an index trims it back to this many one
--   time in `home_trim_every` (picked by a hash of owner and message, so that no count
--   is kept per index): an index holds `home_kept` entries plus a few dozen at most, in
--   all likelihood. Below a floor, home pages are merged from the author index.
-- - `minitwit.home_fan_out_limit`: an author with more followers is *wide* from then on:
--   their messages are not copied, and their followers' pages merge them at read time.

CREATE FUNCTION home_kept() RETURNS BIGINT LANGUAGE sql STABLE AS $$
    SELECT COALESCE(NULLIF(current_setting('minitwit.home_kept', true), '')::BIGINT, 800)
$$;

CREATE FUNCTION home_fan_out_limit() RETURNS BIGINT LANGUAGE sql STABLE AS $$
    SELECT COALESCE(NULLIF(current_setting('minitwit.home_fan_out_limit', true), '')::BIGINT,
                    10000)
$$;

ALTER TABLE users
    ADD COLUMN followers BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN wide BOOLEAN NOT NULL DEFAULT FALSE;
-- The few wide authors, which every home page merges in for its reader.
CREATE INDEX users_wide_idx ON users (id) WHERE wide;

CREATE TABLE home_entries (
    owner_id   BIGINT NOT NULL,
    pub_date   BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    author_id  BIGINT NOT NULL,
    CONSTRAINT home_entries_pkey PRIMARY KEY (owner_id, pub_date, message_id),
    CONSTRAINT home_entries_owner_id_fkey
        FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT home_entries_message_id_fkey
        FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE
);
-- Flagging, and the cascade when a message is deleted.
CREATE INDEX home_entries_message_idx ON home_entries (message_id);

-- Above its floor an index is complete; at and below it, pages are merged.
CREATE TABLE home_floors (
    owner_id   BIGINT PRIMARY KEY,
    pub_date   BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    CONSTRAINT home_floors_owner_id_fkey
        FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE FUNCTION home_trim_every() RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$ SELECT 32::BIGINT $$;

-- Trims `owner`'s index to its newest `home_kept()` entries; the newest let go becomes
-- the floor.
CREATE FUNCTION home_trim(owner BIGINT) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    cut RECORD;
BEGIN
    SELECT pub_date, message_id INTO cut FROM home_entries
    WHERE owner_id = owner
    ORDER BY pub_date DESC, message_id DESC
    OFFSET home_kept() LIMIT 1;
    IF FOUND THEN
        DELETE FROM home_entries
        WHERE owner_id = owner AND (pub_date, message_id) <= (cut.pub_date, cut.message_id);
        INSERT INTO home_floors (owner_id, pub_date, message_id)
        VALUES (owner, cut.pub_date, cut.message_id)
        ON CONFLICT (owner_id) DO UPDATE
            SET pub_date = EXCLUDED.pub_date, message_id = EXCLUDED.message_id
            WHERE (EXCLUDED.pub_date, EXCLUDED.message_id)
                > (home_floors.pub_date, home_floors.message_id);
    END IF;
END $$;

-- Messages `ids` (unflagged), into the indexes of their authors and, unless the author
-- is wide, of their followers (above each index's floor); trims some of those indexes
-- (see `home_trim_every`).
CREATE FUNCTION home_copy(ids BIGINT[]) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    due BIGINT[];
BEGIN
    WITH copied AS (
        INSERT INTO home_entries (owner_id, pub_date, message_id, author_id)
        SELECT o.owner_id, m.pub_date, m.id, m.author_id
        FROM messages m
        CROSS JOIN LATERAL (
            SELECT m.author_id AS owner_id
            UNION
            SELECT f.follower_id FROM follows f
            WHERE f.followee_id = m.author_id
              AND NOT (SELECT a.wide FROM users a WHERE a.id = m.author_id)
        ) o
        WHERE m.id = ANY (ids) AND NOT m.flagged
          AND NOT EXISTS (
              SELECT 1 FROM home_floors fl
              WHERE fl.owner_id = o.owner_id AND (m.pub_date, m.id) <= (fl.pub_date, fl.message_id))
        ON CONFLICT DO NOTHING
        RETURNING owner_id, message_id
    )
    SELECT array_agg(DISTINCT owner_id) INTO due FROM copied
    WHERE (owner_id * 7919 + message_id) % home_trim_every() = 0;
    PERFORM home_trim(owner) FROM unnest(due) AS owner;
END $$;

-- New messages into the indexes; flagged ones out of every index, unflagged ones back.
CREATE FUNCTION home_copy_messages() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM home_copy(ARRAY(SELECT id FROM new_rows));
    ELSE
        DELETE FROM home_entries h
        USING new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.flagged AND NOT o.flagged AND h.message_id = n.id;
        PERFORM home_copy(ARRAY(
            SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
            WHERE o.flagged AND NOT n.flagged));
    END IF;
    RETURN NULL;
END $$;

-- New follows: follower counts, authors turning wide, and the followee's newest messages
-- copied into the follower's index (the newest left out, if any, becomes its floor).
CREATE FUNCTION home_follow() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    kept BIGINT := home_kept();
BEGIN
    UPDATE users u SET followers = u.followers + d.n
    FROM (SELECT followee_id, count(*) AS n FROM new_rows
          WHERE follower_id <> followee_id GROUP BY followee_id) d
    WHERE u.id = d.followee_id;
    UPDATE users SET wide = TRUE
    WHERE id IN (SELECT followee_id FROM new_rows) AND NOT wide
      AND followers > home_fan_out_limit();
    WITH backfill AS (
        SELECT r.follower_id AS owner_id, k.pub_date, k.id AS message_id,
               r.followee_id AS author_id, k.rank
        FROM new_rows r
        JOIN users x ON x.id = r.followee_id AND NOT x.wide
        LEFT JOIN home_floors fl ON fl.owner_id = r.follower_id
        CROSS JOIN LATERAL (
            SELECT m.pub_date, m.id,
                   row_number() OVER (ORDER BY m.pub_date DESC, m.id DESC) AS rank
            FROM messages m
            WHERE m.author_id = r.followee_id AND NOT m.flagged
              AND (fl.owner_id IS NULL OR (m.pub_date, m.id) > (fl.pub_date, fl.message_id))
            ORDER BY m.pub_date DESC, m.id DESC
            LIMIT kept + 1
        ) k
        WHERE r.follower_id <> r.followee_id
    ), copied AS (
        INSERT INTO home_entries (owner_id, pub_date, message_id, author_id)
        SELECT owner_id, pub_date, message_id, author_id FROM backfill WHERE rank <= kept
        ON CONFLICT DO NOTHING
    )
    INSERT INTO home_floors (owner_id, pub_date, message_id)
    SELECT DISTINCT ON (owner_id) owner_id, pub_date, message_id
    FROM backfill WHERE rank > kept
    ORDER BY owner_id, pub_date DESC, message_id DESC
    ON CONFLICT (owner_id) DO UPDATE
        SET pub_date = EXCLUDED.pub_date, message_id = EXCLUDED.message_id
        WHERE (EXCLUDED.pub_date, EXCLUDED.message_id)
            > (home_floors.pub_date, home_floors.message_id);
    RETURN NULL;
END $$;

-- Ended follows: follower counts, and the followee's entries out of the follower's index.
CREATE FUNCTION home_unfollow() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users u SET followers = u.followers - d.n
    FROM (SELECT followee_id, count(*) AS n FROM old_rows
          WHERE follower_id <> followee_id GROUP BY followee_id) d
    WHERE u.id = d.followee_id;
    DELETE FROM home_entries h USING old_rows r
    WHERE h.owner_id = r.follower_id AND h.author_id = r.followee_id
      AND r.follower_id <> r.followee_id;
    RETURN NULL;
END $$;

CREATE TRIGGER messages_copied_on_insert AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION home_copy_messages();
CREATE TRIGGER messages_copied_on_update AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION home_copy_messages();
CREATE TRIGGER follows_copied_on_insert AFTER INSERT ON follows
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION home_follow();
CREATE TRIGGER follows_uncopied_on_delete AFTER DELETE ON follows
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION home_unfollow();

-- The indexes of the data already here.
UPDATE users u SET followers = c.n
FROM (SELECT followee_id, count(*) AS n FROM follows
      WHERE follower_id <> followee_id GROUP BY followee_id) c
WHERE u.id = c.followee_id;
UPDATE users SET wide = TRUE WHERE followers > home_fan_out_limit();

WITH build AS (
    SELECT o.id AS owner_id, k.pub_date, k.id AS message_id, k.author_id,
           row_number() OVER (PARTITION BY o.id ORDER BY k.pub_date DESC, k.id DESC) AS rank
    FROM users o
    CROSS JOIN LATERAL (
        SELECT o.id AS author_id
        UNION
        SELECT f.followee_id FROM follows f JOIN users w ON w.id = f.followee_id AND NOT w.wide
        WHERE f.follower_id = o.id
    ) a
    CROSS JOIN LATERAL (
        SELECT m.pub_date, m.id, m.author_id FROM messages m
        WHERE m.author_id = a.author_id AND NOT m.flagged
        ORDER BY m.pub_date DESC, m.id DESC
        LIMIT home_kept() + 1
    ) k
), copied AS (
    INSERT INTO home_entries (owner_id, pub_date, message_id, author_id)
    SELECT owner_id, pub_date, message_id, author_id FROM build WHERE rank <= home_kept()
)
INSERT INTO home_floors (owner_id, pub_date, message_id)
SELECT owner_id, pub_date, message_id FROM build WHERE rank = home_kept() + 1;
