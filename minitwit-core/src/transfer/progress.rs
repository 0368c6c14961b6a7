//! Progress reports while a transfer runs: the [`Progress`] trait the CLI implements with
//! progress bars, and the [`Section`]s it counts.

use super::reader::Chunk;
use super::record::Record;
use crate::model::Counts;

/// Which kind of record a transfer is moving, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Users.
    Users,
    /// Messages.
    Messages,
    /// Follow pairs.
    Follows,
}

/// Receives progress while a transfer runs (the CLI draws progress bars). Every method
/// has a no-op default; `()` reports nothing.
pub trait Progress {
    /// The transfer starts; `totals` are the source's counts when known.
    fn start(&mut self, _totals: Counts) {}
    /// `n` more records of `section` were moved.
    fn advance(&mut self, _section: Section, _n: u64) {}
    /// The data is written; the verification starts.
    fn verifying(&mut self) {}
}

impl Progress for () {}

/// The section a file record belongs to; `latest` is none.
pub(super) fn section_of(record: &Record) -> Option<Section> {
    match record {
        Record::User(_) => Some(Section::Users),
        Record::Message(_) => Some(Section::Messages),
        Record::Follow(_) => Some(Section::Follows),
        Record::Latest { .. } => None,
    }
}

/// Reports a chunk as moved.
pub(super) fn report(progress: &mut dyn Progress, chunk: &Chunk) {
    let (section, n) = match chunk {
        Chunk::Users(v) => (Section::Users, v.len()),
        Chunk::Messages(v) => (Section::Messages, v.len()),
        Chunk::Follows(v) => (Section::Follows, v.len()),
        Chunk::Latest(_) => return,
    };
    progress.advance(section, n as u64);
}
