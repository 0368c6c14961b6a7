//! Argon2id password hashing, off the async executor, in bounded memory and with
//! admission control.
//!
//! A hash is deliberately slow (about ten milliseconds) and memory-hard (7 MiB), so it runs
//! on tokio's blocking pool, at most [`HashPool::workers`] at a time (by default the CPUs
//! the process is given: its cgroup quota, not the host's cores), each in one of a few work
//! buffers that are reused. At most [`HashPool::queue`] more wait; past that a hash is
//! refused at once ([`HashError::Overloaded`], which front ends answer with 503 and
//! `Retry-After`), so a flood of sign-ups cannot queue minutes of work ahead of every
//! login. Stored hashes whose parameters lie outside [`ACCEPTED`] are refused before any
//! memory is allocated. Unbounded, a burst of sign-ups would run as many hashes as the
//! pool has threads: they would thrash the cores, page-fault a fresh buffer into every
//! thread, and glibc would keep them all (BENCHMARKS.md has the measurement).
//!
//! Of the Argon2id configurations OWASP lists as equally strong (19 MiB and 2 passes,
//! 12 MiB and 3, 9 MiB and 4, 7 MiB and 5; one lane each), the hasher uses the one with
//! the least memory: a server holds one buffer per worker, and the smaller buffer also
//! hashes faster here (10.7 against 13.2 ms; BENCHMARKS.md).
//!
//! The buffers are kept while hashes keep coming, and given back to the system once none
//! has run for [`KEEP_IDLE`]: each reserves more address space than glibc's largest mmap
//! threshold, so that it is a mapping of its own, unmapped when dropped (only the pages a
//! hash touches are ever resident).

use crate::domain::Password;
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// How much work a hash costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    /// OWASP's recommended Argon2id strength, in its least memory: 7 MiB, 5 passes,
    /// 1 lane ([`RECOMMENDED_MEMORY_KIB`], [`RECOMMENDED_PASSES`]).
    Recommended,
    /// Minimal parameters, for tests and benchmarks that create many users. Never for a
    /// real deployment.
    Insecure,
}

/// The memory of a recommended hash, in KiB: OWASP's smallest configuration.
pub const RECOMMENDED_MEMORY_KIB: u32 = 7 * 1024;
/// The passes of a recommended hash, which OWASP pairs with [`RECOMMENDED_MEMORY_KIB`].
pub const RECOMMENDED_PASSES: u32 = 5;

/// How long the hashing buffers are kept after the last hash.
pub const KEEP_IDLE: Duration = Duration::from_secs(5);

/// The address space each hashing buffer reserves, in Argon2 blocks of 1 KiB: beyond
/// glibc's largest dynamic mmap threshold (32 MiB on 64-bit), so that the buffer is
/// always mapped on its own and returned to the system when dropped.
const RESERVED_BLOCKS: usize = 33 * 1024;

/// Length of a fresh salt, in bytes.
const SALT_LEN: usize = 16;
/// Length of a fresh hash output, in bytes.
const OUTPUT_LEN: usize = 32;

/// The largest Argon2 parameters a stored hash may ask for: memory (KiB), passes, lanes
/// and output length. Far above what any sane deployment uses (OWASP: 19 MiB, 2 passes,
/// 1 lane), far below what would let one login take the server down.
pub const ACCEPTED: Accepted =
    Accepted { max_memory_kib: 256 * 1024, max_passes: 16, max_lanes: 8, max_output: 64 };

/// Bounds on the parameters of stored hashes (see [`ACCEPTED`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Most memory, in KiB.
    pub max_memory_kib: u32,
    /// Most passes.
    pub max_passes: u32,
    /// Most lanes.
    pub max_lanes: u32,
    /// Longest output, in bytes.
    pub max_output: usize,
}

/// Why a hash could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Every worker is busy and the queue is full: try again later (503).
    #[error("password hashing is overloaded")]
    Overloaded,
    /// Called outside a Tokio runtime, which hashing runs on (its blocking pool).
    #[error("password hashing needs a Tokio runtime")]
    NoRuntime,
    /// Anything else (an Argon2 or task failure).
    #[error("{0}")]
    Failed(String),
}

