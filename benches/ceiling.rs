//! The load benchmark's ceiling (`scripts/load-bench`): a bare hyper 1 server answering
//! every request with a 12-byte JSON body, `{"latest":0}`, on the same runtime setup as
//! `minitwit serve` (tokio multi-thread, one worker per core). What it serves per second
//! under the benchmark's load generator is what this machine can serve at all; every
//! MiniTwit figure is reported as a ratio to it, measured in the same run.
//!
//! `cargo run --release --example ceiling -- 127.0.0.1:PORT`

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
            eprintln!("usage: ceiling ADDR (e.g. 127.0.0.1:5002)");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(addr).await?;
    println!("ceiling listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = service_fn(answer);
            // A client going away mid-request is no concern of the ceiling's.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn answer(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    Ok(response)
}
