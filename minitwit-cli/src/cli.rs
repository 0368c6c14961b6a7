//! The command line: every subcommand and flag, each flag also read from an environment
//! variable (`MINITWIT_…`) so containers are configured the usual way.

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use minitwit_cli::serve::Limits;
use minitwit_core::{MessageId, UserId};
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::PathBuf;

/// MiniTwit: a small Twitter. Serves the web site and the simulator API, administers
/// users and messages, and moves data between stores.
///
/// Stores are named by URL: `sled:PATH` (embedded, one process at a time) or
/// `postgres://USER:PASSWORD@HOST/DB` (several replicas).
#[derive(Debug, Parser)]
#[command(
    name = "minitwit",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_long_help = EXAMPLES
)]
pub struct Cli {
    /// Where the data lives: `sled:PATH` or `postgres://…` / `postgresql://…`.
    #[arg(
        long,
        env = "MINITWIT_STORE",
        default_value = "sled:./minitwit-data",
        global = true,
        hide_env_values = true
    )]
    pub store: String,

    /// How opening a store behaves (sled durability, PostgreSQL pool).
    #[command(flatten)]
    pub store_options: StoreOptions,

    /// Read replicas of a PostgreSQL `--store`.
    #[command(flatten)]
    pub replicas: ReplicaArgs,

    /// What is logged and how.
    #[command(flatten)]
    pub log: LogOptions,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Parses the command line and the environment. An environment variable set to the
/// empty string counts as unset (`MINITWIT_SESSION_KEY=` means no key, not an empty one),
/// as compose files and Kubernetes manifests often pass variables that way.
pub fn parse() -> Cli {
    let matches = without_empty_env(Cli::command()).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
}

/// `command` with every argument whose environment variable is empty made to ignore it.
fn without_empty_env(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let empty = arg.get_env().and_then(std::env::var_os).is_some_and(|v| v.is_empty());
            if empty { arg.env(None::<&'static str>) } else { arg }
        })
        .mut_subcommands(without_empty_env)
}

/// Shown at the end of `minitwit --help`.
const EXAMPLES: &str = "\
Examples:
  minitwit serve                          # site :5000, API :5001, data in ./minitwit-data
  MINITWIT_STORE=postgres://minitwit:PW@db/minitwit minitwit serve --web-addr 0.0.0.0:5000
  minitwit --store postgres://minitwit:PW@db/minitwit --replica-store postgres://minitwit:PW@db-replica/minitwit serve
  minitwit user create alice alice@example.com --password-stdin < password.txt
  minitwit message list --flagged --limit 20
  minitwit message flag 12 13             # all or nothing: an unknown id changes nothing
  minitwit export --out backup.jsonl.gz     # gzipped by its name; --out - for stdout
  minitwit verify backup.jsonl.gz         # checks a file without any store
  minitwit health http://127.0.0.1:5000   # exit 0 when ready (container health checks)
  minitwit --store sled:./restored import --in backup.jsonl
  minitwit copy --from sled:./minitwit-data --to postgres://minitwit:PW@db/minitwit
  minitwit replay --csv minitwit_scenario.csv --base-url http://127.0.0.1:5001
  minitwit --store sled:./bench-data generate --users 10000 --follows 50 --messages 1000000

Exit status: 0 on success, 1 on any failure (one line on stderr), 2 on bad usage.";

/// Options for opening stores.
#[derive(Debug, Clone, Copy, Args)]
pub struct StoreOptions {
    /// Most connections in the PostgreSQL pool (per process).
    #[arg(long, env = "MINITWIT_PG_MAX_CONNECTIONS", default_value_t = 10, global = true)]
    pub pg_max_connections: u32,

    /// How long a request waits for a PostgreSQL connection before the store reports
    /// itself unavailable (503), in milliseconds.
    #[arg(long, env = "MINITWIT_PG_ACQUIRE_TIMEOUT_MS", default_value_t = 2000, global = true)]
    pub pg_acquire_timeout_ms: u64,

    /// PostgreSQL's limit on one statement, in milliseconds (0: no limit).
    #[arg(long, env = "MINITWIT_PG_STATEMENT_TIMEOUT_MS", default_value_t = 30_000, global = true)]
    pub pg_statement_timeout_ms: u64,

    /// The newest entries kept in each reader's PostgreSQL home timeline (N, stored in
    /// the database: the last process to start sets it); older home pages merge on read.
    #[arg(long, env = "MINITWIT_PG_HOME_BOUND", default_value_t = minitwit_store_pg::PgOptions::default().home_bound, global = true)]
    pub pg_home_bound: u32,

