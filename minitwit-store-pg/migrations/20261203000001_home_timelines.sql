-- Kept home timelines: fan-out on write. Each user's home timeline is kept as an index
-- of (pub_date, message id) entries, written in the statement that stores a message or
-- a follow (by the triggers below), so a home page is one range read of a few dozen
-- index entries however many accounts its reader follows. timeline.rs reads it.
--
-- The rules, per reader ("owner"):
-- - Only for active readers (home_active): those who have opened their home page.
--   Their first read activates them (home_activate: the newest messages of everyone
--   they follow go in at once); nobody else's home timeline is kept. Their follows are
--   listed apart (home_active_follows), so a post finds the followers it goes to
--   without looking at the others, and costs one row per follower who reads their
--   home page (the simulator's traffic never opens one). Inactive readers' pages merge
--   on read, and their follows cost nothing more than before.
-- - Exact above the owner's floor: every message of the owner and of each followee
--   who is not loud, with a key (pub_date, id) >= the floor (home_floors; no row
--   means no floor), is kept, flagged or not (reads skip flagged ones, so unflagging
--   shows an entry again). Below the floor a read merges the authors' own indexes.
-- - Bounded: about `bound` entries per owner. Writes trim an owner's oldest entries
--   now and then and raise the floor to match: one insert in 512, at random by id, so
--   an owner holds `bound` + 256 entries on average. A trim reads `bound` entries (1-4
--   ms at 800), some 200 times the cost of an insert, so trimming more often would
--   cost more than the fan-out itself;
--   a follow keeps only the followee's newest `bound` messages and raises the floor
--   above the ones it left out.
-- - Loud authors: one who has had more than `fanout_limit` active followers when
--   posting is loud for good (home_loud). Their posts go into their own home timeline only; their followers'
--   reads merge the newest of their messages above the floor (home_loud_follows lists
--   who follows a loud author). Entries a loud author had before turning loud may
--   stay; reads take each message once.
-- - Order: a post and a follow or unfollow of its author take one advisory lock
--   (home_lock), so a follow committing during a post is seen by the post's fan-out
--   or its backfill sees the post; a follow or unfollow also takes its follower's,
--   which orders it against the follower's activation. Bulk imports (minitwit.bulk = on) run alone and
--   take no locks.

CREATE TABLE home_settings (
    id           BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    bound        INTEGER NOT NULL CHECK (bound > 0),
    fanout_limit INTEGER NOT NULL CHECK (fanout_limit >= 0)
);
INSERT INTO home_settings (bound, fanout_limit) VALUES (800, 2000);

-- No foreign keys: every post writes one row per active follower, and a key check per
-- row would cost more than the row. The triggers below remove the rows of deleted
-- users and ended follows.
CREATE TABLE home_entries (
    owner_id   BIGINT NOT NULL,
    pub_date   BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    author_id  BIGINT NOT NULL,
    CONSTRAINT home_entries_pkey PRIMARY KEY (owner_id, pub_date, message_id)
);

CREATE TABLE home_active (
    owner_id BIGINT PRIMARY KEY,
    CONSTRAINT home_active_owner_id_fkey
        FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE
);

-- The follows of active readers, by followee: whom a post goes to.
CREATE TABLE home_active_follows (
    followee_id BIGINT NOT NULL,
    follower_id BIGINT NOT NULL,
    CONSTRAINT home_active_follows_pkey PRIMARY KEY (followee_id, follower_id),
    CONSTRAINT home_active_follows_follow_fkey FOREIGN KEY (follower_id, followee_id)
        REFERENCES follows (follower_id, followee_id) ON DELETE CASCADE
);

CREATE TABLE home_floors (
    owner_id   BIGINT PRIMARY KEY,
    pub_date   BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    CONSTRAINT home_floors_owner_id_fkey
        FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE TABLE home_loud (
    user_id BIGINT PRIMARY KEY,
    CONSTRAINT home_loud_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

-- The follows of loud authors by active readers: what their pages merge on read.
CREATE TABLE home_loud_follows (
    follower_id BIGINT NOT NULL,
    followee_id BIGINT NOT NULL,
    CONSTRAINT home_loud_follows_pkey PRIMARY KEY (follower_id, followee_id),
    CONSTRAINT home_loud_follows_follow_fkey FOREIGN KEY (follower_id, followee_id)
        REFERENCES follows (follower_id, followee_id) ON DELETE CASCADE
);

-- Orders the posts of these users against follows of them: one of 1024 advisory lock
-- slots per user (negative keys, apart from the migrator's), taken in slot order, so
-- no statement holds more than 1024 and two statements never wait on each other in a
-- circle. Posts take them shared (home_lock_shared), so that one author's posts still
-- commit together (the lock is held until the commit is on disk); follows, unfollows
-- and activations exclusive.
CREATE FUNCTION home_lock(ids BIGINT[]) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('minitwit.bulk', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_advisory_xact_lock(slot)
        FROM (SELECT DISTINCT -1 - (id & 1023) AS slot FROM unnest(ids) AS id ORDER BY 1) s;
    END IF;
END $$;

CREATE FUNCTION home_lock_shared(ids BIGINT[]) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('minitwit.bulk', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_advisory_xact_lock_shared(slot)
        FROM (SELECT DISTINCT -1 - (id & 1023) AS slot FROM unnest(ids) AS id ORDER BY 1) s;
    END IF;
END $$;

-- Keeps the newest `bound` entries of each of these owners, raising the floors of
-- those who had more to their oldest entry kept. One owner at a time, in statements
-- whose plans are index range scans whatever the arguments (a statement over all the
-- owners at once is planned, once its plan is cached for any arguments, as a scan of
-- the whole table).
CREATE FUNCTION home_trim(owners BIGINT[], bound INTEGER) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    owner BIGINT;
    kept_date BIGINT;
    kept_id BIGINT;
BEGIN
    FOREACH owner IN ARRAY ARRAY(SELECT DISTINCT unnest(owners)) LOOP
        SELECT pub_date, message_id INTO kept_date, kept_id FROM home_entries
        WHERE owner_id = owner
        ORDER BY pub_date DESC, message_id DESC OFFSET bound - 1 LIMIT 1;
        CONTINUE WHEN NOT FOUND;
        DELETE FROM home_entries
        WHERE owner_id = owner AND (pub_date, message_id) < (kept_date, kept_id);
        CONTINUE WHEN NOT FOUND;
        INSERT INTO home_floors AS f (owner_id, pub_date, message_id)
        VALUES (owner, kept_date, kept_id)
        ON CONFLICT (owner_id) DO UPDATE
            SET pub_date = excluded.pub_date, message_id = excluded.message_id
            WHERE (f.pub_date, f.message_id) < (excluded.pub_date, excluded.message_id);
    END LOOP;
END $$;

-- Puts each author's newest `bound` messages into the matching owner's home timeline
-- (owners[i] gets authors[i]'s), raising the owner's floor above the messages left out.
CREATE FUNCTION home_backfill(owners BIGINT[], authors BIGINT[], bound INTEGER)
RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO home_entries (owner_id, pub_date, message_id, author_id)
    SELECT p.owner_id, m.pub_date, m.id, p.author_id
    FROM unnest(owners, authors) AS p (owner_id, author_id)
    CROSS JOIN LATERAL (
        SELECT id, pub_date FROM messages
        WHERE author_id = p.author_id
        ORDER BY pub_date DESC, id DESC LIMIT bound) m
    ON CONFLICT DO NOTHING;
    INSERT INTO home_floors AS f (owner_id, pub_date, message_id)
    SELECT DISTINCT ON (p.owner_id) p.owner_id, k.pub_date, k.id
    FROM unnest(owners, authors) AS p (owner_id, author_id)
    CROSS JOIN LATERAL (
        SELECT id, pub_date FROM messages
        WHERE author_id = p.author_id
        ORDER BY pub_date DESC, id DESC OFFSET bound - 1 LIMIT 1) k
    WHERE EXISTS (
        SELECT 1 FROM messages m
        WHERE m.author_id = p.author_id AND (m.pub_date, m.id) < (k.pub_date, k.id))
    ORDER BY p.owner_id, k.pub_date DESC, k.id DESC
    ON CONFLICT (owner_id) DO UPDATE
        SET pub_date = excluded.pub_date, message_id = excluded.message_id
        WHERE (f.pub_date, f.message_id) < (excluded.pub_date, excluded.message_id);
    PERFORM home_trim(owners, bound);
END $$;

-- A post: authors with more than `fanout_limit` active followers turn loud; the post
-- goes into its author's home timeline, and into each active follower's unless the
-- author is loud.
CREATE FUNCTION home_fan_out() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    settings home_settings;
    authors BIGINT[];
    trimmed BIGINT[];
BEGIN
    authors := ARRAY(SELECT author_id FROM new_rows);
    PERFORM home_lock_shared(authors);
    -- A statement after the lock sees every follow committed before it (READ COMMITTED).
    -- Most authors have no follower whose home timeline is kept, and are not kept
    -- themselves: nothing to do.
    IF NOT EXISTS (SELECT 1 FROM home_active_follows WHERE followee_id = ANY (authors))
       AND NOT EXISTS (SELECT 1 FROM home_active WHERE owner_id = ANY (authors)) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO settings FROM home_settings;
    WITH turned AS (
        INSERT INTO home_loud (user_id)
        SELECT d.author_id FROM (SELECT DISTINCT author_id FROM new_rows) d
        WHERE NOT EXISTS (SELECT 1 FROM home_loud l WHERE l.user_id = d.author_id)
          AND (SELECT count(*) FROM (
                   SELECT 1 FROM home_active_follows af WHERE af.followee_id = d.author_id
                   LIMIT settings.fanout_limit::BIGINT + 1) c) > settings.fanout_limit
        ON CONFLICT DO NOTHING
        RETURNING user_id
    )
    INSERT INTO home_loud_follows (follower_id, followee_id)
    SELECT af.follower_id, af.followee_id
    FROM home_active_follows af JOIN turned t ON af.followee_id = t.user_id
    ON CONFLICT DO NOTHING;
    WITH added AS (
        INSERT INTO home_entries (owner_id, pub_date, message_id, author_id)
        SELECT r.owner_id, n.pub_date, n.id, n.author_id
        FROM new_rows n
        CROSS JOIN LATERAL (
            SELECT a.owner_id FROM home_active a WHERE a.owner_id = n.author_id
            UNION
            SELECT af.follower_id FROM home_active_follows af
            WHERE af.followee_id = n.author_id
              AND NOT EXISTS (SELECT 1 FROM home_loud l WHERE l.user_id = n.author_id)
        ) r
        RETURNING owner_id, message_id
    )
    SELECT array_agg(owner_id) INTO trimmed FROM added
    WHERE (hashint8(message_id) # hashint8(owner_id)) & 511 = 0;
    IF trimmed IS NOT NULL THEN
        PERFORM home_trim(trimmed, settings.bound);
    END IF;
    RETURN NULL;
END $$;

-- New follows (followers[i] follows followees[i]) by active readers: listed as theirs;
-- a loud followee is merged on read, the others' newest `bound` messages go in.
CREATE FUNCTION home_add_follows(followers BIGINT[], followees BIGINT[])
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    settings home_settings;
    quiet_followers BIGINT[];
    quiet_followees BIGINT[];
BEGIN
    PERFORM home_lock(followees || followers);
    IF NOT EXISTS (SELECT 1 FROM home_active WHERE owner_id = ANY (followers)) THEN
        RETURN;
    END IF;
    SELECT * INTO settings FROM home_settings;
    WITH active AS (
        INSERT INTO home_active_follows (followee_id, follower_id)
        SELECT p.followee_id, p.follower_id
        FROM unnest(followers, followees) AS p (follower_id, followee_id)
        WHERE EXISTS (SELECT 1 FROM home_active a WHERE a.owner_id = p.follower_id)
        ON CONFLICT DO NOTHING
        RETURNING followee_id, follower_id
    ), loud AS (
        INSERT INTO home_loud_follows (follower_id, followee_id)
        SELECT follower_id, followee_id FROM active
        WHERE EXISTS (SELECT 1 FROM home_loud l WHERE l.user_id = active.followee_id)
        ON CONFLICT DO NOTHING
    )
    SELECT array_agg(follower_id), array_agg(followee_id)
    INTO quiet_followers, quiet_followees
    FROM active
    WHERE NOT EXISTS (SELECT 1 FROM home_loud l WHERE l.user_id = active.followee_id);
    IF quiet_followers IS NOT NULL THEN
        PERFORM home_backfill(quiet_followers, quiet_followees, settings.bound);
    END IF;
END $$;

CREATE FUNCTION home_follow() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    followers BIGINT[];
    followees BIGINT[];
BEGIN
    SELECT array_agg(follower_id), array_agg(followee_id) INTO followers, followees
    FROM new_rows;
    IF followers IS NOT NULL THEN
        PERFORM home_add_follows(followers, followees);
    END IF;
    RETURN NULL;
END $$;

-- Ended follows (unfollows, and those of deleted users): the followee's entries leave
-- the follower's home timeline (a user's own stay, whether they followed themselves
-- or not). The lists of active and loud follows lose theirs with the follow.
CREATE FUNCTION home_unfollow() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    followers BIGINT[];
BEGIN
    followers := ARRAY(SELECT follower_id FROM old_rows);
    PERFORM home_lock(ARRAY(SELECT followee_id FROM old_rows) || followers);
    IF NOT EXISTS (SELECT 1 FROM home_active WHERE owner_id = ANY (followers)) THEN
        RETURN NULL;
    END IF;
    DELETE FROM home_entries h USING old_rows o
    WHERE h.owner_id = o.follower_id AND h.author_id = o.followee_id
      AND o.follower_id <> o.followee_id;
    RETURN NULL;
END $$;

-- Deleted users: their home timelines go.
CREATE FUNCTION home_owner_deleted() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM home_entries h USING old_rows o WHERE h.owner_id = o.id;
    RETURN NULL;
END $$;

CREATE TRIGGER home_fanned_out AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION home_fan_out();
CREATE TRIGGER home_followed AFTER INSERT ON follows
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION home_follow();
CREATE TRIGGER home_unfollowed AFTER DELETE ON follows
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION home_unfollow();
CREATE TRIGGER home_owner_deleted AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION home_owner_deleted();

-- Starts keeping `owner`'s home timeline, if it is not kept yet: their follows are
-- listed as an active reader's, and their own newest messages and those of each
-- followee who is not loud go in, under the locks of them all, so that a post
-- committing meanwhile is either seen here or fans out to `owner`.
CREATE FUNCTION home_activate(owner BIGINT) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    authors BIGINT[];
BEGIN
    INSERT INTO home_active (owner_id) VALUES (owner) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    authors := ARRAY(
        SELECT owner UNION SELECT f.followee_id FROM follows f WHERE f.follower_id = owner);
    PERFORM home_lock(authors);
    -- Follows and unfollows of `owner` lock `owner` too, so none is under way now; one
    -- that committed before the locks is seen by this new look.
    authors := ARRAY(
        SELECT owner UNION SELECT f.followee_id FROM follows f WHERE f.follower_id = owner);
    PERFORM home_lock(authors);
    PERFORM home_add_follows(array_agg(f.follower_id), array_agg(f.followee_id))
    FROM follows f WHERE f.follower_id = owner AND f.followee_id <> owner
    HAVING count(*) > 0;
    PERFORM home_backfill(ARRAY[owner], ARRAY[owner], bound) FROM home_settings;
END $$;

-- Builds the kept timelines from the messages and follows alone: every active reader's
-- as on activation, then the authors with more than `fanout_limit` active followers
-- turned loud. For repairs.
CREATE FUNCTION home_rebuild() RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    active BIGINT[];
BEGIN
    DELETE FROM home_loud_follows;
    DELETE FROM home_loud;
    DELETE FROM home_floors;
    DELETE FROM home_entries;
    DELETE FROM home_active_follows;
    active := ARRAY(SELECT owner_id FROM home_active);
    DELETE FROM home_active;
    PERFORM home_activate(owner) FROM unnest(active) AS owner;
    WITH turned AS (
        INSERT INTO home_loud (user_id)
        SELECT followee_id FROM home_active_follows GROUP BY followee_id
        HAVING count(*) > (SELECT fanout_limit FROM home_settings)
        RETURNING user_id
    )
    INSERT INTO home_loud_follows (follower_id, followee_id)
    SELECT af.follower_id, af.followee_id
    FROM home_active_follows af JOIN turned t ON af.followee_id = t.user_id;
END $$;
