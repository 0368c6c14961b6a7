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

DROP TABLE latest;