    /// Authors who have had more followers than this (F) among those who read their home
    /// page are not fanned out into their followers' PostgreSQL home timelines: their
    /// posts are merged into home pages on read.
    #[arg(long, env = "MINITWIT_PG_FANOUT_LIMIT", default_value_t = minitwit_store_pg::PgOptions::default().fanout_limit, global = true)]
    pub pg_fanout_limit: u32,

    /// sled's page cache, in MiB (sled's own default would be 1 GiB).
    #[arg(long, env = "MINITWIT_SLED_CACHE_MB", default_value_t = minitwit_store_sled::SledOptions::default().cache_capacity_bytes / (1024 * 1024), global = true)]
    pub sled_cache_mb: u64,

    /// The newest entries kept in each reader's sled home timeline (N); older home pages
    /// merge the followees' messages on read.
    #[arg(long, env = "MINITWIT_SLED_HOME_BOUND", default_value_t = minitwit_store_sled::SledOptions::default().home_bound, global = true)]
    pub sled_home_bound: usize,

    /// Authors with more followers than this (F) are not fanned out into their
    /// followers' kept sled home timelines: their posts are merged into home pages on read.
    #[arg(long, env = "MINITWIT_SLED_FANOUT_LIMIT", default_value_t = minitwit_store_sled::SledOptions::default().fanout_limit, global = true)]
    pub sled_fanout_limit: usize,

    /// The most entries all kept sled home timelines hold together (56 bytes each, the
    /// messages' records shared); the least recently read timelines are dropped beyond it.
    #[arg(long, env = "MINITWIT_SLED_HOME_CACHE_ENTRIES", default_value_t = minitwit_store_sled::SledOptions::default().home_cache_entries, global = true)]
    pub sled_home_cache_entries: usize,

    /// When sled acknowledges writes: `durable` (on disk first) or `relaxed` (flushed
    /// within half a second; faster, for bulk loads).
    #[arg(long, env = "MINITWIT_SLED_DURABILITY", value_enum, default_value_t = SledDurability::Durable, global = true)]
    pub sled_durability: SledDurability,
}

/// Streaming read replicas of the PostgreSQL store. Without any, nothing changes.
#[derive(Debug, Clone, Args)]
pub struct ReplicaArgs {
    /// A streaming read replica of the PostgreSQL `--store` (repeatable; the environment
    /// variable takes a comma-separated list). Timeline, profile and follow-list reads go
    /// to a replica that has replayed the reader's own writes, all else to `--store`.
    #[arg(
        long = "replica-store",
        value_name = "URL",
        env = "MINITWIT_REPLICA_STORE",
        value_delimiter = ',',
        global = true,
        hide_env_values = true
    )]
    pub urls: Vec<String>,

    /// A replica further behind the primary than this, in milliseconds, serves no reads
    /// until it has caught up.
    #[arg(long, env = "MINITWIT_REPLICA_MAX_LAG_MS", default_value_t = 5000, global = true)]
    pub replica_max_lag_ms: u64,
}

/// Logging options (global).
#[derive(Debug, Clone, Copy, Args)]
pub struct LogOptions {
    /// Log format on stderr: `auto` is pretty on a terminal and JSON otherwise. The level
    /// comes from `RUST_LOG` (default `info` for `serve`, `warn` for other commands).
    #[arg(long, env = "MINITWIT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto, global = true)]
    pub log_format: LogFormat,

    /// The access log (one line per request): `on`, `off`, or a number N to write one
    /// request in N. Server errors are logged regardless.
    #[arg(long, env = "MINITWIT_ACCESS_LOG", default_value = "on", global = true)]
    pub access_log: AccessLog,

    /// Identical warnings and errors are written once per this many seconds; repeats are
    /// counted and reported in one summary line.
    #[arg(long, env = "MINITWIT_LOG_REPEAT_WINDOW_SECS", default_value_t = 10, global = true)]
    pub log_repeat_window_secs: u64,
}

/// Which requests the access log writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLog {
    /// Every request.
    On,
    /// None.
    Off,
    /// One request in N.
    Sample(NonZeroU64),
}

impl std::str::FromStr for AccessLog {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "on" => Ok(Self::On),
            "off" => Ok(Self::Off),
            n => n
                .parse()
                .map(Self::Sample)
                .map_err(|_| format!("{n:?} is not on, off or a number of requests (1 or more)")),
        }
    }
}