/// How many hashes run at once and how many may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashPool {
    /// Hashes running at once (at least one).
    pub workers: usize,
    /// Hashes waiting for a worker; more are refused.
    pub queue: usize,
}

impl HashPool {
    /// Waiting hashes per worker by default: a full queue clears in well under a second.
    pub const QUEUE_PER_WORKER: usize = 8;

    /// One worker per CPU the process may use (see [`cpu_quota`]), with
    /// [`Self::QUEUE_PER_WORKER`] waiting per worker.
    pub fn for_this_process() -> Self {
        Self::with_workers(cpu_quota())
    }

    /// `workers` workers (at least one), with the default queue.
    pub fn with_workers(workers: usize) -> Self {
        let workers = workers.max(1);
        Self { workers, queue: workers * Self::QUEUE_PER_WORKER }
    }
}

/// The CPUs this process may use: its cgroup v2 CPU quota (`/sys/fs/cgroup/cpu.max`,
/// rounded up) when it has one, never more than the cores it can run on.
pub fn cpu_quota() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let quota = std::fs::read_to_string("/sys/fs/cgroup/cpu.max").ok();
    quota.as_deref().and_then(parse_cpu_max).map_or(cores, |quota| quota.clamp(1, cores))
}

/// CPUs from a `cpu.max` line (`QUOTA PERIOD`, or `max PERIOD` for no limit), rounded up.
fn parse_cpu_max(line: &str) -> Option<usize> {
    let mut fields = line.split_whitespace();
    let quota: u64 = fields.next()?.parse().ok()?;
    let period: u64 = fields.next()?.parse().ok().filter(|period| *period > 0)?;
    usize::try_from(quota.div_ceil(period)).ok()
}

/// Hashes and verifies passwords with Argon2id. Clones share one buffer pool.
#[derive(Debug, Clone)]
pub struct Hasher {
    params: Params,
    pool: Arc<BufferPool>,
}

impl Hasher {
    /// A hasher with the given cost and the process's default pool
    /// ([`HashPool::for_this_process`]).
    pub fn new(cost: HashCost) -> Self {
        Self::with_pool(cost, HashPool::for_this_process())
    }

    /// A hasher with the given cost and pool.
    pub fn with_pool(cost: HashCost, pool: HashPool) -> Self {
        let params = match cost {
            HashCost::Recommended => {
                Params::new(RECOMMENDED_MEMORY_KIB, RECOMMENDED_PASSES, 1, None).unwrap_or_default()
            }
            HashCost::Insecure => Params::new(8, 1, 1, None).unwrap_or_default(),
        };
        Self { pool: Arc::new(BufferPool::new(pool, params.block_count())), params }
    }

    /// [`HashError::Overloaded`] when the pool is full right now: lets a caller refuse
    /// before doing any other work for a hash it would not get (the hash itself is
    /// admitted again when it runs).
    pub fn has_room(&self) -> Result<(), HashError> {
        self.pool.admit().map(drop)
    }

