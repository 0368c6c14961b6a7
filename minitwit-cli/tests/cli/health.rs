//! `minitwit health`, the container health check: 0 against a ready server, 1 with one
//! line on stderr when nothing listens or the server is not ready.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, Server, failure_line, minitwit, ok};
use std::io::{Read, Write};
use std::net::TcpListener;

#[test]
fn health_is_zero_only_when_the_server_is_ready() {
    let scratch = Scratch::new();
    let server = Server::start(&scratch.sled("db"), &[]);
    for base in [&server.web, &server.api] {
        assert!(ok(&["health", base]).contains("ready"));
    }
    // Without a URL, the web address from the environment (as in a container), on
    // loopback when it is a wildcard.
    let port = server.web.rsplit(':').next().unwrap();
    let output = minitwit(&["health"]).env("MINITWIT_WEB_ADDR", format!("0.0.0.0:{port}")).output();
    let output = output.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let url = server.web.clone();
    let (status, _) = server.stop();
    assert!(status.success());
    let line = failure_line(&minitwit(&["health", &url]).output().unwrap(), &[]);
    assert!(line.contains("is down"), "{line}");
}

#[test]
fn health_fails_on_a_server_that_answers_not_ready() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let responder = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request).unwrap();
        let body = "shutting down";
        let head = "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length:";
        write!(stream, "{head} {}\r\n\r\n{body}", body.len()).unwrap();
    });
    let output = minitwit(&["health", &url]).env("MINITWIT_HEALTH_URL", "ignored").output();
    responder.join().unwrap();
    let line = failure_line(&output.unwrap(), &[]);
    assert!(line.contains("503") && line.contains("shutting down"), "{line}");
}
