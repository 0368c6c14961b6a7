//! TLS end to end, with certificates the test makes (openssl): PostgreSQL over TLS with
//! `sslmode=require` and `verify-full` (and refused against the wrong authority), and
//! the nginx example of deploy/nginx terminating HTTPS in front of two replicas:
//! HTTPS in, HSTS and Secure cookies out, forwarded addresses taken from the proxy only,
//! /metrics not exposed, `minitwit replay` and `minitwit health` over HTTPS (rustls); and a replica restarted behind it the documented way (taken out
//! of nginx, then SIGTERM) with mixed reads and posts flowing: no request fails.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, Server, fails, ok, signal, terminate_mid_traffic};
use minitwit_store_pg::testkit::fresh_database_url;
use minitwit_test_support::{ServerCertificate, TestCluster, free_port};
use reqwest::{Client, StatusCode};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

fn openssl(args: &[&str], dir: &Path) {
    let output = Command::new("openssl").args(args).current_dir(dir).output();
    let output = output.expect("openssl is not installed. Fix: apt-get install openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `openssl req` with a new, unencrypted P-256 key: a signing request, or with `-x509` a
/// self-signed certificate; `args` say where they go and what they hold.
fn new_key_request(args: &[&str], dir: &Path) {
    let new_key = ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(&[&new_key[..], args].concat(), dir);
}

/// A certificate authority `NAME-ca.crt` in `dir`; with `server`, a certificate for
/// localhost and 127.0.0.1 signed by it (`server.crt`, `server.key`).
fn authority(dir: &Path, name: &str, server: bool) -> PathBuf {
    let (key, crt) = (format!("{name}-ca.key"), format!("{name}-ca.crt"));
    new_key_request(
        &[
            "-x509",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        dir,
    );
    if server {
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        new_key_request(
            &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
            dir,
        );
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                &crt,
                "-CAkey",
                &key,
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
            dir,
        );
    }
    dir.join(crt)
}

#[test]
fn postgres_over_tls_with_require_and_verify_full() {
    let scratch = Scratch::new();
    let ca = authority(scratch.dir.path(), "good", true);
    let other_ca = authority(scratch.dir.path(), "other", false);
    let certificate =
        ServerCertificate { cert: &scratch.path("server.crt"), key: &scratch.path("server.key") };
    let cluster = TestCluster::start_tls(certificate).unwrap_or_else(|e| panic!("{e}"));
    let base = format!("postgres://postgres@localhost:{}/postgres", cluster.port());

    let require = format!("{base}?sslmode=require");
    assert!(ok(&["--store", &require, "migrate"]).contains("up to date"));
    let verified = format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display());
    assert!(ok(&["--store", &verified, "stats"]).starts_with("users\t0"));
    let by_ip = verified.replace("@localhost:", "@127.0.0.1:");
    assert!(ok(&["--store", &by_ip, "migrate", "--check"]).contains("no pending"));

    // The wrong authority is refused, and so is a connection without TLS.
    let wrong = format!("{base}?sslmode=verify-full&sslrootcert={}", other_ca.display());
    let line = fails(&["--store", &wrong, "stats"]);
    assert!(line.contains("cannot open the PostgreSQL store"), "{line}");
    let line = fails(&["--store", &format!("{base}?sslmode=disable"), "stats"]);
    assert!(line.contains("cannot open the PostgreSQL store"), "{line}");

    // OPERATIONS.md's TLS commands, as an operator runs them.
    let script = crate::operations::guide_script("sh-tls");
    assert!(script.contains("verify-full"), "{script}");
    let env = [("PG_TLS_URL", base.as_str()), ("DB_CA", ca.to_str().unwrap())];
    let out = crate::operations::run_script(&script, &scratch, &env);
    assert!(out.contains("no pending migrations") && out.contains("\"users\":0"), "{out}");
}

/// nginx run from a scratch directory with deploy/nginx/minitwit.conf, its addresses and
/// paths swapped for the test's. Stopped on drop.
struct Nginx {
    child: Child,
    https: u16,
    http: u16,
    api: u16,
    conf: PathBuf,
}

impl Nginx {
    fn start(dir: &Path, replicas: &[Server; 2]) -> Self {
        let addr = |url: &str| url.trim_start_matches("http://").to_owned();
        let (web, api) =
            (replicas.each_ref().map(|r| addr(&r.web)), replicas.each_ref().map(|r| addr(&r.api)));
        let found = Command::new("sh").args(["-c", "command -v nginx"]).output().unwrap();
        assert!(found.status.success(), "nginx is not installed. Fix: apt-get install nginx");
        let (https, http, api_port) = (free_port(), free_port(), free_port());
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/minitwit.conf");
        let mut site = std::fs::read_to_string(example).unwrap();
        for (from, to) in [
            ("server 127.0.0.1:5000 ".to_owned(), format!("server {} ", web[0])),
            ("server 127.0.0.1:5010 ".to_owned(), format!("server {} ", web[1])),
            ("server 127.0.0.1:5001 ".to_owned(), format!("server {} ", api[0])),
            ("server 127.0.0.1:5011 ".to_owned(), format!("server {} ", api[1])),
            ("listen 8443 ssl".to_owned(), format!("listen 127.0.0.1:{api_port} ssl")),
            ("listen 80;".to_owned(), format!("listen 127.0.0.1:{http};")),
            ("listen 443 ssl".to_owned(), format!("listen 127.0.0.1:{https} ssl")),
            (
                "/etc/nginx/tls/minitwit.crt".to_owned(),
                dir.join("server.crt").display().to_string(),
            ),
            (
                "/etc/nginx/tls/minitwit.key".to_owned(),
                dir.join("server.key").display().to_string(),
            ),
        ] {
            assert!(site.contains(&from), "deploy/nginx/minitwit.conf lost {from:?}");
            site = site.replace(&from, &to);
            assert!(!site.contains(&from), "{from:?} appears once more than expected");
        }
        std::fs::write(dir.join("minitwit.conf"), &site).unwrap();
        let d = dir.display();
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n\
             client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             include {d}/minitwit.conf;\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).unwrap();
        let child = Command::new("nginx")
            .args(["-p", &d.to_string(), "-c", &dir.join("nginx.conf").display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Stopped by Drop, even if it never comes up.
        let nginx = Self { child, https, http, api: api_port, conf: dir.join("minitwit.conf") };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", https)).is_ok() {
                return nginx;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        panic!("nginx did not start: {log}");
    }
}

impl Nginx {
    /// Takes the upstream at `addr` out, as OPERATIONS.md says before stopping a
    /// replica: `down` on its line, then a reload (SIGHUP, as `nginx -s reload` sends),
    /// complete once the workers of the old configuration have exited.
    fn take_out(&self, addr: &str) {
        let site = std::fs::read_to_string(&self.conf).unwrap();
        let line = format!("server {addr} ");
        assert!(site.contains(&line), "{addr} is not an upstream");
        std::fs::write(&self.conf, site.replace(&line, &format!("server {addr} down "))).unwrap();
        let old_workers = self.workers();
        assert!(!old_workers.is_empty());
        signal(&self.child, "HUP");
        for _ in 0..1000 {
            if old_workers.iter().all(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nginx's old workers {old_workers:?} did not exit after the reload");
    }

    /// The worker processes' ids (the master's children).
    fn workers(&self) -> Vec<String> {
        let pid = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
        children.unwrap().split_whitespace().map(str::to_owned).collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        signal(&self.child, "TERM");
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_terminates_tls_in_front_of_two_replicas() {
    let scratch = Scratch::new();
    let ca = authority(scratch.dir.path(), "proxy", true);
    let (url, _db) = fresh_database_url().await;
    let flags = ["--secure-cookies", "--trust-forwarded-for"];
    let replicas = [Server::start(&url, &flags), Server::start(&url, &flags)];
    let nginx = Nginx::start(scratch.dir.path(), &replicas);
    let client = Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let site = format!("https://localhost:{}", nginx.https);

    // The simulator over HTTPS: `minitwit replay` (rustls) through nginx to both APIs.
    let api = format!("https://localhost:{}", nginx.api);
    let replay = crate::common::scenario_replay(&api, &["--limit", "100", "--timeout-ms", "10000"])
        .env("SSL_CERT_FILE", &ca)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "{report}{}", String::from_utf8_lossy(&replay.stderr));

    // HTTPS in; plain HTTP is sent there; HSTS out; /metrics stays internal.
    let public = client.get(format!("{site}/public")).send().await.unwrap();
    assert_eq!(public.status(), StatusCode::OK);
    assert_eq!(public.headers()["strict-transport-security"], "max-age=31536000");
    let plain = client.get(format!("http://127.0.0.1:{}/public", nginx.http)).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::MOVED_PERMANENTLY);
    assert!(plain.headers()["location"].to_str().unwrap().starts_with("https://"));
    let metrics = client.get(format!("{site}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::NOT_FOUND);
    // The binary's own HTTP client (health, replay) speaks HTTPS and checks the chain.
    let trusted = crate::common::minitwit(&["health", &site]).env("SSL_CERT_FILE", &ca).output();
    let trusted = trusted.unwrap();
    assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
    let line = fails(&["health", &site]);
    assert!(line.contains("is down"), "an unknown authority is refused: {line}");

    // Secure cookies, and the session holds on both replicas behind the proxy.
    ok(&["--store", &url, "user", "create", "alice", "a@x.org", "--password", "alice-pw"]);
    let form = [("username", "alice"), ("password", "alice-pw")];
    let login = client.post(format!("{site}/login")).form(&form).send().await.unwrap();
    assert!(login.status().is_redirection(), "{}", login.status());
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("Secure") && set_cookie.contains("HttpOnly"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    for _ in 0..4 {
        let home = client.get(format!("{site}/")).header("cookie", &cookie).send().await.unwrap();
        assert!(home.text().await.unwrap().contains("sign out [alice]"));
    }

    // The client address is the one nginx saw: a forged X-Forwarded-For (new for every
    // attempt) does not escape the per-address login throttle.
    let mut throttled = false;
    for i in 0..100 {
        let form = [("username", format!("nobody{i}")), ("password", "wrong".to_owned())];
        let attempt = client
            .post(format!("{site}/login"))
            .header("x-forwarded-for", format!("10.9.8.{i}"))
            .form(&form)
            .send()
            .await
            .unwrap();
        if attempt.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "forged X-Forwarded-For entries escaped the throttle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_restarted_behind_nginx_costs_the_clients_nothing() {
    let scratch = Scratch::new();
    let ca = authority(scratch.dir.path(), "rolling", true);
    let (url, _db) = fresh_database_url().await;
    let flags = ["--secure-cookies", "--trust-forwarded-for", "--drain-delay-secs", "2"];
    let mut replicas = [Server::start(&url, &flags), Server::start(&url, &flags)];
    let addr = |s: &Server| s.web.trim_start_matches("http://").to_owned();
    let nginx = Nginx::start(scratch.dir.path(), &replicas);
    let client = Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        // A new connection per request: nginx's reload closes its idle client
        // connections, and a POST sent on one at that instant is lost between client and
        // nginx (a keep-alive race of any reloading server, not of MiniTwit's replicas).
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let site = format!("https://localhost:{}", nginx.https);
    ok(&["--store", &url, "user", "create", "writer", "w@x.org", "--password", "writer-pw"]);
    let form = [("username", "writer"), ("password", "writer-pw")];
    let login = client.post(format!("{site}/login")).form(&form).send().await.unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap();
    let cookie = cookie.to_owned();

    let sent = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..4u64 {
        let (client, site, cookie) = (client.clone(), site.clone(), cookie.clone());
        let (sent, failures, stop) = (Arc::clone(&sent), Arc::clone(&failures), Arc::clone(&stop));
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let n = sent.fetch_add(1, Ordering::SeqCst);
                let request = if (n + worker) % 2 == 0 {
                    let text = [("text", format!("post {n}"))];
                    client.post(format!("{site}/add_message")).form(&text)
                } else {
                    client.get(format!("{site}/public"))
                };
                let outcome = request.header("cookie", &cookie).send().await;
                let fine =
                    outcome.as_ref().is_ok_and(|r| r.status().is_success() || r.status() == 302);
                if !fine {
                    failures.lock().unwrap().push(format!("{outcome:?}"));
                }
            }
        }));
    }
    let first = addr(&replicas[0]);
    let take_out = || nginx.take_out(&first);
    let status =
        terminate_mid_traffic(&mut replicas[0].child, (&sent, &stop), workers, take_out).await;
    assert!(status.success(), "the stopped replica exited cleanly: {status:?}");
    let failures = failures.lock().unwrap();
    let log = std::fs::read_to_string(scratch.path("error.log")).unwrap_or_default();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {failures:#?}\nnginx: {log}",
        failures.len(),
        sent.load(Ordering::SeqCst)
    );
}
