-- The durable post of the load benchmark, reduced to its insert: on a database all the
-- crate's migrations were applied to, user 1 posts, and user 2 follows user 1 and
-- reads their home page, so each post goes into one kept home timeline, as the post
-- load's author's do (scripts/load-bench). User 3 posts to nobody.
INSERT INTO users (id, username, email, pw_hash)
    SELECT i, 'user' || i, 'user' || i || '@example.com', 'x' FROM generate_series(1, 3) i;
INSERT INTO follows VALUES (2, 1);
SELECT home_activate(2);
