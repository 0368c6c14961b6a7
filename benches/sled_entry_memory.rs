//! What sled 0.34 keeps resident for every entry it stores, beyond its page cache: the
//! floor under a sled store's memory as it grows (BENCHMARKS.md, "Memory").
//!
//! ```text
//! cargo run --release --example sled_entry_memory -- [TREES] [ENTRIES] [CACHE_MIB]
//! ```
//!
//! Inserts ENTRIES (default 400,000) keys in ascending order, as a post's id, date and
//! author keys arrive, into each of TREES trees (default 4: what a post writes in
//! `minitwit-store-sled`), each value 100 bytes, in a fresh store with a CACHE_MIB page
//! cache (default 8, `--sled-cache-mb`'s default), flushing every 64 inserts. Prints the
//! process's resident set every 100,000 entries per tree, and the growth per entry past
//! the first 100,000, when the cache is full.

use std::error::Error;

/// Bytes of each value: about a post's record.
const VALUE_BYTES: usize = 100;
/// Entries between two reports of the resident set.
const REPORT_EVERY: u64 = 100_000;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let mut next = |default: u64| -> Result<u64, Box<dyn Error>> {
        Ok(args.next().map_or(Ok(default), |arg| arg.parse())?)
    };
    let (trees, entries, cache_mib) = (next(4)?, next(400_000)?, next(8)?);
    let dir = tempfile::tempdir()?;
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(cache_mib * 1024 * 1024)
        .flush_every_ms(None)
        .open()?;
    let trees =
        (0..trees).map(|i| db.open_tree(format!("tree{i}"))).collect::<Result<Vec<_>, _>>()?;
    let value = [7u8; VALUE_BYTES];
    let mut full_cache = None;
    println!("start: {} kB resident", resident_kib()?);
    for key in 1..=entries {
        for tree in &trees {
            tree.insert(key.to_be_bytes(), &value[..])?;
        }
        if key % 64 == 0 {
            db.flush()?;
        }
        if key % REPORT_EVERY == 0 {
            let kib = resident_kib()?;
            println!("{key} entries per tree: {kib} kB resident");
            full_cache.get_or_insert((key, kib));
        }
    }
    if let Some((from, kib)) = full_cache.filter(|(from, _)| *from < entries) {
        let grown = resident_kib()?.saturating_sub(kib) * 1024;
        let added = (entries - from) * trees.len() as u64;
        println!("past {from}: {} bytes resident per entry added", grown / added.max(1));
    }
    Ok(())
}

/// The process's resident set (`VmRSS`), in KiB.
fn resident_kib() -> Result<u64, Box<dyn Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).ok_or("no VmRSS value")?.parse()?)
}
