//! The JSON Lines sink: one canonical record per line, appended.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use super::verify::{Problem, Verifier, VerifyReport, parse_line};
use super::{AuditError, BackgroundSync, Batch, ChainHead, Sink};

/// Appends records to a JSON Lines file, one write per batch.
#[derive(Debug)]
pub struct JsonlSink {
    file: File,
    path: PathBuf,
    head: ChainHead,
}

impl JsonlSink {
    /// Opens (or creates) a log for appending. An existing log's chain is
    /// continued from its last record. A final line cut short by a crash
    /// (no newline: it was never acknowledged by `flush`) is cut off.
    ///
    /// # Errors
    /// [`AuditError::Io`] when the file cannot be opened, read or cut;
    /// [`AuditError::Corrupt`] when its last line is not a record.
    pub fn open(path: impl AsRef<Path>) -> Result<JsonlSink, AuditError> {
        let path = path.as_ref().to_path_buf();
        let io = |source: io::Error| AuditError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io)?;
        // Before the tail is looked at (and perhaps cut): a second writer
        // would cut the first one's line in progress.
        super::error::lock_writer(&file, &path)?;
        let last = last_line(&mut file).map_err(io)?;
        let head = match last {
            None => ChainHead::GENESIS,
            Some(line) => {
                let info = parse_line(&line).map_err(|why| {
                    AuditError::Corrupt {
                        path: path.clone(),
                        why: format!(
                            "the last line is not an audit record ({why}); run `writ audit verify` on it and start a new log"
                        ),
                    }
                })?;
                ChainHead {
                    seq: info.seq,
                    hash: info.hash,
                }
            }
        };
        Ok(JsonlSink { file, path, head })
    }

    /// The file this sink appends to.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Sink for JsonlSink {
    fn head(&mut self) -> io::Result<ChainHead> {
        Ok(self.head)
    }

    fn write_batch(&mut self, batch: &Batch) -> io::Result<()> {
        self.file.write_all(batch.bytes())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Syncs through a second handle on the file, so the disk catches up
    /// while the writer appends.
    fn background_sync(&mut self) -> Option<BackgroundSync> {
        let file = self.file.try_clone().ok()?;
        Some(Box::new(move || file.sync_data()))
    }
}

/// The last complete line of a file (without its newline); cuts off an
/// unterminated final line first.
fn last_line(file: &mut File) -> io::Result<Option<Vec<u8>>> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    // Read growing chunks from the end until two newlines (or the start)
    // bound the last complete line.
    let mut chunk = 4096u64;
    loop {
        let start = len.saturating_sub(chunk);
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        std::io::Read::by_ref(file)
            .take(len - start)
            .read_to_end(&mut buf)?;
        // End of the last complete line: the last newline.
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            if start == 0 {
                // No complete line at all: the whole file is a torn tail.
                file.set_len(0)?;
                return Ok(None);
            }
            chunk *= 2;
            continue;
        };
        let begin = buf
            .get(..end)
            .and_then(|b| b.iter().rposition(|&b| b == b'\n'))
            .map(|i| i + 1);
        let begin = match begin {
            Some(b) => b,
            None if start == 0 => 0,
            None => {
                chunk *= 2;
                continue;
            }
        };
        let complete = start + end as u64 + 1;
        if complete < len {
            file.set_len(complete)?;
        }
        return Ok(buf.get(begin..end).map(<[u8]>::to_vec));
    }
}

/// Verifies a JSON Lines log.
///
/// # Errors
/// [`AuditError::Io`] when the file cannot be read. Tampering is not an
/// error: it is in the report.
pub fn verify_jsonl(path: impl AsRef<Path>) -> Result<VerifyReport, AuditError> {
    let path = path.as_ref();
    let io = |source: io::Error| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path).map_err(io)?);
    let mut verifier = Verifier::new("line");
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(io)? == 0 {
            break;
        }
        n += 1;
        match line.strip_suffix(b"\n") {
            Some(l) => verifier.record(n, l),
            None => verifier.tail(n, line.len()),
        }
    }
    let report = verifier.finish();
    // A file none of whose lines is a record is another file (a typo in
    // the path), not a log whose every record was damaged: say so once
    // instead of listing every line. One record that reads is enough to
    // report the rest as damage.
    let malformed = report
        .problems
        .iter()
        .filter(|p| matches!(p, Problem::Malformed { .. }))
        .count();
    if report.records > 0 && u64::try_from(malformed).is_ok_and(|m| m == report.records) {
        let why = report.problems.iter().find_map(|p| match p {
            Problem::Malformed { why, .. } => Some(why.as_str()),
            _ => None,
        });
        return Err(AuditError::NotALog {
            path: path.to_path_buf(),
            why: format!(
                "none of its {} lines is a writ audit record (line 1: {})",
                report.records,
                why.unwrap_or("unreadable")
            ),
        });
    }
    Ok(report)
}
