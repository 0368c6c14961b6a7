//! The export file format: versioned, portable, streaming JSON Lines.
//!
//! ```text
//! {"format":"minitwit-export","version":1,"created":1700000000,"source":"sled"}
//! {"type":"user","id":1,"username":"alice","email":"a@x","pw_hash":"$argon2id$…","disabled":false}
//! {"type":"message","id":1,"author_id":1,"text":"hi","pub_date":1700000000,"flagged":false}
//! {"type":"follow","follower":2,"followee":1}
//! {"type":"latest","latest":25922}
//! {"type":"end","counts":{"users":1,"messages":1,"follows":1,"flagged":0},"latest":25922,"checksum":"…"}
//! ```
//!
//! Records come in export order (users by id, messages by id, follows by pair, latest at
//! most once) and every line ends with a newline. The trailer repeats the counts and the
//! [`Fingerprint`] checksum, so a truncated or edited file is detected on reading.

use super::TransferError;
use super::fingerprint::{Fingerprint, FingerprintBuilder};
use super::record::Record;
use crate::model::{Follow, MessageId, UserId};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

/// The `format` value of the header line.
pub const FORMAT: &str = "minitwit-export";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// The first line of an export file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version, [`VERSION`].
    pub version: u32,
    /// When the export was written, Unix seconds.
    #[serde(default)]
    pub created: i64,
    /// The backend the data came from (informational).
    #[serde(default)]
    pub source: String,
}

/// The last line: what the reader must have seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename = "end")]
struct Trailer {
    #[serde(flatten)]
    fingerprint: Fingerprint,
}

/// Any line after the header.
#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    End(Trailer),
    Record(Record),
}

/// Writes an export file line by line, computing the trailer as it goes.
pub struct ExportWriter<W> {
    out: W,
    fingerprint: FingerprintBuilder,
}

impl<W: AsyncWrite + Unpin> ExportWriter<W> {
    /// Starts a file: writes the header.
    pub async fn start(mut out: W, source: &str) -> Result<Self, TransferError> {
        let header = Header {
            format: FORMAT.to_owned(),
            version: VERSION,
            created: crate::model::unix_now(),
            source: source.to_owned(),
        };
        write_line(&mut out, &header).await?;
        Ok(Self { out, fingerprint: FingerprintBuilder::new() })
    }

    /// Writes one record; records must come in export order.
    pub async fn record(&mut self, record: &Record) -> Result<(), TransferError> {
        self.fingerprint.record(record);
        write_line(&mut self.out, record).await
    }

    /// Writes the trailer, flushes, and returns the fingerprint of what was written.
    pub async fn finish(mut self) -> Result<Fingerprint, TransferError> {
        let fingerprint = self.fingerprint.finish();
        write_line(&mut self.out, &Trailer { fingerprint: fingerprint.clone() }).await?;
        self.out.flush().await?;
        Ok(fingerprint)
    }
}

async fn write_line<W: AsyncWrite + Unpin>(
    out: &mut W,
    value: &impl Serialize,
) -> Result<(), TransferError> {
    // Plain structs with string keys and no maps: serializing them cannot fail.
    let mut line = serde_json::to_vec(value).expect("export records always serialize");
    line.push(b'\n');
    Ok(out.write_all(&line).await?)
}

/// The position of a record kind in export order, and the last key seen, to check that
/// records come strictly in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Position {
    Start,
    User(UserId),
    Message(MessageId),
    Follow(Follow),
    Latest,
}

impl Position {
    fn of(record: &Record) -> Self {
        match record {
            Record::User(u) => Self::User(u.id),
            Record::Message(m) => Self::Message(m.id),
            Record::Follow(f) => Self::Follow(*f),
            Record::Latest { .. } => Self::Latest,
        }
    }
}

/// Reads an export file record by record, checking the header, the order of records and,
/// at the end, the trailer's counts and checksum.
pub struct ExportReader<R> {
    input: R,
    line: u64,
    buffer: String,
    position: Position,
    fingerprint: FingerprintBuilder,
    finished: Option<Fingerprint>,
    header: Header,
}

