//! [`Password`]: a plain-text password on its way to the hasher. It never prints.

use super::ValidationError;

/// A non-empty password of at most [`Password::MAX_BYTES`] bytes. `Debug` hides it, and
/// there is no `Display`, so it cannot end up in a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The longest password accepted; bounds the work a hash request can cause.
    pub const MAX_BYTES: usize = 1024;

    /// Parses a raw password.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.is_empty() {
            Err(ValidationError::PasswordMissing)
        } else if raw.len() > Self::MAX_BYTES {
            Err(ValidationError::PasswordTooLong)
        } else {
            Ok(Self(raw.to_owned()))
        }
    }

    /// The secret itself, for the hasher.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_redaction() {
        assert_eq!(Password::parse("").unwrap_err().to_string(), "You have to enter a password");
        assert_eq!(Password::parse(&"p".repeat(1025)), Err(ValidationError::PasswordTooLong));
        let pw = Password::parse("hunter2").unwrap();
        assert_eq!(pw.expose(), "hunter2");
        assert!(!format!("{pw:?}").contains("hunter2"));
    }
}
