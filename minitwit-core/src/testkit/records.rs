//! Records for tests and benchmarks that fill a store directly (an import), where who
//! the users are does not matter.

use crate::synthetic::Shape;
use crate::{User, UserId};

/// User number `n` (id `n`) as such tests write it: named as the synthetic data sets name
/// it (`user{n}`, `user{n}@example.com`, enabled, whatever their shape), with a
/// placeholder where the password hash goes (no one signs in as these users).
pub fn numbered_user(n: i64) -> User {
    User { pw_hash: "hash".into(), ..Shape::SMALL.user(UserId(n)) }
}

#[cfg(test)]
mod tests {
    use super::numbered_user;
    use crate::model::UserId;

    #[test]
    fn a_numbered_user_is_named_by_its_id() {
        let user = numbered_user(7);
        assert_eq!((user.id, user.username.as_str()), (UserId(7), "user7"));
        assert_eq!((user.email.as_str(), user.pw_hash.as_str()), ("user7@example.com", "hash"));
        assert!(!user.disabled);
    }
}
