-- Kept home timelines (migration home_timelines), cheaper for writes that keep nothing:
-- the replayed simulator, whose authors and followers never open a home page, paid 11 %
-- more time for the checks that found nothing to do. Three changes, same rules:
--
-- - Row triggers for the server's writes, statement triggers for bulk ones. A post,
--   follow or unfollow by the server is one row; a row trigger takes its lock and
--   checks whether anything is kept in two simple statements, without building arrays
--   or calling a locking function. Bulk writes (minitwit.bulk = on: imports and their
--   undo) keep the set-wise statement triggers, which take no locks.
-- - Fewer waits. A second family of lock slots, the readers', orders a reader's
--   follows and unfollows (shared) against their activation (exclusive); the authors'
--   slots (home_lock) now order only posts (shared) against follows and unfollows by
--   active readers and activations (exclusive). So a follow or unfollow by a reader
--   who is not active takes one shared lock and waits for nobody, and a user's posts,
--   follows and unfollows run side by side. Every statement takes readers' slots before
--   authors', each family in slot order, so no two wait on each other in a circle; a
--   user's deletion, whose follows end in one statement, first takes all the slots its
--   rows will need, exclusive, in that order.
-- - No foreign keys from the follow lists to follows: every unfollow paid two cascade
--   lookups for lists that are empty unless its follower is active. The unfollow
--   triggers and a user's deletion remove list rows themselves.

ALTER TABLE home_active_follows DROP CONSTRAINT home_active_follows_follow_fkey;
ALTER TABLE home_loud_follows DROP CONSTRAINT home_loud_follows_follow_fkey;

DROP TRIGGER home_fanned_out ON messages;
DROP TRIGGER home_followed ON follows;
DROP TRIGGER home_unfollowed ON follows;
DROP TRIGGER home_owner_deleted ON users;

-- Locks are taken by callers now: the row triggers and home_activate.
CREATE OR REPLACE FUNCTION home_add_follows(followers BIGINT[], followees BIGINT[])
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    settings home_settings;
    quiet_followers BIGINT[];
    quiet_followees BIGINT[];
BEGIN
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

-- Ended follows (followers[i] no longer follows followees[i]): the followee's entries
-- leave the follower's home timeline (a user's own stay), and the follow leaves the
-- lists of active and loud follows.
CREATE FUNCTION home_remove_follows(followers BIGINT[], followees BIGINT[])
RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM home_entries h USING unnest(followers, followees) AS p (follower_id, followee_id)
    WHERE h.owner_id = p.follower_id AND h.author_id = p.followee_id
      AND p.follower_id <> p.followee_id;
    DELETE FROM home_active_follows af USING unnest(followers, followees) AS p (follower_id, followee_id)
    WHERE (af.follower_id, af.followee_id) = (p.follower_id, p.followee_id);
    DELETE FROM home_loud_follows lf USING unnest(followers, followees) AS p (follower_id, followee_id)
    WHERE (lf.follower_id, lf.followee_id) = (p.follower_id, p.followee_id);
END $$;

-- New messages (ids[i] by authors[i] at dates[i]): authors with more than
-- `fanout_limit` active followers turn loud; each message goes into its author's home
-- timeline, and into each active follower's unless the author is loud.
CREATE FUNCTION home_spread(ids BIGINT[], authors BIGINT[], dates BIGINT[])
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    settings home_settings;
    trimmed BIGINT[];
