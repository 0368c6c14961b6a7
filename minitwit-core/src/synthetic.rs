//! Synthetic data sets for benchmarks and load tests: a stated shape, generated
//! deterministically and loaded into any [`Store`] through [`Store::import`] batches (far
//! faster than one call per record).
//!
//! The shape of a data set of `U` users, `F` follows per user and `M` messages:
//! - users `1..=U` named `user{id}`;
//! - user `i` follows the `F` users `i+1, i+1+s, i+1+2s, …` (mod `U`, `s = U / F`), so
//!   every user has exactly `F` followees and `F` followers, never themselves;
//! - message `m` (`1..=M`) is by user `(m - 1) % U + 1` (round robin: `M / U` messages
//!   each), published at [`FIRST_PUB_DATE`]` + m / 3` (pub_dates increase, with ties of
//!   three), about 60 bytes of text; every 100th message is flagged;
//! - two "wide followers", users `U+1` and `U+2`, post nothing and follow
//!   [`WIDE_FOLLOWS`] (50 and 500) users `1, 1+s, 1+2s, …` (`s = U / n`; every user
//!   when `U < n`): home timelines of users who follow many people.
//!
//! A [`Graph::Social`] data set follows as people do instead: user `i` follows `F`
//! others, each drawn by a rank (the user id) that is Zipf-distributed
//! (`P(r) ∝ ln((r+1)/r)`, about `1/r`; repeats and themselves drawn again), so follower
//! counts follow a power law:
//! at 100k users and 30 draws each, the three first users have more than 50k followers
//! each and most have a handful. Its wide followers follow [`SOCIAL_WIDE_FOLLOWS`] (10
//! and 1,000) users spread over the ranks.

use crate::model::{Follow, ImportBatch};
use crate::store::StoreResult;
use crate::{Message, MessageId, Store, User, UserId};

/// The publication time of message 0 (September 2020).
pub const FIRST_PUB_DATE: i64 = 1_600_000_000;
/// Records per import call. Larger batches make sled hold larger transactions in
/// memory for no gain in speed (measured in BENCHMARKS.md, "Data shape").
pub const BATCH: usize = 1_000;

/// How many users each wide follower follows (every user, in a smaller data set).
pub const WIDE_FOLLOWS: [i64; 2] = [50, 500];
/// The same in a [`Graph::Social`] data set.
pub const SOCIAL_WIDE_FOLLOWS: [i64; 2] = [10, 1_000];

/// Who follows whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Graph {
    /// Every user follows and is followed by exactly `follows_per_user` others.
    #[default]
    Even,
    /// Followees drawn by a Zipf law over the users: follower counts follow a power law.
    Social,
}

/// The size of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Number of users.
    pub users: i64,
    /// Followees of every user.
    pub follows_per_user: i64,
    /// Number of messages.
    pub messages: i64,
    /// Who follows whom.
    pub graph: Graph,
}

impl Shape {
    /// 10k messages: 100 users, each following 10.
    pub const SMALL: Shape =
        Shape { users: 100, follows_per_user: 10, messages: 10_000, graph: Graph::Even };
    /// 1M messages: 10k users, each following 20.
    pub const LARGE: Shape =
        Shape { users: 10_000, follows_per_user: 20, messages: 1_000_000, graph: Graph::Even };
    /// The social data set: 100k users with about 30 followees each (power-law
    /// follower counts), 1M messages.
    pub const SOCIAL: Shape =
        Shape { users: 100_000, follows_per_user: 30, messages: 1_000_000, graph: Graph::Social };

    /// A short label: `10k`, `1M`.
    pub fn label(&self) -> String {
        match self.messages {
            n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
            n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
            n => n.to_string(),
        }
    }

    /// The user with this id, as generated.
    pub fn user(&self, id: UserId) -> User {
        User {
            id,
            username: format!("user{id}"),
            email: format!("user{id}@example.com"),
            // Not a real hash: these users never log in.
            pw_hash: "$argon2id$v=19$m=8,t=1,p=1$bench$bench".into(),
            disabled: false,
        }
    }

