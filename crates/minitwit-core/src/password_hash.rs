//! Argon2id password hashing, run off the async executor.
//!
//! Hashing is deliberately slow (tens of milliseconds), so it runs on tokio's blocking
//! pool: a burst of logins must not stall every other request on the same worker.

use crate::domain::Password;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

/// How much work a hash costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    /// OWASP's recommended Argon2id parameters (19 MiB, 2 passes, 1 lane).
    Recommended,
    /// Minimal parameters, for tests and benchmarks that create many users. Never for a
    /// real deployment.
    Insecure,
}

/// Hashes and verifies passwords with Argon2id.
#[derive(Debug, Clone)]
pub struct Hasher {
    params: Params,
}

impl Hasher {
    /// A hasher with the given cost.
    pub fn new(cost: HashCost) -> Self {
        let params = match cost {
            HashCost::Recommended => Params::default(),
            HashCost::Insecure => Params::new(8, 1, 1, None).unwrap_or_default(),
        };
        Self { params }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes `password` with a fresh random salt; the PHC string form.
    pub async fn hash(&self, password: &Password) -> Result<String, String> {
        let argon2 = self.argon2();
        let secret = password.expose().to_owned();
        tokio::task::spawn_blocking(move || {
            argon2
                .hash_password(secret.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| format!("password hashing failed: {e}"))
        })
        .await
        .map_err(|e| format!("password hashing task failed: {e}"))?
    }

    /// Whether `password` matches the PHC `hash` (constant-time comparison). A hash that
    /// does not parse never matches.
    pub async fn verify(&self, password: &str, hash: &str) -> bool {
        let argon2 = self.argon2();
        let (secret, hash) = (password.to_owned(), hash.to_owned());
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .is_ok_and(|parsed| argon2.verify_password(secret.as_bytes(), &parsed).is_ok())
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let hasher = Hasher::new(HashCost::Insecure);
        let pw = Password::parse("]=)[X{Km{z").unwrap();
        let a = hasher.hash(&pw).await.unwrap();
        let b = hasher.hash(&pw).await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salts must differ");
        assert!(hasher.verify("]=)[X{Km{z", &a).await);
        assert!(!hasher.verify("wrong", &a).await);
        assert!(!hasher.verify("]=)[X{Km{z", "not a hash").await);
    }
}
