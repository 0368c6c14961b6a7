-- One function for both families of the kept home timelines' lock slots (migration
-- home_triggers_by_row has the order they are taken in): the authors' slots, from -1
-- down (home_lock), and the readers', from -1025 down (home_lock_readers), were taken by
-- two copies of one function that differed only in the first slot. Their check of
-- minitwit.bulk goes too: bulk writes take no locks and never reach them (the trigger
-- of home_deleting does not fire in bulk, and an activation is a read's). The same
-- locks are taken in the same order as before.

-- Takes, exclusive, the slot of each of these users in the family whose first slot is
-- `first_slot` (one of 1024 per family), in slot order, so that no statement holds more
-- than 1024 and two statements never wait on each other in a circle.
CREATE FUNCTION home_lock_slots(ids BIGINT[], first_slot BIGINT)
RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(slot)
    FROM (SELECT DISTINCT first_slot - (id & 1023) AS slot FROM unnest(ids) AS id ORDER BY 1) s;
END $$;

CREATE OR REPLACE FUNCTION home_activate(owner BIGINT) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    PERFORM home_lock_slots(ARRAY[owner], -1025);
    INSERT INTO home_active (owner_id) VALUES (owner) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM home_lock_slots(ARRAY(
        SELECT owner UNION SELECT f.followee_id FROM follows f WHERE f.follower_id = owner), -1);
    PERFORM home_add_follows(array_agg(f.follower_id), array_agg(f.followee_id))
    FROM follows f WHERE f.follower_id = owner AND f.followee_id <> owner
    HAVING count(*) > 0;
    PERFORM home_backfill(ARRAY[owner], ARRAY[owner], bound) FROM home_settings;
END $$;

CREATE OR REPLACE FUNCTION home_deleting() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    touched BIGINT[] := ARRAY(
        SELECT OLD.id
        UNION SELECT followee_id FROM follows WHERE follower_id = OLD.id
        UNION SELECT follower_id FROM follows WHERE followee_id = OLD.id);
BEGIN
    PERFORM home_lock_slots(touched, -1025);
    PERFORM home_lock_slots(touched, -1);
    RETURN OLD;
END $$;

DROP FUNCTION home_lock(BIGINT[]);
DROP FUNCTION home_lock_readers(BIGINT[]);
