//! Gravatar picture addresses: MD5 of the trimmed, lower-cased email.

use md5::{Digest, Md5};

/// `https://www.gravatar.com/avatar/MD5?d=identicon&s=SIZE` for `email`.
pub fn url(email: &str, size: u32) -> String {
    let digest = Md5::digest(email.trim().to_lowercase().as_bytes());
    format!("https://www.gravatar.com/avatar/{}?d=identicon&s={size}", hex::encode(digest))
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_gravatars_documented_example() {
        // Gravatar's own example address and hash.
        assert_eq!(
            super::url(" MyEmailAddress@example.com ", 48),
            "https://www.gravatar.com/avatar/0bc83cb571cd1c50ba6f3e8a78ef1346?d=identicon&s=48"
        );
    }
}