/// sled's durability modes, as flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SledDurability {
    /// A write is on disk before it is acknowledged.
    Durable,
    /// Writes are flushed on a timer: a crash may lose the last half second.
    Relaxed,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    Auto,
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for aggregation.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The commands on the store named by `--store`.
    #[command(flatten)]
    OnStore(StoreCommand),
    /// Copy one store into another (e.g. sled → PostgreSQL), then verify the copy.
    ///
    /// Stop the servers writing to the source first: a change during the copy fails the
    /// verification.
    Copy(CopyArgs),
    /// Check the consistency of the store named by `--store`, reading all of it.
    ///
    /// On sled: every record, index entry and counter. On PostgreSQL: the kept home
    /// timelines against the messages and follows. Run it on a quiet store: writes during
    /// the check can show as problems. Exits 1 when anything is wrong.
    Check(CheckArgs),
    /// Replay the simulator's scenario against a running API and report.
    ///
    /// The report gives errors by kind, throughput and latency percentiles. Exits 1 if
    /// any action failed (unless `--allow-errors`).
    Replay(ReplayArgs),
    /// Check an export file completely (format, order, trailer, fingerprint) without
    /// any store; prints its fingerprint. `.gz` files are decompressed, `-` is stdin.
    Verify(VerifyArgs),
    /// Ask a running server whether it is ready (`GET /ready`), for container health
    /// checks: exit 0 when it answers 200, 1 when it is down, not ready or shutting down.
    Health(HealthArgs),
}

/// The subcommands that work on the store named by `--store`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Serve the web site and the simulator API, with /metrics, /health and /ready.
    Serve(Box<ServeArgs>),
    /// Apply PostgreSQL migrations (or check the sled format) and exit; with `--check`,
    /// only tell whether any are pending (exit 1 when so).
    Migrate(MigrateArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// List, flag and unflag messages.
    #[command(subcommand)]
    Message(MessageCommand),
    /// Print totals: users, messages, follows, flagged messages, latest.
    Stats(JsonFlag),
    /// Write the whole store to a portable export file (JSON Lines).
    Export(ExportArgs),
    /// Load an export file into an empty store, then verify it.
    Import(ImportArgs),
    /// Fill an empty store with a synthetic data set of a chosen size (benchmarks, load
    /// tests, capacity planning).
    ///
    /// Users `user1…userN` (who cannot log in), each following `--follows` others;
    /// `--messages` messages spread evenly over them, every 100th flagged; and two users
    /// following 50 and 500 people. The same sizes always give the same data.
    Generate(GenerateArgs),
}

/// `generate` options.
#[derive(Debug, Clone, Copy, Args)]
pub struct GenerateArgs {
    /// Number of users.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(i64).range(2..=100_000_000))]
    pub users: i64,
    /// Followees of every user (at most users - 1).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(0..=100_000))]
    pub follows: i64,
    /// Number of messages.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(i64).range(0..=1_000_000_000))]
    pub messages: i64,
    /// Who follows whom: `even` (every user follows and is followed by `--follows`
    /// others) or `social` (followees drawn by popularity: power-law follower counts).
    #[arg(long, value_enum, default_value_t = GraphArg::Even)]
    pub graph: GraphArg,
}