BEGIN
    SELECT * INTO settings FROM home_settings;
    WITH turned AS (
        INSERT INTO home_loud (user_id)
        SELECT d.author_id FROM (SELECT DISTINCT unnest(authors) AS author_id) d
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
        FROM unnest(ids, authors, dates) AS n (id, author_id, pub_date)
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
END $$;

-- The readers' lock slots: exclusive, in slot order (see home_lock for the authors').
CREATE FUNCTION home_lock_readers(ids BIGINT[]) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('minitwit.bulk', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_advisory_xact_lock(slot)
        FROM (SELECT DISTINCT -1025 - (id & 1023) AS slot FROM unnest(ids) AS id ORDER BY 1) s;
    END IF;
END $$;

-- Starts keeping `owner`'s home timeline, if it is not kept yet (as before, with the
-- reader's own slot taken first: their follows cannot change meanwhile).
CREATE OR REPLACE FUNCTION home_activate(owner BIGINT) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    PERFORM home_lock_readers(ARRAY[owner]);
    INSERT INTO home_active (owner_id) VALUES (owner) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM home_lock(ARRAY(
        SELECT owner UNION SELECT f.followee_id FROM follows f WHERE f.follower_id = owner));
    PERFORM home_add_follows(array_agg(f.follower_id), array_agg(f.followee_id))
    FROM follows f WHERE f.follower_id = owner AND f.followee_id <> owner
    HAVING count(*) > 0;
    PERFORM home_backfill(ARRAY[owner], ARRAY[owner], bound) FROM home_settings;
END $$;

-- The server's writes, one row each.
CREATE FUNCTION home_posted() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(-1 - (NEW.author_id & 1023));
    -- A statement after the lock sees every follow committed before it (READ COMMITTED).
    IF EXISTS (SELECT 1 FROM home_active_follows WHERE followee_id = NEW.author_id)
       OR EXISTS (SELECT 1 FROM home_active WHERE owner_id = NEW.author_id) THEN
        PERFORM home_spread(ARRAY[NEW.id], ARRAY[NEW.author_id], ARRAY[NEW.pub_date]);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION home_followed() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(-1025 - (NEW.follower_id & 1023));
    IF EXISTS (SELECT 1 FROM home_active WHERE owner_id = NEW.follower_id) THEN
        PERFORM pg_advisory_xact_lock(-1 - (NEW.followee_id & 1023));
        PERFORM home_add_follows(ARRAY[NEW.follower_id], ARRAY[NEW.followee_id]);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION home_unfollowed() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(-1025 - (OLD.follower_id & 1023));
    IF EXISTS (SELECT 1 FROM home_active WHERE owner_id = OLD.follower_id) THEN
        PERFORM pg_advisory_xact_lock(-1 - (OLD.followee_id & 1023));
        PERFORM home_remove_follows(ARRAY[OLD.follower_id], ARRAY[OLD.followee_id]);
    END IF;
    RETURN NULL;
END $$;

-- Before a user's deletion ends their follows: the slots of the user and of everyone
-- they follow or are followed by, readers' then authors', exclusive, in slot order.
CREATE FUNCTION home_deleting() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    touched BIGINT[] := ARRAY(
        SELECT OLD.id
        UNION SELECT followee_id FROM follows WHERE follower_id = OLD.id
        UNION SELECT follower_id FROM follows WHERE followee_id = OLD.id);
BEGIN
    PERFORM home_lock_readers(touched);
    PERFORM home_lock(touched);
    RETURN OLD;
END $$;

-- Bulk writes, set-wise and without locks (an import runs alone).
CREATE OR REPLACE FUNCTION home_fan_out() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM home_spread(array_agg(id), array_agg(author_id), array_agg(pub_date))
    FROM new_rows HAVING count(*) > 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION home_follow() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM home_add_follows(array_agg(follower_id), array_agg(followee_id))
    FROM new_rows HAVING count(*) > 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION home_unfollow() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM home_remove_follows(array_agg(follower_id), array_agg(followee_id))
    FROM old_rows HAVING count(*) > 0;
    RETURN NULL;
END $$;

-- Deleted users: their home timelines go, and the follow lists' rows of the follows
-- their deletion ended.
CREATE OR REPLACE FUNCTION home_owner_deleted() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM home_entries h USING old_rows o WHERE h.owner_id = o.id;
    DELETE FROM home_active_follows af USING old_rows o
    WHERE af.follower_id = o.id OR af.followee_id = o.id;
    DELETE FROM home_loud_follows lf USING old_rows o
    WHERE lf.follower_id = o.id OR lf.followee_id = o.id;
    RETURN NULL;
END $$;

DROP FUNCTION home_lock_shared(BIGINT[]);

CREATE TRIGGER home_posted AFTER INSERT ON messages FOR EACH ROW
    WHEN (current_setting('minitwit.bulk', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION home_posted();
CREATE TRIGGER home_followed AFTER INSERT ON follows FOR EACH ROW
    WHEN (current_setting('minitwit.bulk', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION home_followed();
CREATE TRIGGER home_unfollowed AFTER DELETE ON follows FOR EACH ROW
    WHEN (current_setting('minitwit.bulk', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION home_unfollowed();
CREATE TRIGGER home_deleting BEFORE DELETE ON users FOR EACH ROW
    WHEN (current_setting('minitwit.bulk', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION home_deleting();

CREATE TRIGGER home_fanned_out_in_bulk AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    WHEN (current_setting('minitwit.bulk', true) = 'on')
    EXECUTE FUNCTION home_fan_out();
CREATE TRIGGER home_followed_in_bulk AFTER INSERT ON follows
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    WHEN (current_setting('minitwit.bulk', true) = 'on')
    EXECUTE FUNCTION home_follow();
CREATE TRIGGER home_unfollowed_in_bulk AFTER DELETE ON follows
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    WHEN (current_setting('minitwit.bulk', true) = 'on')
    EXECUTE FUNCTION home_unfollow();
CREATE TRIGGER home_owner_deleted AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION home_owner_deleted();
