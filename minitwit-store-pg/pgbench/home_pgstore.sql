-- The home timeline's first page exactly as PgStore reads it (HOME in src/timeline.rs,
-- with the first-page cursor, limit 30 and window 960 filled in): a bounded walk of the
-- date index, and per-followee reads only when that walk finds too few.
-- Run with `-D user=N`.
WITH window_end AS (
    SELECT w.pub_date, w.id FROM messages w
    WHERE NOT w.flagged AND (w.pub_date, w.id) < (9223372036854775807, 9223372036854775807)
    ORDER BY w.pub_date DESC, w.id DESC
    OFFSET 960 LIMIT 1
), recent AS (
    SELECT m.pub_date, m.id FROM messages m
    WHERE NOT m.flagged AND (m.pub_date, m.id) < (9223372036854775807, 9223372036854775807)
      AND (m.pub_date, m.id) >= (
          COALESCE((SELECT pub_date FROM window_end), -9223372036854775808),
          COALESCE((SELECT id FROM window_end), -9223372036854775808))
      AND (m.author_id = :user
           OR m.author_id IN (SELECT followee_id FROM follows WHERE follower_id = :user))
    ORDER BY m.pub_date DESC, m.id DESC
    LIMIT 30
), authors AS (
    SELECT :user::BIGINT AS id
    UNION
    SELECT followee_id FROM follows WHERE follower_id = :user
), per_author AS (
    SELECT k.pub_date, k.id
    FROM authors a
    CROSS JOIN LATERAL (
        SELECT m.pub_date, m.id FROM messages m
        WHERE m.author_id = a.id AND NOT m.flagged AND (m.pub_date, m.id) < (9223372036854775807, 9223372036854775807)
        ORDER BY m.pub_date DESC, m.id DESC
        LIMIT 30
    ) k
    WHERE (SELECT count(*) FROM recent) < 30
    ORDER BY k.pub_date DESC, k.id DESC
    LIMIT 30
), newest AS (
    SELECT pub_date, id FROM recent WHERE (SELECT count(*) FROM recent) >= 30
    UNION ALL
    SELECT pub_date, id FROM per_author
)
SELECT m.id, m.author_id, u.username AS author, u.email, m.text, m.pub_date
FROM newest n
CROSS JOIN LATERAL (SELECT * FROM messages WHERE id = n.id OFFSET 0) m
CROSS JOIN LATERAL (SELECT username, email FROM users WHERE id = m.author_id OFFSET 0) u
ORDER BY n.pub_date DESC, n.id DESC;
