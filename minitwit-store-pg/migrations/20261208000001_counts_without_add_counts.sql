-- The totals' statement triggers (migration schema) without add_counts: each counts its
-- transition table into variables and moves the backend's slot itself, where it called
-- a second plpgsql function to do so; users and follow pairs share one function. Same
-- slots, same totals, still skipped when the statement changed no row, and still at
-- the end of the statement, after every row trigger's locks. PostgreSQL's instructions
-- per post 567k -> 536k, per follow or unfollow 520k -> 497k (scripts/pg-write-cost,
-- BENCHMARKS.md).

CREATE OR REPLACE FUNCTION count_messages() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT;
    flagged_n BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*), count(*) FILTER (WHERE flagged) INTO n, flagged_n FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT -count(*), -count(*) FILTER (WHERE flagged) INTO n, flagged_n FROM old_rows;
    ELSE
        n := 0;
        SELECT (SELECT count(*) FROM new_rows WHERE flagged)
               - (SELECT count(*) FROM old_rows WHERE flagged) INTO flagged_n;
    END IF;
    IF n <> 0 OR flagged_n <> 0 THEN
        UPDATE count_slots SET messages = messages + n, flagged = flagged + flagged_n
        WHERE slot = pg_backend_pid() % 16;
    END IF;
    RETURN NULL;
END $$;

-- Users and follow pairs, by the table the trigger is on (the two triggers counted the
-- same way, each through a function of its own).
CREATE FUNCTION count_rows() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO n FROM new_rows;
    ELSE
        SELECT -count(*) INTO n FROM old_rows;
    END IF;
    IF n = 0 THEN
        RETURN NULL;
    ELSIF TG_TABLE_NAME = 'follows' THEN
        UPDATE count_slots SET follows = follows + n WHERE slot = pg_backend_pid() % 16;
    ELSE
        UPDATE count_slots SET users = users + n WHERE slot = pg_backend_pid() % 16;
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER users_counted_on_insert ON users;
DROP TRIGGER users_counted_on_delete ON users;
DROP TRIGGER follows_counted_on_insert ON follows;
DROP TRIGGER follows_counted_on_delete ON follows;
CREATE TRIGGER users_counted_on_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_rows();
CREATE TRIGGER users_counted_on_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_rows();
CREATE TRIGGER follows_counted_on_insert AFTER INSERT ON follows
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_rows();
CREATE TRIGGER follows_counted_on_delete AFTER DELETE ON follows
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_rows();

DROP FUNCTION count_users();
DROP FUNCTION count_follows();
DROP FUNCTION add_counts(BIGINT, BIGINT, BIGINT, BIGINT);
