-- A synthetic data set for the pgbench scripts beside this file, on a database the
-- crate's migrations were applied to: 10,000 users; 1,000,000 messages by random
-- authors, one every 3 seconds, one in 100 flagged; user 1 follows 50 people and user 2
-- follows 500. User 10001 follows 50 quiet users (10002-10051) who posted 2,000
-- messages long before everyone else: the case that the obvious query handles worst.
INSERT INTO users (username, email, pw_hash)
    SELECT 'user' || i, 'user' || i || '@example.com', 'x' FROM generate_series(1, 10000) i;
INSERT INTO messages (author_id, text, pub_date, flagged)
    SELECT 1 + (hashint4(i) & 2147483647) % 10000,
           'message number ' || i || ' with some text to make it look like a tweet',
           1600000000 + i * 3, i % 100 = 0
    FROM generate_series(1, 1000000) i;
INSERT INTO follows SELECT 1, f FROM generate_series(2, 51) f;
INSERT INTO follows SELECT 2, f FROM generate_series(3, 502) f;
INSERT INTO users (username, email, pw_hash)
    SELECT 'quiet' || i, 'quiet' || i || '@example.com', 'x' FROM generate_series(10001, 10051) i;
INSERT INTO messages (author_id, text, pub_date)
    SELECT 10002 + i % 50, 'old message ' || i, 1500000000 + i FROM generate_series(1, 2000) i;
INSERT INTO follows SELECT 10001, f FROM generate_series(10002, 10051) f;
VACUUM ANALYZE;
