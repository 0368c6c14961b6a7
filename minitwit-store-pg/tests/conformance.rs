//! The core's conformance suite against PostgreSQL: every rule of the `Store` contract,
//! each test on a fresh database of this process's throwaway server.

minitwit_core::conformance_tests!(minitwit_store_pg::testkit::fresh_store);
