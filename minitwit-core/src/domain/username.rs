//! [`Username`]: a name a user registered with, matched exactly (case-sensitive).

use super::ValidationError;
use serde::{Deserialize, Serialize};

/// A valid username: non-empty, at most [`Username::MAX_CHARS`] characters, no `/`, no
/// control characters, no leading or trailing space, no invisible or text-direction
/// characters, at least one letter or digit (so never `.` or `..`), and not a name the
/// web front end routes itself. Spaces inside and non-ASCII letters are fine ("Roger
/// Histand").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    /// The longest username accepted, in Unicode scalar values.
    pub const MAX_CHARS: usize = 64;

    /// Paths the web front end serves itself; a user with one of these names would be
    /// unreachable at `/{username}`.
    pub const RESERVED: &'static [&'static str] = &[
        "public",
        "login",
        "logout",
        "register",
        "add_message",
        "static",
        "metrics",
        "health",
        "ready",
        "latest",
        "msgs",
        "fllws",
        "openapi.yaml",
        "favicon.ico",
        "robots.txt",
        "api",
        "admin",
    ];

    /// Parses a raw username, with the contract's error texts.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.is_empty() {
            return Err(ValidationError::UsernameMissing);
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::UsernameTooLong);
        }
        let bad_edge = raw.starts_with(char::is_whitespace) || raw.ends_with(char::is_whitespace);
        if bad_edge || raw.chars().any(|c| c == '/' || c.is_control()) {
            return Err(ValidationError::UsernameBadCharacter);
        }
        if raw.chars().any(is_invisible) || !raw.chars().any(char::is_alphanumeric) {
            return Err(ValidationError::UsernameUnreadable);
        }
        if Self::RESERVED.contains(&raw) {
            return Err(ValidationError::UsernameReserved);
        }
        Ok(Self(raw.to_owned()))
    }
}

/// Unicode's default-ignorable code points (zero-width characters, joiners, the bidi
/// embeddings, overrides, isolates and marks, variation selectors, fillers, tags): they
/// render as nothing, so two names differing only by them look alike, and the bidi ones
/// reorder the text around them; and the braille blank, which shows as a space.
fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x2800
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Username {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Username> for String {
    fn from(name: Username) -> String {
        name.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_spaces_and_non_ascii() {
        assert_eq!(Username::parse("Roger Histand").unwrap().as_ref(), "Roger Histand");
        assert!(Username::parse("Åse Ødegård").is_ok());
        assert!(Username::parse("李小龍").is_ok());
    }

    #[test]
    fn refuses_with_contract_texts() {
        assert_eq!(Username::parse("").unwrap_err().to_string(), "You have to enter a username");
        assert_eq!(Username::parse("a/b"), Err(ValidationError::UsernameBadCharacter));
        assert_eq!(Username::parse("a\nb"), Err(ValidationError::UsernameBadCharacter));
        assert_eq!(Username::parse(" a"), Err(ValidationError::UsernameBadCharacter));
        assert_eq!(Username::parse("public"), Err(ValidationError::UsernameReserved));
        assert_eq!(Username::parse(&"x".repeat(65)), Err(ValidationError::UsernameTooLong));
        assert!(Username::parse(&"é".repeat(64)).is_ok());
    }

    #[test]
    fn refuses_invisible_bidi_and_letterless_names() {
        for raw in [
            "ali\u{200B}ce",
            "\u{202E}ecila",
            "bob\u{2066}",
            "zw\u{200D}j",
            "a\u{FE0F}",
            "\u{3164}",
            ".",
            "..",
            "...",
            "-_-",
            "\u{0301}",
        ] {
            assert_eq!(Username::parse(raw), Err(ValidationError::UsernameUnreadable), "{raw:?}");
        }
        for fine in ["a.b", "..a", "x", "7", "Åse", "O'Brien"] {
            assert!(Username::parse(fine).is_ok(), "{fine}");
        }
    }

    proptest! {
        #[test]
        fn parsed_names_round_trip(raw in "\\PC{0,80}") {
            if let Ok(name) = Username::parse(&raw) {
                prop_assert_eq!(name.as_ref(), raw.as_str());
                prop_assert!(!name.as_ref().contains('/'));
                prop_assert!(name.as_ref().chars().count() <= Username::MAX_CHARS);
                prop_assert!(!name.as_ref().chars().any(is_invisible));
                prop_assert!(name.as_ref().chars().any(char::is_alphanumeric));
            }
        }
    }
}
