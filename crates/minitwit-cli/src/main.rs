//! The `minitwit` binary. (Being built: issue 6.)

fn main() {}
