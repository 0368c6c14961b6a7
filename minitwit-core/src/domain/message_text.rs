//! [`MessageText`]: the text of a message, any Unicode, stored exactly as written.

use super::ValidationError;
use serde::{Deserialize, Serialize};

/// Message text: not empty or only white space, at most [`MessageText::MAX_CHARS`]
/// characters, no control characters but tabs and line breaks. It is stored as written: `<`, `&`, quotes and emoji are escaped by the
/// front ends on output, never altered here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageText(String);

impl MessageText {
    /// The longest message accepted, in Unicode scalar values.
    pub const MAX_CHARS: usize = 1000;

    /// Parses raw message text.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.trim().is_empty() {
            Err(ValidationError::MessageEmpty)
        } else if raw.chars().count() > Self::MAX_CHARS {
            Err(ValidationError::MessageTooLong)
        } else if raw.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
            // NUL and the like: no reader wants them, and PostgreSQL's text cannot hold NUL.
            Err(ValidationError::MessageBadCharacter)
        } else {
            Ok(Self(raw.to_owned()))
        }
    }
}

impl AsRef<str> for MessageText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MessageText {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<MessageText> for String {
    fn from(text: MessageText) -> String {
        text.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_text_as_written() {
        let raw = "<test message 2> & \"quotes\" 'single' 🦀";
        assert_eq!(MessageText::parse(raw).unwrap().as_ref(), raw);
        assert_eq!(MessageText::parse("  \n"), Err(ValidationError::MessageEmpty));
        assert_eq!(MessageText::parse(&"🦀".repeat(1001)), Err(ValidationError::MessageTooLong));
        assert!(MessageText::parse(&"🦀".repeat(1000)).is_ok());
        assert!(MessageText::parse("tab\tnew\nline\r\n").is_ok());
        for bad in ["nul\0byte", "bell\u{7}", "esc\u{1b}[31m"] {
            assert_eq!(MessageText::parse(bad), Err(ValidationError::MessageBadCharacter));
        }
    }
}
