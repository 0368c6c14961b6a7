-- A synthetic data set for the pgbench scripts beside this file, on a database the
-- crate's migrations were applied to: 10,000 users, 1,000,000 messages by random
-- authors (one in 100 flagged), user 1 following 50 people and user 2 following 500.
INSERT INTO users (username, email, pw_hash)
    SELECT 'user' || i, 'user' || i || '@example.com', 'x' FROM generate_series(1, 10000) i;
INSERT INTO messages (author_id, text, pub_date, flagged)
    SELECT 1 + (hashint4(i) & 2147483647) % 10000,
           'message number ' || i || ' with some text to make it look like a tweet',
           1600000000 + i * 3, i % 100 = 0
    FROM generate_series(1, 1000000) i;
INSERT INTO follows SELECT 1, f FROM generate_series(2, 51) f;
INSERT INTO follows SELECT 2, f FROM generate_series(3, 502) f;
VACUUM ANALYZE;
