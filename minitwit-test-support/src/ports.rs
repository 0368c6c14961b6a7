//! Free loopback ports, for servers a test starts on a port it must name in advance (a
//! server the test binds itself is better bound to port 0).

use std::io;
use std::net::TcpListener;

/// A TCP port on 127.0.0.1 that nothing listens on right now (bound, then released);
/// panics in the unlikely case that none can be had.
pub fn free_port() -> u16 {
    try_free_port().unwrap_or_else(|e| panic!("finding a free port on 127.0.0.1: {e}"))
}

/// [`free_port`], with the error for callers that report their own.
pub fn try_free_port() -> io::Result<u16> {
    TcpListener::bind("127.0.0.1:0")?.local_addr().map(|addr| addr.port())
}

#[cfg(test)]
mod tests {
    use super::free_port;

    #[test]
    fn a_free_port_can_be_bound() {
        let port = free_port();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }
}
