-- The 1M data set of the criterion benchmark (src/workload.rs, Shape::LARGE), in SQL,
-- for the pgbench scripts beside this file, on a database the crate's migrations were
-- applied to: 10,000 users each following 20; message m by user (m - 1) % 10000 + 1 at
-- 1600000000 + m / 3, one in 100 flagged; users 10001 and 10002 follow 50 and 500.
-- Added here: user 10003 follows 50 quiet users (10004-10053) who posted 2,000 messages
-- long before everyone else, the case the obvious query handles worst.
INSERT INTO users (id, username, email, pw_hash)
    SELECT i, 'user' || i, 'user' || i || '@example.com', 'x' FROM generate_series(1, 10053) i;
INSERT INTO follows SELECT i, (i + j * 500) % 10000 + 1
    FROM generate_series(1, 10000) i, generate_series(0, 19) j;
INSERT INTO follows SELECT 10001, 1 + j * 200 FROM generate_series(0, 49) j;
INSERT INTO follows SELECT 10002, 1 + j * 20 FROM generate_series(0, 499) j;
INSERT INTO follows SELECT 10003, f FROM generate_series(10004, 10053) f;
INSERT INTO messages (id, author_id, text, pub_date, flagged)
    SELECT m, (m - 1) % 10000 + 1,
           'Message number ' || m || ' of the benchmark data set, about sixty bytes.',
           1600000000 + m / 3, m % 100 = 0
    FROM generate_series(1, 1000000) m;
INSERT INTO messages (id, author_id, text, pub_date)
    SELECT 1000000 + i, 10004 + i % 50, 'old message ' || i, 1500000000 + i
    FROM generate_series(1, 2000) i;
SELECT setval(pg_get_serial_sequence('users', 'id'), 10053);
SELECT setval(pg_get_serial_sequence('messages', 'id'), 1002000);
VACUUM ANALYZE;
