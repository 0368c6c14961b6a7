//! Fuzzing the simulator API with schemathesis (PyPI) against the OpenAPI document the
//! server serves: no 5xx, and no response that contradicts the document (status codes,
//! content types, bodies, headers, authentication, rejection of invalid input). Bounded:
//! a fixed seed and a small number of examples per operation.
//!
//! Needs the `st` command: `scripts/fuzz-api --install` puts it in `.venv/`, and
//! `scripts/fuzz-api` runs this test with it on PATH.

mod sim_support;

use minitwit_core::HashCost;
use sim_support::TestApp;
use std::path::PathBuf;
use std::process::Stdio;

/// Examples per operation and phase: enough to reach every documented failure, few enough
/// to finish in well under a minute.
const MAX_EXAMPLES: &str = "100";

/// The schemathesis command: `st` on PATH, else the repository's `.venv/bin/st`.
fn schemathesis() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/st");
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join("st")).find(|st| st.is_file())
    });
    match on_path.or_else(|| venv.is_file().then_some(venv)) {
        Some(st) => st,
        None => panic!(
            "schemathesis (the `st` command) is not installed: run `scripts/fuzz-api --install` \
             (it installs schemathesis into .venv/ and runs this test), or put `st` on PATH"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_contradiction_on_sled() {
    fuzz(sim_support::sled().await).await;
}

/// PostgreSQL refuses some inputs sled takes (NUL in text): fuzz it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_contradiction_on_pg() {
    fuzz(sim_support::pg().await).await;
}

/// Runs schemathesis against the API served over `store`.
async fn fuzz(store: (std::sync::Arc<dyn minitwit_core::Store>, sim_support::Guard)) {
    let st = schemathesis();
    let app = TestApp::spawn(store, HashCost::Insecure).await;
    // A user to find: schemathesis tries the credentials' user name in paths.
    app.register("simulator").await;
    let schema = app.url("/openapi.yaml");
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("minitwit-sim/schemathesis.toml");
    let output = tokio::process::Command::new(&st)
        .arg("--config-file")
        .arg(config)
        .args(["run", &schema, "--url", &app.base_url()])
        .args(["--auth", "simulator:super_safe!"])
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
