//! The crash test: a child process writes to a durable store and reports each write on
//! stdout once it is acknowledged; the parent kills it with SIGKILL at a random moment,
//! reopens the store and requires every acknowledged write to be there and the store to
//! pass the integrity check. Twenty rounds on one directory, so recovery also recovers
//! earlier recoveries; the child registers, posts, follows and records `latest` at once.
//!
//! The child is this test binary again, run with [`CHILD_DIR`] set.

use minitwit_core::model::{NewMessage, NewUser};
use minitwit_core::{Email, MessageId, MessageText, Store, UserId, Username};
use minitwit_store_sled::{SledOptions, SledStore};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// When set, this binary is the child: it writes to the store in this directory.
const CHILD_DIR: &str = "MINITWIT_SLED_CRASH_CHILD_DIR";
/// When set in the child, the round number (it makes names unique across rounds).
const CHILD_ROUND: &str = "MINITWIT_SLED_CRASH_CHILD_ROUND";
/// Concurrent writers in the child, so flushes are shared while it dies.
const WRITERS: usize = 4;
/// Kill rounds.
const ROUNDS: u32 = 20;
/// The `latest` values of a round start at its number times this.
const LATEST_BASE: i64 = 1_000_000;

/// One acknowledged write, as the child reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ack {
    User { name: String, id: UserId },
    Message { id: MessageId, author: UserId, text: String },
    Follow { follower: UserId, followee: UserId },
    Latest(i64),
}

impl Ack {
    fn to_line(&self) -> String {
        match self {
            Ack::User { name, id } => format!("ACK USER {id} {name}\n"),
            Ack::Message { id, author, text } => format!("ACK MSG {id} {author} {text}\n"),
            Ack::Follow { follower, followee } => format!("ACK FOLLOW {follower} {followee}\n"),
            Ack::Latest(latest) => format!("ACK LATEST {latest}\n"),
        }
    }

    /// Reads a line written by [`Ack::to_line`]; `None` for harness output and the like.
    fn parse(line: &str) -> Option<Self> {
        let mut words = line.strip_prefix("ACK ")?.splitn(4, ' ');
        let kind = words.next()?;
        let a: i64 = words.next()?.parse().ok()?;
        Some(match kind {
            "USER" => Ack::User { id: UserId(a), name: words.next()?.to_owned() },
            "MSG" => Ack::Message {
                id: MessageId(a),
                author: words.next()?.parse().ok()?,
                text: words.next()?.to_owned(),
            },
            "FOLLOW" => Ack::Follow { follower: UserId(a), followee: words.next()?.parse().ok()? },
            "LATEST" => Ack::Latest(a),
            _ => return None,
        })
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let round = std::env::var(CHILD_ROUND).unwrap_or_default();
        run_child(Path::new(&dir), &round);
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut acked = Vec::new();
    for round in 0..ROUNDS {
        acked.extend(crash_once(dir.path(), round));
        verify(dir.path(), &acked);
    }
}

/// Runs the child until a random moment after its first acknowledged write, kills it,
/// and returns what it acknowledged.
fn crash_once(dir: &Path, round: u32) -> Vec<Ack> {
    let mut child = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args(["acknowledged_writes_survive_sigkill", "--exact", "--nocapture"])
        .env(CHILD_DIR, dir)
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the child writer");
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(ack) = Ack::parse(&line) {
                let _ = lines_tx.send(());
                acks.push(ack);
            }
        }
        acks
    });
    lines_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the child acknowledged no write within two minutes");
    std::thread::sleep(Duration::from_millis(random_below(400)));
    child.kill().expect("sending SIGKILL to the child");
    child.wait().expect("reaping the child");
    let acks = reader.join().expect("the reader thread");
    assert!(!acks.is_empty(), "round {round}: the child acknowledged writes");
    acks
}

/// Reopens the store and requires every acknowledged write and a clean integrity check.
fn verify(dir: &Path, acked: &[Ack]) {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let store = SledStore::open(dir, SledOptions::default()).expect("reopening after a crash");
        let latest = store.latest().await.expect("reading latest").unwrap_or(0);
        for ack in acked {
            let present = match ack {
                Ack::User { name, id } => {
                    store.user_by_name(name).await.expect("reading").is_some_and(|u| u.id == *id)
                }
                Ack::Message { id, author, text } => store
                    .message_by_id(*id)
                    .await
                    .expect("reading")
                    .is_some_and(|m| m.author_id == *author && m.text == *text),
                Ack::Follow { follower, followee } => {
                    store.is_following(*follower, *followee).await.expect("reading")
                }
                // Each round's values are larger than the last round's: the store holds
                // the last one acknowledged, or one written after it.
                Ack::Latest(acked) => latest >= *acked,
            };
            assert!(present, "acknowledged write lost in the crash: {ack:?}");
        }
        let report = store.check_integrity().await.expect("checking integrity");
        assert!(report.is_consistent(), "integrity after a crash: {:?}", report.problems);
    });
}

/// The child: `WRITERS` tasks register, post and follow until killed, reporting each
/// acknowledged write.
fn run_child(dir: &Path, round: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let number: i64 = round.parse().unwrap_or(0);
    runtime.block_on(async {
        let store: Arc<dyn Store> =
            Arc::new(SledStore::open(dir, SledOptions::default()).expect("opening the store"));
        let mut writers: Vec<_> = (0..WRITERS)
            .map(|w| tokio::spawn(write_forever(Arc::clone(&store), format!("r{round}w{w}"))))
            .collect();
        writers.push(tokio::spawn(set_latest_forever(Arc::clone(&store), number * LATEST_BASE)));
        for writer in writers {
            writer.await.expect("a writer task");
        }
    });
}

/// One writer: user after user, each posting and following the previous one.
async fn write_forever(store: Arc<dyn Store>, prefix: String) {
    let mut previous = None;
    for i in 0.. {
        let name = format!("{prefix}u{i}");
        let new_user = NewUser {
            username: Username::parse(&name).expect("a valid name"),
            email: Email::parse(&format!("{name}@example.com")).expect("a valid email"),
            pw_hash: "hash".into(),
        };
        let user = store.create_user(new_user).await.expect("registering");
        report(&Ack::User { name, id: user.id });
        let text = format!("{prefix}m{i}");
        let message = NewMessage {
            author_id: user.id,
            text: MessageText::parse(&text).expect("a valid text"),
            pub_date: i,
        };
        let id = store.add_message(message).await.expect("posting");
        report(&Ack::Message { id, author: user.id, text });
        if let Some(followee) = previous {
            store.follow(user.id, followee).await.expect("following");
            report(&Ack::Follow { follower: user.id, followee });
        }
        previous = Some(user.id);
    }
}

/// The simulator's `latest`, one increasing value after another from `base`.
async fn set_latest_forever(store: Arc<dyn Store>, base: i64) {
    for i in 1.. {
        store.set_latest(base + i).await.expect("recording latest");
        report(&Ack::Latest(base + i));
    }
}

/// Writes one whole line straight to stdout (not through the test harness's capture).
fn report(ack: &Ack) {
    let mut out = std::io::stdout().lock();
    out.write_all(ack.to_line().as_bytes()).expect("writing to stdout");
    out.flush().expect("flushing stdout");
}

/// A random number below `bound`, from the standard library's randomly keyed hasher.
fn random_below(bound: u64) -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now()) % bound
}