    /// Whom user `id` follows.
    pub fn followees(&self, id: UserId) -> Vec<UserId> {
        match self.graph {
            Graph::Even => {
                let (users, step) =
                    (self.users, (self.users / self.follows_per_user.max(1)).max(1));
                let count = self.follows_per_user.min(users - 1).max(0);
                (0..count).map(|j| UserId((id.0 + j * step) % users + 1)).collect()
            }
            Graph::Social => {
                let wanted = self.follows_per_user.min(self.users - 1).max(0) as usize;
                let mut followees = Vec::with_capacity(wanted);
                // Draws until `wanted` distinct others; the bound only stops a degenerate
                // shape (a few users) from drawing for long.
                for draw in 0..(wanted as i64 * 64) {
                    if followees.len() == wanted {
                        break;
                    }
                    let followee = self.zipf_rank(id, draw);
                    if followee != id && !followees.contains(&followee) {
                        followees.push(followee);
                    }
                }
                followees.sort_unstable();
                followees
            }
        }
    }

    /// A user id drawn for follower `id`'s draw number `draw`: the rank `r` in `1..=U`
    /// with probability `ln((r+1)/r) / ln(U+1)`, from a hash of the two (deterministic).
    fn zipf_rank(&self, id: UserId, draw: i64) -> UserId {
        let uniform = (mix(id.0, draw) >> 11) as f64 / (1u64 << 53) as f64;
        let rank = ((self.users as f64 + 1.0).ln() * uniform).exp().floor() as i64;
        UserId(rank.clamp(1, self.users))
    }

    /// The wide followers: for each of [`WIDE_FOLLOWS`] (or [`SOCIAL_WIDE_FOLLOWS`]),
    /// the follower's id and how many users they follow.
    pub fn wide_followers(&self) -> [(UserId, i64); 2] {
        let counts = match self.graph {
            Graph::Even => WIDE_FOLLOWS,
            Graph::Social => SOCIAL_WIDE_FOLLOWS,
        };
        let follower = |i: usize| (UserId(self.users + 1 + i as i64), counts[i].min(self.users));
        [follower(0), follower(1)]
    }

    /// The wide followers and their follows, as one import batch.
    fn wide_follower_batch(&self) -> ImportBatch {
        let followers = self.wide_followers();
        let follows = followers
            .iter()
            .flat_map(|&(follower, count)| {
                let step = self.users / count.max(1);
                (0..count).map(move |j| Follow { follower, followee: UserId(1 + j * step) })
            })
            .collect();
        ImportBatch {
            users: followers.iter().map(|&(id, _)| self.user(id)).collect(),
            follows,
            ..ImportBatch::default()
        }
    }

    /// Message `id`, as generated.
    pub fn message(&self, id: i64) -> Message {
        Message {
            id: MessageId(id),
            author_id: UserId((id - 1) % self.users + 1),
            text: format!("Message number {id} of the benchmark data set, about sixty bytes."),
            pub_date: FIRST_PUB_DATE + id / 3,
            flagged: id % 100 == 0,
        }
    }
}

/// Loads `shape` into an empty `store`: users, then follows, then messages, in batches
/// of [`BATCH`] records, then the wide followers; then ends the import, as every import
/// ends ([`Store::end_import`]).
pub async fn load(store: &dyn Store, shape: &Shape) -> StoreResult<()> {
    for users in chunks(1..=shape.users) {
        let users = users.map(|id| shape.user(UserId(id))).collect();
        store.import(ImportBatch { users, ..ImportBatch::default() }).await?;
    }
    for followers in chunks(1..=shape.users) {
        let follows = followers
            .flat_map(|follower| {
                let follower = UserId(follower);
                shape
                    .followees(follower)
                    .into_iter()
                    .map(move |followee| Follow { follower, followee })
            })
            .collect();
        store.import(ImportBatch { follows, ..ImportBatch::default() }).await?;
    }
    for messages in chunks(1..=shape.messages) {
        let messages = messages.map(|id| shape.message(id)).collect();
        store.import(ImportBatch { messages, ..ImportBatch::default() }).await?;
    }
    store.import(shape.wide_follower_batch()).await?;
    store.end_import(None).await
}

