//! Source files, their ids, byte spans and line/column conversion.

use std::fmt;

/// Index of a file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A half-open byte range `start..end` in one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    #[must_use]
    pub fn new(file: FileId, start: u32, end: u32) -> Self {
        Span {
            file,
            start,
            end: end.max(start),
        }
    }

    /// A zero-length span at the start of a file, for problems that belong to
    /// the file as a whole (an empty file, a missing top-level key).
    #[must_use]
    pub fn file_start(file: FileId) -> Self {
        Span {
            file,
            start: 0,
            end: 0,
        }
    }

    /// The same span `delta` bytes later (earlier when negative), for
    /// text that moved because of an edit before it. Offsets saturate at
    /// the bounds of `u32`.
    #[must_use]
    pub fn shifted(self, delta: i64) -> Span {
        let at = |o: u32| u32::try_from((i64::from(o) + delta).max(0)).unwrap_or(u32::MAX);
        Span {
            file: self.file,
            start: at(self.start),
            end: at(self.end),
        }
    }

    /// The smallest span covering both `self` and `other` (same file assumed).
    #[must_use]
    pub fn cover(self, other: Span) -> Span {
        Span::new(
            self.file,
            self.start.min(other.start),
            self.end.max(other.end),
        )
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}:{}..{}", self.file.0, self.start, self.end)
    }
}

/// A 1-based line and column; the column counts Unicode scalar values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    pub line: u32,
    pub column: u32,
}

/// One source file: its display name, its text and a line index.
#[derive(Clone, Debug)]
pub struct SourceFile {
    name: String,
    text: String,
    line_starts: Vec<u32>,
}

impl SourceFile {
    #[must_use]
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0u32];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(u32::try_from(i + 1).unwrap_or(u32::MAX));
            }
        }
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Line and column of a byte offset (clamped to the file).
    #[must_use]
    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = offset.min(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let line_start = self.line_starts.get(line_idx).copied().unwrap_or(0);
        let column = self
            .text
            .get(line_start as usize..offset as usize)
            .map_or(0, |s| s.chars().count());
        LineCol {
            line: u32::try_from(line_idx + 1).unwrap_or(u32::MAX),
            column: u32::try_from(column + 1).unwrap_or(u32::MAX),
        }
    }

    /// Byte offset of a 1-based line and column (column counted in chars),
    /// clamped to the file. Used to turn locations reported by parsers that
    /// count characters into byte spans.
    #[must_use]
    pub fn offset_of(&self, line: u32, column: u32) -> u32 {
        let idx = (line.max(1) - 1) as usize;
        let Some(&start) = self.line_starts.get(idx) else {
            return u32::try_from(self.text.len()).unwrap_or(u32::MAX);
        };
        let rest = self.text.get(start as usize..).unwrap_or("");
        let mut off = start as usize;
        for (n, (i, ch)) in rest.char_indices().enumerate() {
            if n + 1 >= column as usize || ch == '\n' {
                off = start as usize + i;
                return u32::try_from(off).unwrap_or(u32::MAX);
            }
            off = start as usize + i + ch.len_utf8();
        }
        u32::try_from(off).unwrap_or(u32::MAX)
    }
}

/// All source files of one compilation, addressed by [`FileId`].
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    #[must_use]
    pub fn new() -> Self {
        SourceMap::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
        self.files.push(SourceFile::new(name, text));
        id
    }

    #[must_use]
    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(u32::try_from(i).unwrap_or(u32::MAX)), f))
    }

    /// `file:line:column` of a span's start, for messages and JSON output.
    #[must_use]
    pub fn location(&self, span: Span) -> Option<(String, LineCol)> {
        self.get(span.file)
            .map(|f| (f.name().to_owned(), f.line_col(span.start)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_chars() {
        let f = SourceFile::new("a", "ab\ncé d\n");
        assert_eq!(f.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(f.line_col(3), LineCol { line: 2, column: 1 });
        // `é` is two bytes but one column.
        assert_eq!(f.line_col(6), LineCol { line: 2, column: 3 });
        assert_eq!(f.line_col(999), LineCol { line: 3, column: 1 });
    }

    #[test]
    fn offset_of_inverts_line_col() {
        let f = SourceFile::new("a", "ab\ncé d\n");
        for off in [0u32, 1, 3, 4, 6, 7] {
            let lc = f.line_col(off);
            assert_eq!(f.offset_of(lc.line, lc.column), off, "offset {off}");
        }
    }
}
