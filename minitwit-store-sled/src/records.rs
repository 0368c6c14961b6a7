//! How user and message records are stored: a compact fixed binary layout, behind a
//! version byte. Stores written by earlier builds hold JSON records, which start with
//! `{`; both forms are read, new records are always written in binary.
//!
//! | record | bytes |
//! |---|---|
//! | message | `0x01`, id, author id, pub_date (each `i64` big-endian), flagged (`0`/`1`), the text (UTF-8, to the end) |
//! | user | `0x01`, id (`i64` big-endian), disabled (`0`/`1`), username length (`u32` big-endian), username, email length (`u32`), email, pw_hash (UTF-8, to the end) |
//!
//! Decoding reads the fields in place; the only allocations are the record's strings.
//! (JSON cost about 15 % of the CPU of a timeline page: every message and author on the
//! page was parsed again on every request.)

use crate::trees::corrupt;
use minitwit_core::store::StoreResult;
use minitwit_core::{Message, MessageId, User, UserId};

/// The first byte of a binary record of the current layout. JSON records start with
/// `{`, so the two can never be confused.
const BINARY: u8 = 0x01;

/// The first byte of a JSON record (as earlier builds wrote them).
const JSON: u8 = b'{';

/// A record kept in a sled tree.
pub(crate) trait Record: Sized + serde::de::DeserializeOwned {
    /// What the record is called in corruption errors.
    const WHAT: &'static str;
    /// Appends the binary form (without the version byte) to `out`.
    fn write(&self, out: &mut Vec<u8>);
    /// Reads the binary form (after the version byte).
    fn read(bytes: &mut Reader<'_>) -> Option<Self>;
    /// Roughly the encoded size, to allocate once.
    fn size_hint(&self) -> usize;
}

/// Encodes a record in the current binary layout.
pub(crate) fn encode<T: Record>(record: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + record.size_hint());
    out.push(BINARY);
    record.write(&mut out);
    out
}

/// Decodes a record in either form.
pub(crate) fn decode<T: Record>(bytes: &[u8]) -> StoreResult<T> {
    match bytes.first() {
        Some(&BINARY) => {
            let mut reader = Reader(&bytes[1..]);
            T::read(&mut reader).ok_or_else(|| corrupt(T::WHAT))
        }
        Some(&JSON) => serde_json::from_slice(bytes)
            .map_err(|e| corrupt(&format!("{} in JSON ({e})", T::WHAT))),
        _ => Err(corrupt(T::WHAT)),
    }
}

/// The unread rest of a binary record.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn int(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn flag(&mut self) -> Option<bool> {
        match self.take(1)? {
            [0] => Some(false),
            [1] => Some(true),
            _ => None,
        }
    }

    fn string(&mut self) -> Option<String> {
        let len = u32::from_be_bytes(self.take(4)?.try_into().ok()?);
        let bytes = self.take(usize::try_from(len).ok()?)?;
        Some(std::str::from_utf8(bytes).ok()?.to_owned())
    }

    fn rest(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.0);
        Some(std::str::from_utf8(rest).ok()?.to_owned())
    }
}

fn put_string(out: &mut Vec<u8>, value: &str) -> Option<()> {
    out.extend_from_slice(&u32::try_from(value.len()).ok()?.to_be_bytes());
    out.extend_from_slice(value.as_bytes());
    Some(())
}

impl Record for Message {
    const WHAT: &'static str = "a message record";

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0.to_be_bytes());
        out.extend_from_slice(&self.author_id.0.to_be_bytes());
        out.extend_from_slice(&self.pub_date.to_be_bytes());
        out.push(u8::from(self.flagged));
        out.extend_from_slice(self.text.as_bytes());
    }

    fn read(bytes: &mut Reader<'_>) -> Option<Self> {
        Some(Message {
            id: MessageId(bytes.int()?),
            author_id: UserId(bytes.int()?),
            pub_date: bytes.int()?,
            flagged: bytes.flag()?,
            text: bytes.rest()?,
        })
    }

    fn size_hint(&self) -> usize {
        25 + self.text.len()
    }
}

impl Record for User {
    const WHAT: &'static str = "a user record";

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0.to_be_bytes());
        out.push(u8::from(self.disabled));
        // Names and addresses are validated to a few hundred bytes at most; a string
        // past 4 GiB cannot reach here.
        let fits = put_string(out, &self.username).and_then(|()| put_string(out, &self.email));
        debug_assert!(fits.is_some(), "a username or email over 4 GiB");
        out.extend_from_slice(self.pw_hash.as_bytes());
    }

    fn read(bytes: &mut Reader<'_>) -> Option<Self> {
        Some(User {
            id: UserId(bytes.int()?),
            disabled: bytes.flag()?,
            username: bytes.string()?,
            email: bytes.string()?,
            pw_hash: bytes.rest()?,
        })
    }

    fn size_hint(&self) -> usize {
        17 + self.username.len() + self.email.len() + self.pw_hash.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: UserId(-7),
            username: "Bøb Å {".to_owned(),
            email: "b@example.com".to_owned(),
            pw_hash: "$argon2id$v=19$...".to_owned(),
            disabled: true,
        }
    }

    fn message() -> Message {
        Message {
            id: MessageId(1 << 40),
            author_id: UserId(3),
            text: "kept <&> 🦀 {\"json\": 1}".to_owned(),
            pub_date: -86_400,
            flagged: true,
        }
    }

    #[test]
    fn records_round_trip_in_binary() {
        let (u, m) = (user(), message());
        assert_eq!(encode(&u)[0], BINARY);
        assert_eq!(decode::<User>(&encode(&u)).expect("decodes"), u);
        assert_eq!(decode::<Message>(&encode(&m)).expect("decodes"), m);
        let empty = Message { text: String::new(), ..m };
        assert_eq!(decode::<Message>(&encode(&empty)).expect("decodes"), empty);
    }

    #[test]
    fn json_records_of_earlier_builds_still_decode() {
        let (u, m) = (user(), message());
        let json_user = serde_json::to_vec(&u).expect("json");
        let json_message = serde_json::to_vec(&m).expect("json");
        assert_eq!(decode::<User>(&json_user).expect("decodes"), u);
        assert_eq!(decode::<Message>(&json_message).expect("decodes"), m);
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let bytes = encode(&user());
        for cut in 0..bytes.len() - user().pw_hash.len() {
            assert!(decode::<User>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode::<Message>(&encode(&message())[..20]).is_err());
        assert!(decode::<Message>(&[0x02, 0, 0]).is_err(), "an unknown version byte");
        let mut bad_flag = encode(&message());
        bad_flag[25] = 9;
        assert!(decode::<Message>(&bad_flag).is_err());
    }
}
