//! Where the simulator's scenario is kept: the course's recorded simulator traffic,
//! gzipped, in the repository's `data/`.

use std::path::{Path, PathBuf};

/// The scenario file, `data/minitwit_scenario.csv.gz` of this repository.
pub fn scenario_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/minitwit_scenario.csv.gz")
}

#[cfg(test)]
mod tests {
    use super::scenario_path;

    #[test]
    fn the_scenario_is_there() {
        assert!(scenario_path().is_file(), "{}", scenario_path().display());
    }
}
