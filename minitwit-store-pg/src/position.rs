//! WAL positions with their timeline, packed into the `u64` a [`ReadToken`] carries.
//!
//! A failover starts a new timeline at the promoted standby's position: the former
//! primary, and any standby that had received more of its WAL, may then stand at a
//! higher LSN than a write made on the new timeline while holding different data. So a
//! reader's position names its timeline too, and a member serves it only when it is on
//! that timeline or a later one and has replayed that far. Packing: the timeline in the
//! top 8 bits, the LSN in the low 56 (64 PiB of WAL). Beyond either range a position is
//! [`ReadToken::UNKNOWN`], whose reader is served by the primary: never wrong, only
//! slower. Tokens written before timelines were packed (timeline 0) compare by LSN alone.

use crate::store::PgStore;
use minitwit_core::consistency::ReadToken;

const LSN_BITS: u32 = 56;
const LSN_MASK: u64 = (1 << LSN_BITS) - 1;
const MAX_TIMELINE: u64 = (1 << (64 - LSN_BITS)) - 1;

/// A WAL position on a timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WalPosition {
    /// The timeline (1 for a cluster never promoted; 0: not known, as in old tokens).
    pub timeline: u64,
    /// The LSN, as a number of bytes.
    pub lsn: u64,
}

impl WalPosition {
    /// From the numbers a query returns; negative values count as 0.
    pub(crate) fn from_db(timeline: i64, lsn: i64) -> Self {
        Self {
            timeline: u64::try_from(timeline).unwrap_or(0),
            lsn: u64::try_from(lsn).unwrap_or(0),
        }
    }

    /// The token value; [`ReadToken::UNKNOWN`] when it does not fit. Ordered as (timeline,
    /// LSN), so a token's max is the later write.
    pub(crate) fn pack(self) -> u64 {
        if self.timeline >= MAX_TIMELINE || self.lsn > LSN_MASK {
            return ReadToken::UNKNOWN;
        }
        (self.timeline << LSN_BITS) | self.lsn
    }

    /// The position a token value names (meaningless for [`ReadToken::UNKNOWN`]).
    pub(crate) fn unpack(token: u64) -> Self {
        Self { timeline: token >> LSN_BITS, lsn: token & LSN_MASK }
    }

    /// Whether a member standing here has everything a reader at `needed` must see: it
    /// is on that timeline or a later one (which holds every acknowledged write of the
    /// earlier: only a synchronous standby is promoted) and has replayed that far.
    pub(crate) fn covers(self, needed: WalPosition) -> bool {
        self.timeline >= needed.timeline && self.lsn >= needed.lsn
    }
}

/// Which of the primary's WAL positions to read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Position {
    /// The insert position: at or past every commit acknowledged so far.
    Insert,
    /// The write position: what replica lag is measured against.
    Write,
}

/// The primary's WAL position of kind `which`, and its timeline (the first 8 hex digits
/// of the WAL file name, which takes the timeline the primary writes on now).
pub(crate) async fn primary_position(
    primary: &PgStore,
    which: Position,
) -> Result<WalPosition, sqlx::Error> {
    let sql = match which {
        Position::Insert => concat!(
            "SELECT (lsn - '0/0'::pg_lsn)::BIGINT, ",
            "('x' || substr(pg_walfile_name(lsn), 1, 8))::bit(32)::int::BIGINT ",
            "FROM pg_current_wal_insert_lsn() AS lsn"
        ),
        Position::Write => concat!(
            "SELECT (lsn - '0/0'::pg_lsn)::BIGINT, ",
            "('x' || substr(pg_walfile_name(lsn), 1, 8))::bit(32)::int::BIGINT ",
            "FROM pg_current_wal_lsn() AS lsn"
        ),
    };
    let (lsn, timeline): (i64, i64) = sqlx::query_as(sql).fetch_one(&primary.pool).await?;
    Ok(WalPosition::from_db(timeline, lsn))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(timeline: u64, lsn: u64) -> WalPosition {
        WalPosition { timeline, lsn }
    }

    #[test]
    fn packing_round_trips_and_orders_by_timeline_first() {
        let positions = [at(1, 0), at(1, 5_000), at(2, 100), at(255 - 1, LSN_MASK)];
        for position in positions {
            assert_eq!(WalPosition::unpack(position.pack()), position);
        }
        assert!(at(2, 100).pack() > at(1, 5_000).pack());
        assert_eq!(at(255, 1).pack(), ReadToken::UNKNOWN);
        assert_eq!(at(1, LSN_MASK + 1).pack(), ReadToken::UNKNOWN);
    }

    #[test]
    fn a_member_on_an_older_timeline_never_covers_a_newer_write() {
        // The old primary (or a standby that received more of its WAL) stands further
        // on timeline 1 than a write made on timeline 2: it does not have that write.
        assert!(!at(1, 9_000).covers(at(2, 5_000)));
        assert!(at(2, 5_000).covers(at(2, 5_000)));
        assert!(at(2, 5_000).covers(at(1, 4_000)));
        // A standby that switched timeline but has not replayed that far yet.
        assert!(!at(2, 3_000).covers(at(1, 4_000)));
        // Tokens from before timelines were packed compare by LSN.
        assert!(at(1, 4_000).covers(WalPosition::unpack(4_000)));
    }
}
