//! [`Registration`]: a complete, valid sign-up, checked in the contract's order.

use super::{Email, Password, Username, ValidationError};

/// A sign-up whose fields have all been parsed. Both front ends build it with
/// [`Registration::parse`], so the order of the error messages is the same everywhere.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The chosen name.
    pub username: Username,
    /// The address for the Gravatar picture.
    pub email: Email,
    /// The password, still in plain text; the service hashes it.
    pub password: Password,
}

impl Registration {
    /// Checks the fields in the order of CONTRACT.md §1.6: username, email, password, then the
    /// confirmation (the web form has one; the API has none, so pass `None`). Whether the
    /// name is taken is the service's check, last.
    pub fn parse(
        username: &str,
        email: &str,
        password: &str,
        confirmation: Option<&str>,
    ) -> Result<Self, ValidationError> {
        let username = Username::parse(username)?;
        let email = Email::parse(email)?;
        let password = Password::parse(password)?;
        if confirmation.is_some_and(|c| c != password.expose()) {
            return Err(ValidationError::PasswordMismatch);
        }
        Ok(Self { username, email, password })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(u: &str, e: &str, p: &str, c: Option<&str>) -> String {
        Registration::parse(u, e, p, c).unwrap_err().to_string()
    }

    #[test]
    fn errors_come_in_contract_order() {
        assert_eq!(err("", "", "", Some("x")), "You have to enter a username");
        assert_eq!(err("a", "", "", Some("x")), "You have to enter a valid email address");
        assert_eq!(err("a", "a@b", "", Some("x")), "You have to enter a password");
        assert_eq!(err("a", "a@b", "p", Some("x")), "The two passwords do not match");
        assert!(Registration::parse("a", "a@b", "p", Some("p")).is_ok());
        assert!(Registration::parse("a", "a@b", "p", None).is_ok());
    }
}
