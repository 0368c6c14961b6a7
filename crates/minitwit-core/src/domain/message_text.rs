//! [`MessageText`]: the text of a message, any Unicode, stored exactly as written.

use super::ValidationError;
use serde::{Deserialize, Serialize};

/// Message text: not empty or only white space, at most [`MessageText::MAX_CHARS`]
/// characters. It is stored as written: `<`, `&`, quotes and emoji are escaped by the
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
    }
}
