-- The insert of one post by user `:author` (PgStore's adds a notification): run with `-D author=1`
-- (into one kept home timeline) or `-D author=3` (into none).
INSERT INTO messages (author_id, text, pub_date)
VALUES (:author, 'A post of the benchmark, about forty bytes.', extract(epoch FROM clock_timestamp())::BIGINT);
