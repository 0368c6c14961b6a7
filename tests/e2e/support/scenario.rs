//! The facts of the simulator's real scenario ([`scenario_path`]: how many actions,
//! registrations and messages), read from the file itself rather than written down
//! again here.

use minitwit_cli::simulator::{self, ActionKind, scenario};
use minitwit_test_support::scenario_path;

/// What replaying the whole scenario does.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    /// Actions in the file.
    pub actions: u64,
    /// Users it registers.
    pub users: u64,
    /// Messages it posts.
    pub messages: u64,
}

/// The facts of the scenario file.
pub fn facts() -> Facts {
    let reader = simulator::open(&scenario_path()).expect("the scenario file opens");
    let actions = scenario::parse(reader, None).expect("the scenario parses");
    let count = |kind: ActionKind| actions.iter().filter(|a| a.kind() == kind).count();
    let as_u64 = |n: usize| u64::try_from(n).expect("a count fits u64");
    Facts {
        actions: as_u64(actions.len()),
        users: as_u64(count(ActionKind::Register)),
        messages: as_u64(count(ActionKind::Tweet)),
    }
}
