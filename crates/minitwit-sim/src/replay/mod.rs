//! The simulator as a library. Being built.
