//! Argon2id password hashing, off the async executor and in bounded memory.
//!
//! A hash is deliberately slow (tens of milliseconds) and memory-hard (19 MiB), so it runs
//! on tokio's blocking pool, at most one hash per core at a time, each in one of a few work
//! buffers that are reused. Unbounded, a burst of sign-ups ran as many hashes as the pool
//! had threads: they thrashed the cores, page-faulted a fresh 19 MiB into every thread and
//! glibc kept them all (measured on 2 cores: 577 MB resident after 200 simulator sign-ups,
//! and sign-ups slower than the simulator's 0.3 s budget).

use crate::domain::Password;
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// How much work a hash costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    /// OWASP's recommended Argon2id parameters (19 MiB, 2 passes, 1 lane).
    Recommended,
    /// Minimal parameters, for tests and benchmarks that create many users. Never for a
    /// real deployment.
    Insecure,
}

/// Length of a fresh salt, in bytes.
const SALT_LEN: usize = 16;
/// Length of a fresh hash output, in bytes.
const OUTPUT_LEN: usize = 32;

/// Hashes and verifies passwords with Argon2id. Clones share one buffer pool.
#[derive(Debug, Clone)]
pub struct Hasher {
    params: Params,
    pool: Arc<BufferPool>,
}

impl Hasher {
    /// A hasher with the given cost, running at most one hash per core at a time.
    pub fn new(cost: HashCost) -> Self {
        let params = match cost {
            HashCost::Recommended => Params::default(),
            HashCost::Insecure => Params::new(8, 1, 1, None).unwrap_or_default(),
        };
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        Self { pool: Arc::new(BufferPool::new(workers, params.block_count())), params }
    }

    /// Hashes `password` with a fresh random salt; the PHC string form.
    pub async fn hash(&self, password: &Password) -> Result<String, String> {
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
            .map_err(|e| format!("password hashing failed: {e}"))?;
        let phc = |e: argon2::password_hash::phc::Error| format!("encoding the hash failed: {e}");
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params)
                .map_err(|e| format!("encoding the hash parameters failed: {e}"))?,
            salt: Some(Salt::new(&salt).map_err(phc)?),
            hash: Some(Output::new(&output).map_err(phc)?),
        };
        Ok(hash.to_string())
    }

    /// Whether `password` matches the PHC `hash` (any Argon2 variant and parameters, as an
    /// import may bring; compared in constant time). A hash that does not parse never
    /// matches.
    pub async fn verify(&self, password: &str, hash: &str) -> bool {
        let Some(check) = Check::parse(hash) else { return false };
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
        computed.unwrap_or(false)
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
    fn parse(hash: &str) -> Option<Self> {
        let parsed = PasswordHash::new(hash).ok()?;
        Some(Self {
            algorithm: Algorithm::try_from(parsed.algorithm.as_str()).ok()?,
            version: parsed.version.map_or(Some(Version::V0x13), |v| Version::try_from(v).ok())?,
            params: Params::try_from(&parsed).ok()?,
            salt: parsed.salt?.to_vec(),
            expected: parsed.hash?,
        })
    }
}

/// At most `permits` hashes at once, each in a reused buffer of `blocks` Argon2 blocks
/// (hashes with other parameters get a buffer of their own for the occasion).
#[derive(Debug)]
struct BufferPool {
    permits: Semaphore,
    blocks: usize,
    free: Mutex<Vec<Vec<Block>>>,
}

impl BufferPool {
    fn new(permits: usize, blocks: usize) -> Self {
        Self { permits: Semaphore::new(permits), blocks, free: Mutex::new(Vec::new()) }
    }

    /// Runs `work` on the blocking pool with a buffer of `blocks` blocks, reused when it
    /// has the pool's size.
    async fn run<T: Send + 'static>(
        &self,
        blocks: usize,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, String> {
        let _permit = self.permits.acquire().await.map_err(|e| format!("hasher closed: {e}"))?;
        let pooled = blocks == self.blocks;
        let mut buffer = pooled.then(|| self.take()).flatten().unwrap_or_default();
        buffer.resize(blocks, Block::default());
        let (buffer, out) = tokio::task::spawn_blocking(move || {
            let out = work(&mut buffer);
            (buffer, out)
        })
        .await
        .map_err(|e| format!("password hashing task failed: {e}"))?;
        if pooled {
            self.put(buffer);
        }
        Ok(out)
    }

    fn take(&self) -> Option<Vec<Block>> {
        // The list is only pushed to and popped from: a poisoned lock still holds buffers.
        self.free.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop()
    }

    fn put(&self, buffer: Vec<Block>) {
        self.free.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(buffer);
    }
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
            assert!(hasher.verify("]=)[X{Km{z", &a).await);
            assert!(!hasher.verify("wrong", &a).await);
            assert!(!hasher.verify("]=)[X{Km{z", "not a hash").await);
        }
    }

    #[tokio::test]
    async fn verifies_hashes_made_elsewhere_with_other_parameters() {
        let params = Params::new(4096, 3, 1, None).unwrap();
        let other = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let foreign = other.hash_password_with_salt(b"s3cret", b"0123456789abcdef").unwrap();
        let hasher = Hasher::new(HashCost::Recommended);
        assert!(hasher.verify("s3cret", &foreign.to_string()).await);
        assert!(!hasher.verify("s3cre", &foreign.to_string()).await);
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
            assert!(hasher.verify("pw", &hash.await.unwrap().unwrap()).await);
        }
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        assert!(hasher.pool.free.lock().unwrap().len() <= workers);
    }
}
