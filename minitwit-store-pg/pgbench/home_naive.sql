-- The home timeline's first page, the obvious way: walks the date index past every
-- message of people the user does not follow. Run with `-D user=1` or `-D user=2`.
SELECT m.id, m.author_id, u.username AS author, u.email, m.text, m.pub_date
FROM messages m JOIN users u ON u.id = m.author_id
WHERE NOT m.flagged
  AND (m.author_id = :user
       OR m.author_id IN (SELECT followee_id FROM follows WHERE follower_id = :user))
ORDER BY m.pub_date DESC, m.id DESC
LIMIT 30;
