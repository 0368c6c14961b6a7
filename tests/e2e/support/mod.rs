//! The one end-to-end harness: [`spawn_app`] serves the real site and the real API (as
//! `minitwit serve` does) over one fresh store on 127.0.0.1:0, and returns a [`TestApp`]
//! with a client for each; [`on_every_backend!`] runs a test once per backend, from the
//! one list of backends kept here.
//!
//! - [`site`]: the site's client (a browser-like one: cookies, no redirects followed).
//! - [`api`]: the API's client (speaks like the simulator).
//! - [`scenario`]: the simulator's scenario file and the facts read from it.
//! - [`browser`]: headless Chromium over WebDriver, the keyboard, the axe-core audit.

pub mod api;
pub mod browser;
pub mod scenario;
pub mod site;

use minitwit_core::{HashCost, MiniTwit, Store};
use minitwit_sim::SimConfig;
use minitwit_web::WebConfig;
use std::any::Any;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinHandle;
use warp::filters::BoxedFilter;
use warp::reply::Response;

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
}

impl Default for Setup {
    fn default() -> Self {
        Self { cost: HashCost::Insecure, web: |_| {} }
    }
}

/// The session key every test site uses.
const TEST_SESSION_KEY: [u8; 64] = [42; 64];

/// Both front ends over one service, and a client for each.
pub struct TestApp {
    /// The service behind both front ends, to arrange data directly.
    pub service: MiniTwit,
    /// The site's client.
    pub site: site::Site,
    /// The API's client.
    pub api: api::Api,
    servers: [JoinHandle<()>; 2],
    _guard: Guard,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.servers.iter().for_each(JoinHandle::abort);
    }
}

/// Serves the site and the API (with the course's simulator credentials) over `store`.
pub async fn spawn_app((store, guard): FreshStore, setup: Setup) -> TestApp {
    let service = MiniTwit::with_hash_cost(store, setup.cost);
    let mut web_config = WebConfig::new(TEST_SESSION_KEY.to_vec()).expect("a 64-byte key");
    (setup.web)(&mut web_config);
    let site_routes = minitwit_web::routes(service.clone(), web_config);
    let (site_addr, site_server) = serve(site_routes).await;
    let (api_addr, api_server) =
        serve(minitwit_sim::routes(service.clone(), SimConfig::default())).await;
    TestApp {
        service,
        site: site::Site::new(site_addr),
        api: api::Api::new(api_addr),
        servers: [site_server, api_server],
        _guard: guard,
    }
}

/// Serves `routes` on a free loopback port.
async fn serve(routes: BoxedFilter<(Response,)>) -> (SocketAddr, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("a bound listener has an address");
    (addr, tokio::spawn(warp::serve(routes).incoming(listener).run()))
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("bound address").port()
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
