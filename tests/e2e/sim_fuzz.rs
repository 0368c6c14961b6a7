//! Fuzzing the simulator API with schemathesis (PyPI) against the OpenAPI document the
//! server serves: no 5xx, and no response that contradicts the document (status codes,
//! content types, bodies, headers, authentication, rejection of invalid input). Bounded:
//! a fixed seed and a small number of examples per operation.
//!
//! Needs the `st` command: `scripts/fuzz-api --install` puts it in `.venv/`, and
//! `scripts/fuzz-api` runs this test with it on PATH.

use crate::support::{self, FreshStore, Setup, repository_file, require_program, spawn_app};
use minitwit_test_support::simulator;
use std::process::Stdio;

/// Examples per operation and phase: enough to reach every documented failure, few enough
/// to finish in well under a minute.
const MAX_EXAMPLES: &str = "100";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_contradiction_on_sled() {
    fuzz(support::sled().await).await;
}

/// PostgreSQL refuses some inputs sled takes (NUL in text): fuzz it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_contradiction_on_pg() {
    fuzz(support::pg().await).await;
}

/// Runs schemathesis against the API served over `store`.
async fn fuzz(store: FreshStore) {
    let st = require_program(
        "st",
        "run `scripts/fuzz-api --install` (it installs schemathesis into .venv/ and runs this \
         test), or put schemathesis's `st` on PATH",
    );
    let app = spawn_app(store, Setup::default()).await;
    // A user to find: schemathesis tries the credentials' user name in paths.
    app.api.register("simulator").await;
    let schema = app.api.url("/openapi.yaml");
    let config = repository_file("minitwit-sim/schemathesis.toml");
    let output = tokio::process::Command::new(&st)
        .arg("--config-file")
        .arg(config)
        .args(["run", &schema, "--url", &app.api.base_url()])
        .args(["--auth", simulator::CREDENTIALS])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", "20261122", "--workers", "2"])
        .args(["--generation-database", "none", "--request-timeout", "5", "--no-color"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|err| panic!("running {}: {err}", st.display()));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(output.status.success(), "schemathesis found problems:\n{report}");
}
