-- The public timeline's first page as PgStore reads it, for comparison.
SELECT m.id, m.author_id, u.username AS author, u.email, m.text, m.pub_date
FROM messages m JOIN users u ON u.id = m.author_id
WHERE NOT m.flagged AND (m.pub_date, m.id) < (9223372036854775807, 9223372036854775807)
ORDER BY m.pub_date DESC, m.id DESC
LIMIT 30;