/// `generate --graph`: the follow graph of a synthetic data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphArg {
    /// Everyone follows and is followed by the same number of others.
    Even,
    /// Followees drawn by a Zipf law: a few accounts followed by most, most by a few.
    Social,
}

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the web site.
    #[arg(long, env = "MINITWIT_WEB_ADDR", default_value = "127.0.0.1:5000")]
    pub web_addr: SocketAddr,

    /// Address of the simulator API.
    #[arg(long, env = "MINITWIT_API_ADDR", default_value = "127.0.0.1:5001")]
    pub api_addr: SocketAddr,

    /// Key signing session cookies (at least 32 bytes). Without one, a key is generated
    /// once and kept in the store, so replicas sharing a database share it.
    #[arg(long, env = "MINITWIT_SESSION_KEY", hide_env_values = true)]
    pub session_key: Option<Secret>,

    /// Served over HTTPS (behind a TLS-terminating proxy): session cookies are marked
    /// `Secure` and the web site sends `Strict-Transport-Security`.
    #[arg(long, env = "MINITWIT_SECURE_COOKIES")]
    pub secure_cookies: bool,

    /// Take client addresses (for login and sign-up throttling) from the last `X-Forwarded-For`
    /// entry: only behind a reverse proxy that appends it.
    #[arg(long, env = "MINITWIT_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,

    /// The simulator's credentials.
    #[command(flatten)]
    pub simulator: SimulatorCredentials,

    /// On SIGTERM, keep serving this many seconds while `/ready` answers 503, so load
    /// balancers and Kubernetes stop routing here before the listeners close (SIGINT or
    /// a second signal skips the wait).
    #[arg(long, env = "MINITWIT_DRAIN_DELAY_SECS", default_value_t = 5)]
    pub drain_delay_secs: u64,

    /// Seconds a keyed write's receipt answers its retries (the `Idempotency-Key`
    /// window, CONTRACT.md §4.5); expired receipts are swept every minute.
    #[arg(long, env = "MINITWIT_IDEMPOTENCY_WINDOW_SECS", default_value_t = 86_400)]
    pub idempotency_window_secs: u64,

    /// Seconds between refreshes of the business gauges (users, messages, …).
    #[arg(long, env = "MINITWIT_GAUGE_INTERVAL", default_value_t = 15)]
    pub gauge_interval: u64,

    /// What each listener allows a client (timeouts, connections).
    #[command(flatten)]
    pub limits: ListenerLimits,

    /// Live timelines' limits.
    #[command(flatten)]
    pub live: LiveArgs,

    /// Password hashes computed at once (0: one per CPU the process is given, read from
    /// its cgroup CPU quota, else the cores it may run on).
    #[arg(long, env = "MINITWIT_HASH_WORKERS", default_value_t = 0)]
    pub hash_workers: usize,

    /// Password hashes that may wait for a worker (0: 8 per worker); beyond, sign-ups and
    /// sign-ins get 503 with `Retry-After`.
    #[arg(long, env = "MINITWIT_HASH_QUEUE", default_value_t = 0)]
    pub hash_queue: usize,
}

/// Timeouts and caps of both listeners: a slow or abusive client costs a bounded amount.
#[derive(Debug, Clone, Copy, Args)]
pub struct ListenerLimits {
    /// Seconds a client has to send a request's header (also the longest a kept-alive
    /// connection waits for its next request).
    #[arg(
        long,
        env = "MINITWIT_HEADER_TIMEOUT_SECS",
        default_value_t = Limits::default().header_read.as_secs()
    )]
    pub header_timeout_secs: u64,

    /// Seconds a kept-alive connection may stay idle between requests.
    #[arg(
        long,
        env = "MINITWIT_IDLE_TIMEOUT_SECS",
        default_value_t = Limits::default().idle.as_secs()
    )]
    pub idle_timeout_secs: u64,

    /// Seconds a client has to send a request's whole body (beyond: 400).
    #[arg(
        long,
        env = "MINITWIT_BODY_TIMEOUT_SECS",
        default_value_t = Limits::default().body_read.as_secs()
    )]
    pub body_timeout_secs: u64,

    /// Seconds a request may take from its header to its response (beyond: 503).
    #[arg(
        long,
        env = "MINITWIT_REQUEST_TIMEOUT_SECS",
        default_value_t = Limits::default().request.as_secs()
    )]
    pub request_timeout_secs: u64,

    /// Most connections open at once per listener (beyond: 503 and close).
    #[arg(
        long,
        env = "MINITWIT_MAX_CONNECTIONS",
        default_value_t = Limits::default().max_connections
    )]
    pub max_connections: usize,

    /// Seconds shutdown waits for open connections before dropping them.
    #[arg(
        long,
        env = "MINITWIT_SHUTDOWN_GRACE_SECS",
        default_value_t = Limits::default().grace.as_secs()
    )]
    pub shutdown_grace_secs: u64,

    /// Seconds a connection may take none of the bytes written to it before it is
    /// closed (a client that stopped reading).
    #[arg(
        long,
        env = "MINITWIT_WRITE_STALL_SECS",
        default_value_t = Limits::default().write_stall.as_secs()
    )]
    pub write_stall_secs: u64,
}