    /// Hashes `password` with a fresh random salt; the PHC string form.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let salt: [u8; SALT_LEN] = rand::random();
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        let secret = password.expose().to_owned();
        let output = self
            .pool
            .run(self.params.block_count(), move |blocks| {
                let mut out = [0u8; OUTPUT_LEN];
                argon2.hash_password_into_with_memory(
                    secret.as_bytes(),
                    &salt,
                    &mut out,
                    blocks,
                )?;
                Ok::<_, argon2::Error>(out)
            })
            .await?
            .map_err(|e| HashError::Failed(format!("password hashing failed: {e}")))?;
        let phc = |e: argon2::password_hash::phc::Error| {
            HashError::Failed(format!("encoding the hash failed: {e}"))
        };
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(|e| {
                HashError::Failed(format!("encoding the hash parameters failed: {e}"))
            })?,
            salt: Some(Salt::new(&salt).map_err(phc)?),
            hash: Some(Output::new(&output).map_err(phc)?),
        };
        Ok(hash.to_string())
    }

    /// Whether `password` matches the PHC `hash` (any Argon2 variant, and any parameters
    /// within [`ACCEPTED`], as an import may bring; compared in constant time). A hash
    /// that does not parse, or asks for more than is accepted, never matches and costs
    /// nothing. [`HashError::Overloaded`] when the pool is full.
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        let Some(check) = Check::parse(hash) else { return Ok(false) };
        let secret = password.to_owned();
        let blocks = check.params.block_count();
        let computed = self
            .pool
            .run(blocks, move |memory| {
                let mut out = vec![0u8; check.expected.len()];
                let argon2 = Argon2::new(check.algorithm, check.version, check.params);
                argon2
                    .hash_password_into_with_memory(
                        secret.as_bytes(),
                        &check.salt,
                        &mut out,
                        memory,
                    )
                    .ok()
                    .and_then(|()| Output::new(&out).ok())
                    .is_some_and(|computed| computed == check.expected)
            })
            .await;
        match computed {
            Err(err @ (HashError::Overloaded | HashError::NoRuntime)) => Err(err),
            other => Ok(other.unwrap_or(false)),
        }
    }
}

/// What a stored PHC hash says to recompute.
struct Check {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    expected: Output,
}

impl Check {
    /// The check `hash` asks for, if it parses and its parameters are within
    /// [`ACCEPTED`].
    fn parse(hash: &str) -> Option<Self> {
        let parsed = PasswordHash::new(hash).ok()?;
        let check = Self {
            algorithm: Algorithm::try_from(parsed.algorithm.as_str()).ok()?,
            version: parsed.version.map_or(Some(Version::V0x13), |v| Version::try_from(v).ok())?,
            params: Params::try_from(&parsed).ok()?,
            salt: parsed.salt?.to_vec(),
            expected: parsed.hash?,
        };
        check.is_accepted().then_some(check)
    }

    fn is_accepted(&self) -> bool {
        let (params, limit) = (&self.params, ACCEPTED);
        params.m_cost() <= limit.max_memory_kib
            && params.t_cost() <= limit.max_passes
            && params.p_cost() <= limit.max_lanes
            && self.expected.len() <= limit.max_output
    }
}

/// At most `workers` hashes at once and `queue` waiting, each in a reused buffer of
/// `blocks` Argon2 blocks (hashes with other parameters get a buffer of their own for the
/// occasion); the reused buffers are dropped once no hash has run for [`KEEP_IDLE`].
#[derive(Debug)]
struct BufferPool {
    permits: Semaphore,
    /// Hashes admitted (running or waiting), and the most that may be.
    admitted: AtomicUsize,
    capacity: usize,
    blocks: usize,
    free: Mutex<Vec<Vec<Block>>>,
    /// Hashes finished: a release finding more than when it was set means hashing went on.
    finished: AtomicU64,
}

