-- The simulator's `latest`, recorded by the statement of the action that carries it,
-- in the action's own transaction (the store's latest.rs): a second commit per action
-- cost a fifth of a replay. One row for every writer would make concurrent actions
-- wait on its lock until each commit is durable, so writers update one of 16 slots
-- picked by their backend process, as count_slots does.
--
-- A slot holds the last value a process wrote there: `process` names the writing
-- process (a random number it draws), `asked` numbers its values in the order they
-- were asked for, and `written` orders writes as they reached the database. The stored
-- `latest` is that of the process that wrote last: its value asked for last.
CREATE SEQUENCE latest_order;

CREATE TABLE latest_slots (
    slot    SMALLINT PRIMARY KEY,
    process BIGINT NOT NULL DEFAULT 0,
    asked   BIGINT NOT NULL DEFAULT 0,
    value   BIGINT,
    written BIGINT NOT NULL DEFAULT 0
);
INSERT INTO latest_slots (slot) SELECT generate_series(0, 15);

UPDATE latest_slots SET value = latest.value, written = nextval('latest_order')
FROM latest WHERE slot = 0;

-- Expand, then contract (OPERATIONS.md): replicas of the previous release, running
-- beside this one during a rolling deploy, still write the one-row table `latest`.
-- Their writes are mirrored into the slots as process 0's, numbered in the order
-- they reach the database, so readers of this release see them. A later release
-- drops the table and this trigger, once no replica writes it.
CREATE FUNCTION latest_mirrored() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    UPDATE latest_slots
    SET process = 0, asked = nextval('latest_order'), value = NEW.value,
        written = currval('latest_order')
    WHERE slot = pg_backend_pid() % 16;
    RETURN NULL;
END $$;
CREATE TRIGGER latest_mirrored AFTER INSERT OR UPDATE ON latest
    FOR EACH ROW EXECUTE FUNCTION latest_mirrored();