/// Live timelines' limits (CONTRACT.md §3.6).
#[derive(Debug, Clone, Args)]
pub struct LiveArgs {
    /// Most live timeline streams open at once in this process (beyond: 503).
    #[arg(
        long,
        env = "MINITWIT_MAX_STREAMS",
        default_value_t = minitwit_web::LiveConfig::default().max_streams
    )]
    pub max_streams: usize,

    /// Most live timeline streams open at once from one client address (beyond: 429).
    #[arg(
        long,
        env = "MINITWIT_MAX_STREAMS_PER_ADDRESS",
        default_value_t = minitwit_web::LiveConfig::default().max_streams_per_address
    )]
    pub max_streams_per_address: usize,

    /// Seconds a live timeline stream may go without an event before it ends (the
    /// browser reconnects).
    #[arg(
        long,
        env = "MINITWIT_STREAM_IDLE_SECS",
        default_value_t = minitwit_web::LiveConfig::default().idle.as_secs()
    )]
    pub stream_idle_secs: u64,

    /// Milliseconds between two writes to one live timeline stream: events that come
    /// sooner go together in the next write (0: each event as it comes).
    #[arg(
        long,
        env = "MINITWIT_STREAM_WRITE_WINDOW_MS",
        default_value_t = minitwit_web::LiveConfig::default().write_window.as_millis() as u64
    )]
    pub stream_write_window_ms: u64,
}

/// The simulator's credentials (HTTP Basic).
#[derive(Debug, Clone, Args)]
pub struct SimulatorCredentials {
    /// The simulator's user name (HTTP Basic).
    #[arg(long, env = "MINITWIT_SIM_USER", default_value = "simulator")]
    pub sim_user: String,

    /// The simulator's password (HTTP Basic).
    #[arg(
        long,
        env = "MINITWIT_SIM_PASSWORD",
        default_value = "super_safe!",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub sim_password: Secret,
}

/// `user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// List users by id: `ID  USERNAME  EMAIL  active|disabled`.
    List {
        /// At most this many (all when absent).
        #[arg(long)]
        limit: Option<usize>,
        /// Only users with a larger id (to page on).
        #[arg(long)]
        after: Option<UserId>,
        /// One JSON object per line instead of tab-separated text.
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show one user.
    Show {
        /// The exact user name.
        username: String,
        /// A JSON object instead of tab-separated text.
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Create a user; the password is read from stdin or `--password`.
    Create {
        /// The user name.
        username: String,
        /// The email address.
        email: String,
        /// Where the password comes from.
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Disable a user: they can no longer log in or post, and their sessions end.
    Disable {
        /// The exact user name.
        username: String,
    },
    /// Re-enable a disabled user.
    Enable {
        /// The exact user name.
        username: String,
    },
    /// Delete a user with their messages and follows. Asks on a terminal; scripts pass
    /// `--yes`.
    Delete {
        /// The exact user name.
        username: String,
        /// Delete without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// End every session of a user (sign them out on every browser).
    SignOut {
        /// The exact user name.
        username: String,
    },
    /// Set a new password, read from stdin or `--password`; their sessions end.
    Password {
        /// The exact user name.
        username: String,
        /// Where the password comes from.
        #[command(flatten)]
        password: PasswordSource,
    },
}

/// Where a password comes from: scriptable, never a prompt.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// The password itself (visible in the process list; prefer `--password-stdin`).
    #[arg(long, env = "MINITWIT_USER_PASSWORD", hide_env_values = true)]
    pub password: Option<Secret>,
}

/// `message` subcommands.
#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// List messages, newest first, flagged ones included (marked):
    /// `ID  PUB_DATE  AUTHOR  flagged|-  TEXT`.
    List {
        /// Only flagged messages.
        #[arg(long, conflicts_with = "unflagged")]
        flagged: bool,
        /// Only unflagged messages.
        #[arg(long)]
        unflagged: bool,
        /// Only this user's messages.
        #[arg(long)]
        user: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Only messages with a smaller id (to page on).
        #[arg(long)]
        before: Option<MessageId>,
        /// One JSON object per line instead of tab-separated text.
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Flag (hide) messages by id. Unknown ids change nothing and are reported.
    Flag {
        /// Message ids.
        #[arg(required = true, num_args = 1..)]
        ids: Vec<MessageId>,
    },
    /// Unflag (show again) messages by id. Unknown ids change nothing and are reported.
    Unflag {
        /// Message ids.
        #[arg(required = true, num_args = 1..)]
        ids: Vec<MessageId>,
    },
}

/// `--json`: machine-readable output.
#[derive(Debug, Clone, Copy, Args)]
pub struct JsonFlag {
    /// Print JSON instead of tab-separated text.
    #[arg(long)]
    pub json: bool,
}

/// `migrate` options.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Change nothing: list the pending migrations and exit 1 if there are any.
    #[arg(long)]
    pub check: bool,
}

/// `check` options.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// PostgreSQL: build the kept home timelines again from the messages and follows
    /// (one transaction), then check them.
    #[arg(long)]
    pub rebuild_home: bool,
}

