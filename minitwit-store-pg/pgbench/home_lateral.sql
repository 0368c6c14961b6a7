-- The home timeline's first page by per-followee reads only (the fallback half of
-- home_pgstore.sql): each author's newest 30 keys from the per-author index, the best
-- 30 of those, then the rows. Run with `-D user=N`.
WITH authors AS (
    SELECT :user::BIGINT AS id
    UNION
    SELECT followee_id FROM follows WHERE follower_id = :user
), newest AS (
    SELECT k.pub_date, k.id
    FROM authors a
    CROSS JOIN LATERAL (
        SELECT m.pub_date, m.id FROM messages m
        WHERE m.author_id = a.id AND NOT m.flagged
          AND (m.pub_date, m.id) < (9223372036854775807, 9223372036854775807)
        ORDER BY m.pub_date DESC, m.id DESC
        LIMIT 30
    ) k
    ORDER BY k.pub_date DESC, k.id DESC
    LIMIT 30
)
SELECT m.id, m.author_id, u.username AS author, u.email, m.text, m.pub_date
FROM newest n
JOIN messages m ON m.id = n.id
JOIN users u ON u.id = m.author_id
ORDER BY n.pub_date DESC, n.id DESC;
