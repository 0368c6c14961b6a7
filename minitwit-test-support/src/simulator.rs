//! The course simulator's credentials (HTTP Basic, `simulator` / `super_safe!`), as the
//! simulator sends them: the API's defaults, which every test speaking for the simulator
//! uses.

/// The simulator's user name.
pub const USER: &str = "simulator";

/// The simulator's password.
pub const PASSWORD: &str = "super_safe!";

/// `USER:PASSWORD`, as `curl -u` and schemathesis' `--auth` take them.
pub const CREDENTIALS: &str = "simulator:super_safe!";

/// The `Authorization` header value the simulator sends: `Basic` and [`CREDENTIALS`] in
/// base64.
pub const AUTHORIZATION: &str = "Basic c2ltdWxhdG9yOnN1cGVyX3NhZmUh";

#[cfg(test)]
mod tests {
    use super::{AUTHORIZATION, CREDENTIALS, PASSWORD, USER};
    use base64::Engine;

    #[test]
    fn the_forms_of_the_credentials_agree() {
        assert_eq!(CREDENTIALS, format!("{USER}:{PASSWORD}"));
        let encoded = base64::engine::general_purpose::STANDARD.encode(CREDENTIALS);
        assert_eq!(AUTHORIZATION, format!("Basic {encoded}"));
    }
}