/// `verify` options.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The export file (`.gz` is decompressed; `-` reads stdin).
    pub file: PathBuf,
}

/// `export` options.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The file to write (written to a temporary file first, then renamed); gzipped when
    /// its name ends in `.gz`; `-` writes to stdout.
    #[arg(long = "out", short = 'o')]
    pub out: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `import` options.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The export file to read (checked completely before anything is written); `.gz`
    /// is decompressed.
    #[arg(long = "in", short = 'i')]
    pub input: PathBuf,
    /// Write even if the store holds data (ids must not collide).
    #[arg(long)]
    pub force: bool,
    /// Instead of importing, remove the records of this file from a store whose import
    /// of it never finished (the process died), and the mark that keeps the store from
    /// being served. Refused when no import is unfinished.
    #[arg(long, conflicts_with = "force")]
    pub undo: bool,
}

/// `copy` options.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The store to read, by URL.
    #[arg(long, env = "MINITWIT_COPY_FROM", hide_env_values = true)]
    pub from: String,
    /// The store to write, by URL; must be empty unless `--force`.
    #[arg(long, env = "MINITWIT_COPY_TO", hide_env_values = true)]
    pub to: String,
    /// Write even if the target holds data (ids must not collide).
    #[arg(long)]
    pub force: bool,
    /// Records per batch.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
}

/// `health` options.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Base URL of the server (either listener: both answer `/ready`). Default: the web
    /// site of `MINITWIT_WEB_ADDR` on this host (so a container's health check follows its
    /// configuration), else `http://127.0.0.1:5000`.
    #[arg(env = "MINITWIT_HEALTH_URL")]
    pub url: Option<String>,
    /// The web site's address, for the default URL.
    #[arg(long, env = "MINITWIT_WEB_ADDR", default_value = "127.0.0.1:5000", hide = true)]
    pub web_addr: SocketAddr,
    /// How long to wait for the answer, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
}

/// `replay` options.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The scenario (tab-separated: id, delay, unix-ms, action, user, argument[, password]),
    /// gzipped when its name ends in `.gz`, e.g. `data/minitwit_scenario.csv.gz`.
    #[arg(long, env = "MINITWIT_SCENARIO")]
    pub csv: PathBuf,
    /// Base URL of the simulator API.
    #[arg(long, env = "MINITWIT_API_URL", default_value = "http://127.0.0.1:5001")]
    pub base_url: String,
    /// Replay only the first N actions.
    #[arg(long)]
    pub limit: Option<usize>,
    /// At most this many requests per second (unlimited when absent).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Requests in flight at once (actions of one user stay in order).
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Per-request timeout, in milliseconds (the simulator's is 300).
    #[arg(long, default_value_t = 300)]
    pub timeout_ms: u64,
    /// Open a new connection for every request, as the course's simulator does.
    #[arg(long)]
    pub close_connections: bool,
    /// Send no `Idempotency-Key` (each action carries one by default, so that retries
    /// apply once).
    #[arg(long)]
    pub no_idempotency_keys: bool,
    /// Send an action again, with the same idempotency key, up to N times when it gets a
    /// 502, 503, 504 or no answer (the simulator itself never retries).
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
    /// Exit successfully even when some requests failed (the report still lists them).
    #[arg(long)]
    pub allow_errors: bool,
    /// The simulator's credentials.
    #[command(flatten)]
    pub simulator: SimulatorCredentials,
}

/// A secret from the command line or the environment: never printed, not even by
/// `Debug`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn access_log_settings_parse() {
        assert_eq!("on".parse(), Ok(AccessLog::On));
        assert_eq!("off".parse(), Ok(AccessLog::Off));
        assert_eq!(
            "10".parse(),
            Ok(AccessLog::Sample(NonZeroU64::new(10).unwrap_or(NonZeroU64::MIN)))
        );
        assert!("0".parse::<AccessLog>().is_err());
        assert!("sometimes".parse::<AccessLog>().is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let secret: Secret = "hunter2".parse().unwrap_or_else(|never| match never {});
        assert!(!format!("{secret:?} {secret}").contains("hunter2"));
    }
}
