//! `minitwit replay`: the simulator client of minitwit-sim, run against a live API.
//! (Waits for minitwit-sim's replay module to land on main.)

use crate::cli::ReplayArgs;
use anyhow::Result;
use std::io::Write;

/// Replays the scenario and prints the report.
pub async fn run(_args: &ReplayArgs, _out: &mut impl Write) -> Result<()> {
    anyhow::bail!("replay is not available in this build yet")
}
