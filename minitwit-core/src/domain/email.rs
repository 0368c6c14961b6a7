//! [`Email`]: an address we only ever use for Gravatar pictures.

use super::ValidationError;
use serde::{Deserialize, Serialize};

/// An email address as the original checked it: non-empty and containing `@`; we also
/// bound its length (RFC 5321's 254) and refuse control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// The longest address accepted, in bytes.
    pub const MAX_BYTES: usize = 254;

    /// Parses a raw email address.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let valid =
            raw.contains('@') && raw.len() <= Self::MAX_BYTES && !raw.chars().any(char::is_control);
        if valid { Ok(Self(raw.to_owned())) } else { Err(ValidationError::EmailInvalid) }
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> String {
        email.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_an_at_sign() {
        assert!(Email::parse("Roger+Histand@hotmail.com").is_ok());
        for bad in ["", "nobody", &format!("{}@x", "a".repeat(260))] {
            assert_eq!(
                Email::parse(bad).unwrap_err().to_string(),
                "You have to enter a valid email address"
            );
        }
    }
}
