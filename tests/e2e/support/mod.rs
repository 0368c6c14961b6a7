//! The one end-to-end harness: [`spawn_app`] starts the server assembly `minitwit serve`
//! runs ([`minitwit_cli::serve`]: its listeners, layers and store wrappers) over one fresh
//! store on 127.0.0.1:0, and returns a [`TestApp`] with a client for each front end;
//! [`on_every_backend!`] runs a test once per backend, from the one list of backends kept
//! here.
//!
//! - [`site`]: the site's client (a browser-like one: cookies, no redirects followed).
//! - [`api`]: the API's client (speaks like the simulator).
//! - [`scenario`]: the simulator's scenario file and the facts read from it.
//! - [`live`]: a client of the live timelines' event streams.
//! - [`browser`]: headless Chromium over WebDriver, the keyboard, the axe-core audit.
//! - [`process`]: `minitwit serve` as a child process, for tests of several processes.

pub mod api;
pub mod browser;
pub mod live;
pub mod process;
pub mod scenario;
pub mod site;

use minitwit_cli::serve::{self, Limits, Server, Settings};
use minitwit_core::password_hash::Hasher;
use minitwit_core::{HashCost, MiniTwit, Store};
use minitwit_sim::SimConfig;
use minitwit_web::WebConfig;
use std::any::Any;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What keeps a fresh store alive (its temporary directory, its database, its server).
pub type Guard = Box<dyn Any + Send>;

/// A fresh, empty store and what keeps it alive.
pub type FreshStore = (Arc<dyn Store>, Guard);

/// Runs each listed test, an `async fn NAME(app: TestApp)`, once per backend, as
/// `BACKEND::NAME`, with the default [`Setup`]. The list of backends is the one here.
macro_rules! on_every_backend {
    ($($test:ident),+ $(,)?) => {
        on_every_backend!(@backends [sled, pg]; [$($test),+]);
    };
    (@backends [$($backend:ident),+]; $tests:tt) => {
        $( on_every_backend!(@one $backend; $tests); )+
    };
    (@one $backend:ident; [$($test:ident),+]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let store = $crate::support::$backend().await;
                    let setup = $crate::support::Setup::default();
                    super::$test($crate::support::spawn_app(store, setup).await).await;
                }
            )+
        }
    };
}

/// A fresh sled store in a temporary directory.
pub async fn sled() -> FreshStore {
    let (store, dir) = minitwit_store_sled::testkit::fresh_store().await;
    (store, Box::new(dir))
}

/// A fresh database on the test process's throwaway PostgreSQL server.
pub async fn pg() -> FreshStore {
    let (store, database) = minitwit_store_pg::testkit::fresh_store().await;
    (store, Box::new(database))
}

/// How a test app is set up; the default suits most tests.
pub struct Setup {
    /// Password hashing cost: cheap by default, the real one for realistic load.
    pub cost: HashCost,
    /// Adjusts the site's configuration (throttling quotas, say).
    pub web: fn(&mut WebConfig),
    /// What each listener allows a client: `minitwit serve`'s defaults unless a test
    /// shortens a timeout.
    pub limits: Limits,
}

impl Default for Setup {
    fn default() -> Self {
        Self { cost: HashCost::Insecure, web: |_| {}, limits: Limits::default() }
    }
}

/// The session key every test site uses.
const TEST_SESSION_KEY: [u8; 64] = [42; 64];

/// Both front ends over one service, and a client for each.
pub struct TestApp {
    /// The service behind both front ends (over the served, wrapped store), to arrange
    /// data directly.
    pub service: MiniTwit,
    /// The site's client.
    pub site: site::SiteClient,
    /// The API's client.
    pub api: api::ApiClient,
    /// Dropped before the store's guard: the listeners stop first.
    _server: Server,
    _guard: Guard,
}

/// Serves the site and the API (with the course's simulator credentials) over `store`,
/// as `minitwit serve` does.
pub async fn spawn_app((store, guard): FreshStore, setup: Setup) -> TestApp {
    let server = serve::start(store, settings(setup)).await.expect("the server starts");
    TestApp {
        service: server.service().clone(),
        site: site::SiteClient::new(server.web_addr()),
        api: api::ApiClient::new(server.api_addr()),
        _server: server,
        _guard: guard,
    }
}

/// The assembly's settings for a test: both listeners on free loopback ports.
fn settings(setup: Setup) -> Settings {
    let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let simulator = SimConfig::default();
    Settings {
        web_addr: any_port,
        api_addr: any_port,
        session_key: Some(TEST_SESSION_KEY.to_vec()),
        secure_cookies: false,
        trust_forwarded_for: false,
        sim_user: simulator.username,
        sim_password: simulator.password,
        limits: setup.limits,
        hasher: Hasher::new(setup.cost),
        gauge_interval: Duration::from_secs(15),
        idempotency_window: minitwit_core::idempotency::DEFAULT_RECEIPT_WINDOW,
        live: minitwit_web::LiveConfig::default(),
        site: setup.web,
    }
}

impl TestApp {
    /// Another client of the same site, with cookies of its own (another browser).
    pub fn another_site_client(&self) -> site::SiteClient {
        let addr = self.site.base.trim_start_matches("http://");
        site::SiteClient::new(addr.parse().expect("the site's address"))
    }

    /// Begins shutting down, as SIGTERM does: `/ready` says 503, live streams end.
    pub fn begin_shutdown(&self) {
        self._server.begin_shutdown();
    }
}

/// A file of the repository, by its path from the root.
pub fn repository_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The program `name` from PATH, or from the repository's `.venv/bin`; a loud failure
/// naming `fix` when it is in neither.
pub fn require_program(name: &str, fix: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([repository_file(".venv/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed: {fix}"))
}
