//! Key encoding: signed integers as big-endian bytes with the sign bit flipped, so that
//! sled's byte order is numeric order and composite keys sort field by field.
//!
//! Every index key is a concatenation of such 8-byte fields, so "newest first" is a
//! reverse range scan and "everything of one author" is a prefix range.

use minitwit_core::{MessageId, UserId};
use sled::IVec;

/// A timeline position: `(pub_date, id)`, the last two fields of a timeline index key.
pub(crate) type Position = (i64, MessageId);

/// A position with its index entry's value: the message record (stores written before
/// format 2 have empty values there; the message is then read from `messages`).
pub(crate) type Found = (Position, IVec);

/// What a key field is made of: a plain number, or one of the core's ids.
pub(crate) trait Number: Copy {
    /// The number the field encodes.
    fn number(self) -> i64;
    /// The value a decoded field holds.
    fn from_number(number: i64) -> Self;
}

impl Number for i64 {
    fn number(self) -> i64 {
        self
    }

    fn from_number(number: i64) -> Self {
        number
    }
}

impl Number for UserId {
    fn number(self) -> i64 {
        self.0
    }

    fn from_number(number: i64) -> Self {
        Self(number)
    }
}

impl Number for MessageId {
    fn number(self) -> i64 {
        self.0
    }

    fn from_number(number: i64) -> Self {
        Self(number)
    }
}

/// Width of one encoded field.
pub(crate) const FIELD: usize = 8;

/// The 8 bytes of one field.
fn bytes(value: i64) -> [u8; FIELD] {
    // Flipping the sign bit maps i64::MIN..=i64::MAX onto 0..=u64::MAX in order.
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

/// A key of the given fields, in order.
fn fields<const N: usize>(values: [i64; N]) -> IVec {
    let key: Vec<u8> = values.into_iter().flat_map(bytes).collect();
    IVec::from(key)
}

/// One `i64` as an order-preserving 8-byte key.
pub(crate) fn int(value: impl Number) -> IVec {
    IVec::from(&bytes(value.number())[..])
}

/// Two fields: `(a, b)`.
pub(crate) fn pair(a: impl Number, b: impl Number) -> IVec {
    fields([a.number(), b.number()])
}

/// Three fields: `(a, b, c)`.
pub(crate) fn triple(a: impl Number, b: impl Number, c: impl Number) -> IVec {
    fields([a.number(), b.number(), c.number()])
}

/// The `index`-th field of a composite key, if the key is long enough.
pub(crate) fn field<T: Number>(key: &[u8], index: usize) -> Option<T> {
    let bytes: [u8; FIELD] = key.get(index * FIELD..(index + 1) * FIELD)?.try_into().ok()?;
    Some(T::from_number((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_is_numeric_order() {
        let values = [i64::MIN, -5, -1, 0, 1, 7, 1 << 40, i64::MAX];
        for w in values.windows(2) {
            assert!(int(w[0]) < int(w[1]), "{} < {}", w[0], w[1]);
        }
        assert!(pair(1, i64::MAX) < pair(2, i64::MIN));
        assert!(triple(3, -1, 9) < triple(3, 0, 0));
    }

    #[test]
    fn fields_decode() {
        let key = triple(-4, 1_582_246_860, 42);
        assert_eq!(
            (field::<i64>(&key, 0), field(&key, 1), field(&key, 2)),
            (Some(-4), Some(1_582_246_860), Some(42))
        );
        assert_eq!(field::<i64>(&key, 3), None);
    }
}
