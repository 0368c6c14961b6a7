//! Which action may be sent next. Each user's actions go out in scenario order, one at a
//! time; a follow or unfollow waits until the other user's registration (if the scenario
//! registers them earlier) has completed; the scenario's last action goes out alone, after
//! every other, so the server's `latest` ends at the last id as with the sequential
//! simulator. With a concurrency of one this is exactly scenario order.

use super::scenario::{Action, ActionKind};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

/// The state of a replay's ordering constraints, over indices into the action list.
pub(crate) struct Schedule {
    /// Each acting user's not yet completed actions, in order.
    queues: HashMap<String, VecDeque<usize>>,
    /// For each action, the user whose earlier registration it waits for.
    needs: Vec<Option<String>>,
    /// Whose registration has completed.
    registered: HashSet<String>,
    /// Queue heads waiting for a user's registration, by that user.
    waiting: HashMap<String, Vec<usize>>,
    /// Queue heads that may go out now, smallest index first.
    ready: BTreeSet<usize>,
    /// Who acts in each action, and whether it registers.
    actors: Vec<(String, bool)>,
    /// Actions not yet completed.
    remaining: usize,
}

impl Schedule {
    /// The constraints of `actions`.
    pub(crate) fn new(actions: &[Action]) -> Self {
        let mut first_registration = HashMap::new();
        let mut queues: HashMap<String, VecDeque<usize>> = HashMap::new();
        for (index, action) in actions.iter().enumerate() {
            if action.kind() == ActionKind::Register {
                first_registration.entry(action.user.clone()).or_insert(index);
            }
            queues.entry(action.user.clone()).or_default().push_back(index);
        }
        let needs = actions
            .iter()
            .enumerate()
            .map(|(index, action)| {
                let target = action.target()?;
                let registered_before = first_registration.get(target).is_some_and(|&r| r < index);
                registered_before.then(|| target.to_owned())
            })
            .collect();
        let actors = actions
            .iter()
            .map(|action| (action.user.clone(), action.kind() == ActionKind::Register))
            .collect();
        let mut schedule = Self {
            queues,
            needs,
            registered: HashSet::new(),
            waiting: HashMap::new(),
            ready: BTreeSet::new(),
            actors,
            remaining: actions.len(),
        };
        let heads: Vec<usize> =
            schedule.queues.values().filter_map(|queue| queue.front().copied()).collect();
        for head in heads {
            schedule.offer(head);
        }
        schedule
    }

    /// Whether every action has completed.
    pub(crate) fn is_done(&self) -> bool {
        self.remaining == 0
    }

    /// The next action that may go out while `in_flight` others are out, if any.
    pub(crate) fn next_ready(&mut self, in_flight: usize) -> Option<usize> {
        let next = *self.ready.first()?;
        let is_last = next + 1 == self.actors.len();
        if is_last && (in_flight > 0 || self.remaining > 1) {
            return None;
        }
        self.ready.remove(&next);
        Some(next)
    }

    /// Records that action `index` completed (whatever its outcome).
    pub(crate) fn complete(&mut self, index: usize) {
        self.remaining = self.remaining.saturating_sub(1);
        let Some((user, registers)) = self.actors.get(index).cloned() else { return };
        if registers && self.registered.insert(user.clone()) {
            self.ready.extend(self.waiting.remove(&user).unwrap_or_default());
        }
        let next = self.queues.get_mut(&user).and_then(|queue| {
            queue.pop_front();
            queue.front().copied()
        });
        if let Some(next) = next {
            self.offer(next);
        }
    }

    /// A new queue head: ready now, or waiting for a registration.
    fn offer(&mut self, index: usize) {
        match self.needs.get(index).cloned().flatten() {
            Some(user) if !self.registered.contains(&user) => {
                self.waiting.entry(user).or_default().push(index);
            }
            _ => {
                self.ready.insert(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::scenario::ActionRequest;

    fn action(id: i64, user: &str, request: ActionRequest) -> Action {
        Action { id, user: user.into(), request }
    }

    fn register(id: i64, user: &str) -> Action {
        action(id, user, ActionRequest::Register { email: "e@x".into(), pwd: "p".into() })
    }

    fn follow(id: i64, user: &str, target: &str) -> Action {
        action(id, user, ActionRequest::Follow { target: target.into() })
    }

    fn tweet(id: i64, user: &str) -> Action {
        action(id, user, ActionRequest::Tweet { content: "hi".into() })
    }

    fn drain_ready(schedule: &mut Schedule, in_flight: usize) -> Vec<usize> {
        std::iter::from_fn(|| schedule.next_ready(in_flight)).collect()
    }

    #[test]
    fn users_run_in_parallel_in_their_own_order() {
        let actions =
            [register(0, "a"), register(1, "b"), tweet(2, "a"), tweet(3, "b"), tweet(4, "c")];
        let mut schedule = Schedule::new(&actions);
        assert_eq!(drain_ready(&mut schedule, 0), [0, 1]);
        schedule.complete(1);
        assert_eq!(drain_ready(&mut schedule, 1), [3]);
        schedule.complete(0);
        assert_eq!(drain_ready(&mut schedule, 1), [2]);
        schedule.complete(2);
        schedule.complete(3);
        assert_eq!(drain_ready(&mut schedule, 0), [4], "the last action goes out alone");
        schedule.complete(4);
        assert!(schedule.is_done());
    }

    #[test]
    fn follows_wait_for_the_other_registration() {
        let actions = [
            register(0, "a"),
            register(1, "b"),
            follow(2, "a", "b"),
            follow(3, "a", "z"),
            tweet(4, "b"),
        ];
        let mut schedule = Schedule::new(&actions);
        assert_eq!(drain_ready(&mut schedule, 0), [0, 1]);
        schedule.complete(0);
        assert!(drain_ready(&mut schedule, 1).is_empty(), "b is not registered yet");
        schedule.complete(1);
        assert_eq!(drain_ready(&mut schedule, 0), [2]);
        schedule.complete(2);
        assert_eq!(drain_ready(&mut schedule, 0), [3], "z is never registered: no wait");
        schedule.complete(3);
        assert_eq!(drain_ready(&mut schedule, 0), [4]);
    }

    #[test]
    fn a_single_lane_is_scenario_order() {
        let actions =
            [register(0, "a"), register(1, "b"), follow(2, "b", "a"), tweet(3, "a"), tweet(4, "b")];
        let mut schedule = Schedule::new(&actions);
        let mut order = Vec::new();
        while let Some(next) = schedule.next_ready(0) {
            order.push(next);
            schedule.complete(next);
        }
        assert_eq!(order, [0, 1, 2, 3, 4]);
        assert!(schedule.is_done());
    }
}
