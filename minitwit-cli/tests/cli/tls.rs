//! TLS end to end, with certificates the test makes (openssl): PostgreSQL over TLS with
//! `sslmode=require` and `verify-full` (and refused against the wrong authority), and
//! the nginx example of deploy/nginx terminating HTTPS in front of two replicas:
//! HTTPS in, HSTS and Secure cookies out, forwarded addresses taken from the proxy only,
//! /metrics not exposed.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, Server, fails, ok, signal};
use minitwit_store_pg::testkit::{ServerCertificate, TestCluster, fresh_database_url};
use reqwest::{Client, StatusCode};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// A certificate authority `NAME-ca.crt` in `dir`; with `server`, a certificate for
/// localhost and 127.0.0.1 signed by it (`server.crt`, `server.key`).
fn authority(dir: &Path, name: &str, server: bool) -> PathBuf {
    let (key, crt) = (format!("{name}-ca.key"), format!("{name}-ca.crt"));
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
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
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
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
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Nginx {
    fn start(dir: &Path, replicas: [&str; 2]) -> Self {
        let found = Command::new("sh").args(["-c", "command -v nginx"]).output().unwrap();
        assert!(found.status.success(), "nginx is not installed. Fix: apt-get install nginx");
        let (https, http) = (free_port(), free_port());
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/minitwit.conf");
        let mut site = std::fs::read_to_string(example).unwrap();
        for (from, to) in [
            ("server 127.0.0.1:5000 ".to_owned(), format!("server {} ", replicas[0])),
            ("server 127.0.0.1:5010 ".to_owned(), format!("server {} ", replicas[1])),
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
        }
        std::fs::write(dir.join("minitwit.conf"), site).unwrap();
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
        let nginx = Self { child, https, http };
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
    let addr = |s: &Server| s.web.trim_start_matches("http://").to_owned();
    let nginx = Nginx::start(scratch.dir.path(), [&addr(&replicas[0]), &addr(&replicas[1])]);
    let client = Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let site = format!("https://localhost:{}", nginx.https);

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
