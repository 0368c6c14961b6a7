//! [`PgOptions`]: the connection pool's size and timeouts; [`ReplicaOptions`]: how read
//! replicas are judged. Both from configuration.

use std::time::Duration;

/// How a [`crate::PgStore`] sizes its connection pool and how long it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// The most connections the pool opens. Each replica holds up to this many, so
    /// replicas × this must stay below the server's `max_connections`.
    pub max_connections: u32,
    /// Connections kept open while idle.
    pub min_connections: u32,
    /// How long an operation waits for a connection before failing with
    /// [`minitwit_core::store::StoreError::Unavailable`]. Short, so an outage answers 503
    /// quickly instead of piling up requests.
    pub acquire_timeout: Duration,
    /// The server-side limit on one statement (`statement_timeout`); `None` for none.
    pub statement_timeout: Option<Duration>,
    /// The newest entries kept in each reader's home timeline (at least 1); older home
    /// pages merge the followees' messages on read. Stored in the database on connecting.
    pub home_bound: u32,
    /// Authors who have had more followers than this among readers whose home timelines
    /// are kept, when posting, are loud: their posts are not written into their
    /// followers' home timelines but merged into home pages on read. Stored in the
    /// database on connecting.
    pub fanout_limit: u32,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(2),
            statement_timeout: Some(Duration::from_secs(30)),
            home_bound: 800,
            fanout_limit: 2000,
        }
    }
}

/// How a [`crate::RoutedStore`] judges its read replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaOptions {
    /// A replica further behind the primary than this serves no reads until it has
    /// caught up again (a reader who wrote is served only by a replica that has replayed
    /// that write, whatever this bound).
    pub max_lag: Duration,
    /// How often each replica's replay position and health are checked; a replica
    /// found down is tried again at the next check.
    pub check_interval: Duration,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        Self { max_lag: Duration::from_secs(5), check_interval: Duration::from_millis(200) }
    }
}