/// An admitted hash: gives its place back when dropped.
struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl BufferPool {
    fn new(pool: HashPool, blocks: usize) -> Self {
        let workers = pool.workers.max(1);
        Self {
            permits: Semaphore::new(workers),
            admitted: AtomicUsize::new(0),
            capacity: workers + pool.queue,
            blocks,
            free: Mutex::new(Vec::new()),
            finished: AtomicU64::new(0),
        }
    }

    /// A place among the admitted hashes, or [`HashError::Overloaded`].
    fn admit(&self) -> Result<Admission<'_>, HashError> {
        let taken = self.admitted.fetch_add(1, Ordering::SeqCst);
        let admission = Admission(&self.admitted);
        if taken >= self.capacity {
            return Err(HashError::Overloaded);
        }
        Ok(admission)
    }

    /// Runs `work` on the blocking pool with a buffer of `blocks` blocks, reused when it
    /// has the pool's size.
    async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        blocks: usize,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _admitted = self.admit()?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError::Failed(format!("hasher closed: {e}")))?;
        let pooled = blocks == self.blocks;
        let mut buffer = pooled.then(|| self.take()).flatten().unwrap_or_else(reserved_buffer);
        buffer.resize(blocks, Block::default());
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| HashError::NoRuntime)?;
        let (buffer, out) = runtime
            .spawn_blocking(move || {
                let out = work(&mut buffer);
                (buffer, out)
            })
            .await
            .map_err(|e| HashError::Failed(format!("password hashing task failed: {e}")))?;
        if pooled {
            self.put(buffer);
        }
        self.release_when_idle(&runtime);
        Ok(out)
    }

    /// Drops the kept buffers after [`KEEP_IDLE`] unless another hash finishes first.
    fn release_when_idle(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        let seen = self.finished.fetch_add(1, Ordering::SeqCst) + 1;
        let pool = Arc::clone(self);
        runtime.spawn(async move {
            tokio::time::sleep(KEEP_IDLE).await;
            if pool.finished.load(Ordering::SeqCst) == seen {
                pool.free.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
            }
        });
    }

    fn take(&self) -> Option<Vec<Block>> {
        // The list is only pushed to, popped from and cleared: a poisoned lock still holds
        // buffers.
        self.free.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop()
    }

    fn put(&self, buffer: Vec<Block>) {
        self.free.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(buffer);
    }
}

