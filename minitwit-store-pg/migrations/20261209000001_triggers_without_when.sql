-- The server's posts, follows and unfollows without trigger WHEN clauses, and without
-- the bulk writes' statement triggers. Each such write evaluated two WHEN clauses (its
-- row trigger's, minitwit.bulk off, and the bulk statement trigger's, on), and
-- PostgreSQL reads a trigger's WHEN clause back from its stored text for every
-- statement, before evaluating it. PostgreSQL's instructions per post 535k -> 481k,
-- per follow or unfollow 496k -> 441k (scripts/pg-write-cost, BENCHMARKS.md). Same
-- totals, timelines and locks:
--
-- - The row triggers check minitwit.bulk themselves, first thing.
-- - Bulk writes (imports and their undo) call home_spread, home_add_follows and
--   home_remove_follows with the rows they wrote (the store's import.rs), as the
--   statement triggers did. An undo ends its users' follows itself before deleting
--   them: the follows the deletion would end go through no trigger of the timelines in
--   bulk.
-- - The price, paid by imports: in bulk each row now calls its row trigger, which
--   returns at once, where the WHEN clause skipped it: 6.9k instructions per imported
--   message, about 6 % of what storing it costs (BENCHMARKS.md).
-- - The totals' statement triggers are unchanged (counting in the row triggers cut a
--   one-row post further, to 435k, but cost a post stored in a batch of 16 a quarter
--   more).
--
-- Replicas of the previous release, running beside this one during a rolling deploy,
-- write through the same row triggers as before; only imports changed, and an import
-- is run by this release's `minitwit import`.

DROP TRIGGER home_fanned_out_in_bulk ON messages;
DROP TRIGGER home_followed_in_bulk ON follows;
DROP TRIGGER home_unfollowed_in_bulk ON follows;
DROP TRIGGER home_posted ON messages;
DROP TRIGGER home_followed ON follows;
DROP TRIGGER home_unfollowed ON follows;
DROP TRIGGER home_deleting ON users;
DROP FUNCTION home_fan_out();
DROP FUNCTION home_follow();
DROP FUNCTION home_unfollow();

CREATE OR REPLACE FUNCTION home_posted() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    settings home_settings;
    loud BOOLEAN;
    trimmed BIGINT[];
BEGIN
    IF current_setting('minitwit.bulk', true) = 'on' THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(-1 - (NEW.author_id & 1023));
    -- A statement after the lock sees every follow committed before it (READ COMMITTED).
    IF NOT EXISTS (SELECT 1 FROM home_active_follows WHERE followee_id = NEW.author_id)
       AND NOT EXISTS (SELECT 1 FROM home_active WHERE owner_id = NEW.author_id) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO settings FROM home_settings;
    loud := EXISTS (SELECT 1 FROM home_loud WHERE user_id = NEW.author_id);
    IF NOT loud AND (SELECT count(*) FROM (
           SELECT 1 FROM home_active_follows WHERE followee_id = NEW.author_id
           LIMIT settings.fanout_limit::BIGINT + 1) c) > settings.fanout_limit THEN
        INSERT INTO home_loud (user_id) VALUES (NEW.author_id) ON CONFLICT DO NOTHING;
        INSERT INTO home_loud_follows (follower_id, followee_id)
        SELECT follower_id, followee_id FROM home_active_follows
        WHERE followee_id = NEW.author_id
        ON CONFLICT DO NOTHING;
        loud := TRUE;
    END IF;
    -- Into the author's own home timeline, if kept, and each active follower's unless
    -- the author is loud; one in 512 of these entries, at random, trims its timeline.
    WITH added AS (
        INSERT INTO home_entries (owner_id, pub_date, message_id, author_id)
        SELECT a.owner_id, NEW.pub_date, NEW.id, NEW.author_id
        FROM home_active a WHERE a.owner_id = NEW.author_id
        UNION
        SELECT af.follower_id, NEW.pub_date, NEW.id, NEW.author_id
        FROM home_active_follows af WHERE af.followee_id = NEW.author_id AND NOT loud
        RETURNING owner_id
    )
    SELECT array_agg(owner_id) INTO trimmed FROM added
    WHERE (hashint8(NEW.id) # hashint8(owner_id)) & 511 = 0;
    IF trimmed IS NOT NULL THEN
        PERFORM home_trim(trimmed, settings.bound);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION home_followed() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('minitwit.bulk', true) = 'on' THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(-1025 - (NEW.follower_id & 1023));
    IF EXISTS (SELECT 1 FROM home_active WHERE owner_id = NEW.follower_id) THEN
        PERFORM pg_advisory_xact_lock(-1 - (NEW.followee_id & 1023));
        PERFORM home_add_follows(ARRAY[NEW.follower_id], ARRAY[NEW.followee_id]);
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION home_unfollowed() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('minitwit.bulk', true) = 'on' THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(-1025 - (OLD.follower_id & 1023));
    IF EXISTS (SELECT 1 FROM home_active WHERE owner_id = OLD.follower_id) THEN
        PERFORM pg_advisory_xact_lock(-1 - (OLD.followee_id & 1023));
        PERFORM home_remove_follows(ARRAY[OLD.follower_id], ARRAY[OLD.followee_id]);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION home_deleting() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    touched BIGINT[];
BEGIN
    IF current_setting('minitwit.bulk', true) = 'on' THEN
        RETURN OLD;
    END IF;
    touched := ARRAY(
        SELECT OLD.id
        UNION SELECT followee_id FROM follows WHERE follower_id = OLD.id
        UNION SELECT follower_id FROM follows WHERE followee_id = OLD.id);
    PERFORM home_lock_slots(touched, -1025);
    PERFORM home_lock_slots(touched, -1);
    RETURN OLD;
END $$;

CREATE TRIGGER home_posted AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION home_posted();
CREATE TRIGGER home_followed AFTER INSERT ON follows
    FOR EACH ROW EXECUTE FUNCTION home_followed();
CREATE TRIGGER home_unfollowed AFTER DELETE ON follows
    FOR EACH ROW EXECUTE FUNCTION home_unfollowed();
CREATE TRIGGER home_deleting BEFORE DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION home_deleting();
