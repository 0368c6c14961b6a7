//! The load benchmark's ceiling (`scripts/load-bench`): a bare hyper 1 server answering
//! every request with a 12-byte JSON body, `{"latest":0}`, on the same runtime setup as
//! `minitwit serve` (tokio multi-thread, one worker per core). What it serves per second
//! under the benchmark's load generator is what this machine can serve at all; every
//! MiniTwit figure is reported as a ratio to it, measured in the same run.
//!
//! Given a file as well, it answers with that file's bytes instead: the floor for an
//! answer of that size (a page of messages), what no server can beat on this machine.
//!
//! `cargo run --release --example ceiling -- 127.0.0.1:PORT [BODY_FILE]`

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, header};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The body `GET /latest` answers with on a fresh store.
const BODY: &[u8] = b"{\"latest\":0}";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = match std::env::args().nth(1).map(|arg| arg.parse()) {
        Some(Ok(addr)) => addr,
        _ => {
            eprintln!("usage: ceiling ADDR [BODY_FILE] (e.g. 127.0.0.1:5002)");
            std::process::exit(2);
        }
    };
    let body = match std::env::args().nth(2) {
        Some(path) => Bytes::from(std::fs::read(path)?),
        None => Bytes::from_static(BODY),
    };
    let listener = TcpListener::bind(addr).await?;
    println!("ceiling listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, body.clone()));
            // A client going away mid-request is no concern of the ceiling's.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn answer(
    _request: Request<Incoming>,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    Ok(response)
}
