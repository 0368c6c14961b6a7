//! MiniTwit's PostgreSQL store. (Being built: issue 3.)