/// An empty buffer reserving [`RESERVED_BLOCKS`] (or more, for larger hashes).
fn reserved_buffer() -> Vec<Block> {
    Vec::with_capacity(RESERVED_BLOCKS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher as _;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        for cost in [HashCost::Insecure, HashCost::Recommended] {
            let hasher = Hasher::new(cost);
            let pw = Password::parse("]=)[X{Km{z").unwrap();
            let a = hasher.hash(&pw).await.unwrap();
            let b = hasher.hash(&pw).await.unwrap();
            assert!(a.starts_with("$argon2id$v=19$"), "{a}");
            assert_ne!(a, b, "salts must differ");
            assert!(hasher.verify("]=)[X{Km{z", &a).await.unwrap());
            assert!(!hasher.verify("wrong", &a).await.unwrap());
            assert!(!hasher.verify("]=)[X{Km{z", "not a hash").await.unwrap());
        }
    }

    #[tokio::test]
    async fn recommended_hashes_take_owasps_least_memory() {
        let hasher = Hasher::new(HashCost::Recommended);
        let hash = hasher.hash(&Password::parse("pw").unwrap()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
        // Hashes made with OWASP's other configuration, as earlier builds stored them,
        // still verify.
        let params = Params::new(19 * 1024, 2, 1, None).unwrap();
        let earlier = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let stored = earlier.hash_password_with_salt(b"s3cret", b"0123456789abcdef").unwrap();
        assert!(hasher.verify("s3cret", &stored.to_string()).await.unwrap());
    }

    #[tokio::test]
    async fn verifies_hashes_made_elsewhere_with_other_parameters() {
        let params = Params::new(4096, 3, 1, None).unwrap();
        let other = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let foreign = other.hash_password_with_salt(b"s3cret", b"0123456789abcdef").unwrap();
        let hasher = Hasher::new(HashCost::Recommended);
        assert!(hasher.verify("s3cret", &foreign.to_string()).await.unwrap());
        assert!(!hasher.verify("s3cre", &foreign.to_string()).await.unwrap());
        // Our own hashes verify with argon2's reference verifier too.
        let ours = hasher.hash(&Password::parse("pw").unwrap()).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        let reference = argon2::password_hash::PasswordVerifier::verify_password(
            &Argon2::default(),
            b"pw",
            &parsed,
        );
        assert!(reference.is_ok());
    }

    #[tokio::test]
    async fn concurrent_hashes_share_a_bounded_set_of_buffers() {
        let hasher = Hasher::new(HashCost::Insecure);
        let pw = Password::parse("pw").unwrap();
        let hashes: Vec<_> = (0..16)
            .map(|_| {
                let (hasher, pw) = (hasher.clone(), pw.clone());
                tokio::spawn(async move { hasher.hash(&pw).await })
            })
            .collect();
        for hash in hashes {
            assert!(hasher.verify("pw", &hash.await.unwrap().unwrap()).await.unwrap());
        }
        assert!(hasher.pool.free.lock().unwrap().len() <= cpu_quota());
    }

    #[tokio::test(start_paused = true)]
    async fn buffers_are_kept_while_hashing_goes_on_and_given_back_after() {
        let hasher = Hasher::new(HashCost::Insecure);
        let kept = || hasher.pool.free.lock().unwrap().len();
        let pw = Password::parse("pw").unwrap();
        hasher.hash(&pw).await.unwrap();
        assert_eq!(kept(), 1);
        tokio::time::sleep(KEEP_IDLE * 3 / 4).await;
        hasher.hash(&pw).await.unwrap();
        tokio::time::sleep(KEEP_IDLE * 3 / 4).await;
        assert_eq!(kept(), 1, "a hash within the idle period keeps the buffer");
        tokio::time::sleep(KEEP_IDLE / 2).await;
        assert_eq!(kept(), 0, "given back once no hash ran for the idle period");
        assert!(hasher.verify("pw", &hasher.hash(&pw).await.unwrap()).await.unwrap());
        assert_eq!(kept(), 1, "and taken again when hashing resumes");
    }

    #[tokio::test]
    async fn past_the_queue_hashes_are_refused_at_once() {
        let hasher = Hasher::with_pool(HashCost::Recommended, HashPool { workers: 1, queue: 2 });
        let pw = Password::parse("pw").unwrap();
        let hashes: Vec<_> = (0..12)
            .map(|_| {
                let (hasher, pw) = (hasher.clone(), pw.clone());
                tokio::spawn(async move { hasher.hash(&pw).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for hash in hashes {
            outcomes.push(hash.await.unwrap());
        }
        let refused = outcomes.iter().filter(|o| **o == Err(HashError::Overloaded)).count();
        assert!(refused > 0, "a full queue refuses");
        assert!(outcomes.iter().all(|o| o.is_ok() || *o == Err(HashError::Overloaded)));
        assert!(hasher.hash(&pw).await.is_ok(), "places are given back");
    }

    #[test]
    fn a_full_pool_says_so_before_any_work() {
        let hasher = Hasher::with_pool(HashCost::Insecure, HashPool { workers: 1, queue: 1 });
        assert_eq!(hasher.has_room(), Ok(()));
        let held = [hasher.pool.admit().unwrap(), hasher.pool.admit().unwrap()];
        assert_eq!(hasher.has_room(), Err(HashError::Overloaded));
        drop(held);
        assert_eq!(hasher.has_room(), Ok(()), "asking takes no place");
    }

    #[tokio::test]
    async fn hashes_asking_for_too_much_are_refused_before_allocating() {
        let huge = "$argon2id$v=19$m=4194304,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$\
            c29tZSBoYXNoIG91dHB1dCB0aGF0IGlzIDMyIGJ5dGVz";
        let hasher = Hasher::new(HashCost::Insecure);
        assert!(Check::parse(huge).is_none());
        assert_eq!(hasher.verify("pw", huge).await, Ok(false));
        let many_passes = "$argon2id$v=19$m=8,t=1000,p=1$MDEyMzQ1Njc4OWFiY2RlZg$\
            c29tZSBoYXNoIG91dHB1dCB0aGF0IGlzIDMyIGJ5dGVz";
        assert!(Check::parse(many_passes).is_none());
    }

    #[test]
    fn cpu_quota_lines_are_read() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("200000 100000\n"), Some(2));
        assert_eq!(parse_cpu_max("150000 100000"), Some(2));
        assert_eq!(parse_cpu_max("50000 100000"), Some(1));
        assert_eq!(parse_cpu_max("junk"), None);
        assert!(cpu_quota() >= 1);
    }
}