/// A well-mixed 64-bit hash of two numbers (a SplitMix64-style finalizer).
fn mix(a: i64, b: i64) -> u64 {
    let mut z = (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (b as u64).wrapping_add(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `range` in consecutive sub-ranges of at most [`BATCH`] ids.
fn chunks(
    range: std::ops::RangeInclusive<i64>,
) -> impl Iterator<Item = std::ops::RangeInclusive<i64>> {
    let (start, end) = (*range.start(), *range.end());
    let batch = BATCH as i64;
    (start..=end).step_by(BATCH).map(move |from| from..=(from + batch - 1).min(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_user_follows_the_stated_number_of_others() {
        for shape in [Shape::SMALL, Shape::LARGE] {
            for id in [1, 2, shape.users / 2, shape.users].map(UserId) {
                let mut followees = shape.followees(id);
                followees.sort_unstable();
                followees.dedup();
                assert_eq!(followees.len() as i64, shape.follows_per_user, "{shape:?} user {id}");
                assert!(followees.iter().all(|&f| f != id && (1..=shape.users).contains(&f.0)));
            }
        }
    }

    #[test]
    fn wide_followers_follow_distinct_existing_users() {
        for shape in [Shape::SMALL, Shape::LARGE] {
            let batch = shape.wide_follower_batch();
            for (follower, count) in shape.wide_followers() {
                let mut followees: Vec<_> = batch
                    .follows
                    .iter()
                    .filter(|f| f.follower == follower)
                    .map(|f| f.followee)
                    .collect();
                followees.dedup();
                assert_eq!(followees.len() as i64, count, "{shape:?} follower {follower}");
                assert!(followees.iter().all(|f| (1..=shape.users).contains(&f.0)));
            }
        }
        assert_eq!(Shape::LARGE.wide_followers(), [(UserId(10_001), 50), (UserId(10_002), 500)]);
        assert_eq!(Shape::SMALL.wide_followers(), [(UserId(101), 50), (UserId(102), 100)]);
    }

    #[test]
    fn a_social_graph_has_a_few_huge_accounts_and_many_small_ones() {
        let shape = Shape { users: 20_000, messages: 0, ..Shape::SOCIAL };
        let mut followers = vec![0_i64; shape.users as usize + 1];
        let mut follows = 0;
        for id in (1..=shape.users).map(UserId) {
            let followees = shape.followees(id);
            assert!(followees.windows(2).all(|w| w[0] < w[1]), "distinct, sorted");
            assert!(followees.iter().all(|&f| f != id && (1..=shape.users).contains(&f.0)));
            follows += followees.len() as i64;
            for followee in followees {
                followers[followee.0 as usize] += 1;
            }
        }
        let mean = follows as f64 / shape.users as f64;
        assert!((29.9..=30.0).contains(&mean), "30 followees each: {mean}");
        let huge = followers.iter().filter(|&&n| n >= shape.users / 2).count();
        assert!((2..=5).contains(&huge), "a handful followed by half the users: {huge}");
        let small = followers.iter().skip(1).filter(|&&n| n <= 10).count() as i64;
        assert!(small > shape.users / 2, "most have a few followers: {small}");
        assert_eq!(shape.followees(UserId(7)), shape.followees(UserId(7)), "deterministic");
        assert_eq!(shape.wide_followers(), [(UserId(20_001), 10), (UserId(20_002), 1_000)]);
    }

    #[test]
    fn batches_cover_the_range_once() {
        let ids: Vec<i64> = chunks(1..=2_501).flatten().collect();
        assert_eq!(ids, (1..=2_501).collect::<Vec<_>>());
        assert_eq!(chunks(1..=2_501).count(), 3);
        assert_eq!(Shape::SMALL.label(), "10k");
        assert_eq!(Shape::LARGE.label(), "1M");
    }
}
