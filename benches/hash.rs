//! Password hashing: one Argon2id hash in each of the configurations OWASP lists as equally
//! strong (19 MiB and 2 passes, 12 and 3, 9 and 4, 7 and 5; one lane each), in a buffer
//! reused across hashes as the server's hashing pool reuses it. The figures chose
//! `HashCost::Recommended` (minitwit-core's `password_hash`): the least memory was also
//! the fastest here (BENCHMARKS.md, "Memory").
//!
//! ```text
//! cargo bench --bench hash
//! ```

use argon2::{Algorithm, Argon2, Block, Params, Version};
use criterion::{BenchmarkId, Criterion};

/// OWASP's Argon2id configurations of one strength: memory in KiB, passes.
const CONFIGURATIONS: [(u32, u32); 4] =
    [(19 * 1024, 2), (12 * 1024, 3), (9 * 1024, 4), (7 * 1024, 5)];

fn hashes(c: &mut Criterion) {
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(20);
    for (memory_kib, passes) in CONFIGURATIONS {
        let params =
            Params::new(memory_kib, passes, 1, None).expect("OWASP's parameters are valid");
        let mut buffer = vec![Block::default(); params.block_count()];
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let id = BenchmarkId::new("hash", format!("{} MiB, {passes} passes", memory_kib / 1024));
        group.bench_function(id, |b| {
            let mut out = [0u8; 32];
            b.iter(|| {
                argon2
                    .hash_password_into_with_memory(
                        b"]=)[X{Km{z",
                        b"0123456789abcdef",
                        &mut out,
                        &mut buffer,
                    )
                    .expect("hashing succeeds")
            });
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    hashes(&mut criterion);
    criterion.final_summary();
}
