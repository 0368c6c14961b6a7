//! The core's conformance suite against a fresh durable sled store per test.

minitwit_core::conformance_tests!(minitwit_store_sled::testkit::fresh_store);
