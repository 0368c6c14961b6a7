//! Parse-don't-validate newtypes for everything a client sends us.
//!
//! Front ends turn raw strings into these once, at the edge; the service and the stores
//! accept only the parsed types. Each parse error's `Display` is the exact text of
//! CONTRACT.md (§1.6, §2), because existing clients and test suites match on it.

mod email;
mod message_text;
mod page_size;
mod password;
mod registration;
mod username;

pub use email::Email;
pub use message_text::MessageText;
pub use page_size::PageSize;
pub use password::Password;
pub use registration::Registration;
pub use username::Username;

/// Why a piece of client input was refused. `Display` is the text shown to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The username field was empty.
    #[error("You have to enter a username")]
    UsernameMissing,
    /// The username is longer than [`Username::MAX_CHARS`].
    #[error("The username may be at most 64 characters long")]
    UsernameTooLong,
    /// The username contains `/` or a control character, or starts or ends with a space.
    #[error(
        "The username may not contain '/' or control characters, nor start or end with a space"
    )]
    UsernameBadCharacter,
    /// The username holds an invisible or text-direction character, has no letter or
    /// digit (names like `.`, `..` or a lone mark that look like nothing or like another),
    /// so it could impersonate another user.
    #[error(
        "The username must contain a letter or digit and no invisible or text-direction characters"
    )]
    UsernameUnreadable,
    /// The username is a path the web front end routes itself.
    #[error("The username is reserved")]
    UsernameReserved,
    /// The email is empty, has no `@`, or is absurdly long.
    #[error("You have to enter a valid email address")]
    EmailInvalid,
    /// The password field was empty.
    #[error("You have to enter a password")]
    PasswordMissing,
    /// The password is longer than [`Password::MAX_BYTES`].
    #[error("The password may be at most 1024 bytes long")]
    PasswordTooLong,
    /// The password confirmation differs from the password.
    #[error("The two passwords do not match")]
    PasswordMismatch,
    /// The message text is empty or only white space.
    #[error("The message may not be empty")]
    MessageEmpty,
    /// The message text is longer than [`MessageText::MAX_CHARS`].
    #[error("The message may be at most 1000 characters long")]
    MessageTooLong,
    /// The message text contains a control character other than tab or line break.
    #[error("The message may not contain control characters")]
    MessageBadCharacter,
    /// A page size (`no`) that is not a non-negative integer.
    #[error("The number of items must be a non-negative integer")]
    PageSizeInvalid,
    /// An `Idempotency-Key` that is empty, longer than
    /// [`IdempotencyKey::MAX_LEN`](crate::idempotency::IdempotencyKey::MAX_LEN) or not visible ASCII.
    #[error("The Idempotency-Key must be 1 to 255 visible ASCII characters")]
    IdempotencyKeyInvalid,
}