impl<R: AsyncBufRead + Unpin> ExportReader<R> {
    /// Reads and checks the header line.
    pub async fn start(input: R) -> Result<Self, TransferError> {
        let mut reader = Self {
            input,
            line: 0,
            buffer: String::new(),
            position: Position::Start,
            fingerprint: FingerprintBuilder::new(),
            finished: None,
            header: Header { format: String::new(), version: 0, created: 0, source: String::new() },
        };
        if !reader.read_line().await? {
            return Err(TransferError::NotAnExport("the file is empty".into()));
        }
        let header: Header = serde_json::from_str(&reader.buffer).map_err(|_| {
            TransferError::NotAnExport("the first line is not a minitwit-export header".into())
        })?;
        if header.format != FORMAT {
            return Err(TransferError::NotAnExport(format!("format {:?}", header.format)));
        }
        if header.version != VERSION {
            return Err(TransferError::UnsupportedVersion(header.version));
        }
        reader.header = header;
        Ok(reader)
    }

    /// The header read.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next record, or `None` after a trailer that matches everything read.
    pub async fn next(&mut self) -> Result<Option<Record>, TransferError> {
        if self.finished.is_some() {
            return Ok(None);
        }
        if !self.read_line().await? {
            return Err(TransferError::Truncated(format!(
                "the file ends after line {} without its trailer",
                self.line - 1
            )));
        }
        let line: Line = serde_json::from_str(&self.buffer).map_err(|e| self.malformed(e))?;
        match line {
            Line::Record(record) => self.accept(record).map(Some),
            Line::End(trailer) => self.end(trailer.fingerprint).await.map(|()| None),
        }
    }

    /// Reads the rest of the file, checking it, and returns its fingerprint.
    pub async fn check_to_end(mut self) -> Result<Fingerprint, TransferError> {
        while self.next().await?.is_some() {}
        self.fingerprint()
    }

    /// The file's fingerprint, once [`ExportReader::next`] has returned `None`.
    pub fn fingerprint(&self) -> Result<Fingerprint, TransferError> {
        self.finished
            .clone()
            .ok_or_else(|| TransferError::Truncated("the trailer was not read yet".into()))
    }

    fn accept(&mut self, record: Record) -> Result<Record, TransferError> {
        let position = Position::of(&record);
        if position <= self.position {
            return Err(TransferError::Malformed {
                line: self.line,
                reason: "record out of export order (duplicate or unsorted)".into(),
            });
        }
        self.position = position;
        self.fingerprint.record(&record);
        Ok(record)
    }

    async fn end(&mut self, claimed: Fingerprint) -> Result<(), TransferError> {
        let seen = std::mem::take(&mut self.fingerprint).finish();
        if claimed != seen {
            return Err(TransferError::Malformed {
                line: self.line,
                reason: format!("the trailer says {claimed}, but the file holds {seen}"),
            });
        }
        if self.read_line().await? {
            return Err(TransferError::Malformed {
                line: self.line,
                reason: "data after the trailer".into(),
            });
        }
        self.finished = Some(seen);
        Ok(())
    }

    /// Reads the next non-empty line into the buffer; `false` at the end of the file.
    /// A last line without its newline means the file was cut short.
    async fn read_line(&mut self) -> Result<bool, TransferError> {
        loop {
            self.buffer.clear();
            let n = self.input.read_line(&mut self.buffer).await.map_err(|e| {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    TransferError::Malformed { line: self.line + 1, reason: "not UTF-8".into() }
                } else {
                    e.into()
                }
            })?;
            if n == 0 {
                return Ok(false);
            }
            self.line += 1;
            if !self.buffer.ends_with('\n') {
                return Err(TransferError::Truncated(format!(
                    "line {} is cut short (no newline)",
                    self.line
                )));
            }
            if !self.buffer.trim().is_empty() {
                return Ok(true);
            }
        }
    }

    fn malformed(&self, err: serde_json::Error) -> TransferError {
        TransferError::Malformed { line: self.line, reason: err.to_string() }
    }
}
