//! Store benchmarks. (Being built: issue 2.)

fn main() {}
