//! Byte offsets ↔ LSP positions (lines and UTF-16 code units).

/// The start of every line of a text, for converting positions.
#[derive(Clone, Debug)]
pub struct LineIndex {
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    #[must_use]
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex {
            starts,
            len: text.len(),
        }
    }

    /// The (line, UTF-16 column) of a byte offset (clamped to the text).
    #[must_use]
    pub fn position(&self, text: &str, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.len);
        let line = self
            .starts
            .partition_point(|s| *s <= offset)
            .saturating_sub(1);
        let start = self.starts.get(line).copied().unwrap_or(0);
        let column: usize = text
            .get(start..offset)
            .map_or(0, |s| s.chars().map(char::len_utf16).sum());
        (
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(column).unwrap_or(u32::MAX),
        )
    }

    /// The byte offset of a (line, UTF-16 column); past the end of a line
    /// means its end, past the last line the end of the text.
    #[must_use]
    pub fn offset(&self, text: &str, line: u32, column: u32) -> usize {
        let Some(&start) = self.starts.get(line as usize) else {
            return self.len;
        };
        let end = self
            .starts
            .get(line as usize + 1)
            .map_or(self.len, |next| next.saturating_sub(1));
        let mut units = 0usize;
        let line_text = text.get(start..end).unwrap_or("");
        for (i, c) in line_text.char_indices() {
            if units >= column as usize {
                return start + i;
            }
            units += c.len_utf16();
        }
        end.min(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_columns_count_surrogate_pairs_and_bmp_characters() {
        let text = "ab\né😀x\n";
        let ix = LineIndex::new(text);
        // `x` sits after é (1 unit, 2 bytes) and 😀 (2 units, 4 bytes).
        let x = text.find('x').unwrap_or(0);
        assert_eq!(ix.position(text, x), (1, 3));
        assert_eq!(ix.offset(text, 1, 3), x);
        assert_eq!(ix.offset(text, 0, 99), 2, "past the end of a line");
        assert_eq!(ix.offset(text, 9, 0), text.len(), "past the last line");
        assert_eq!(ix.position(text, text.len()), (2, 0));
    }

    #[test]
    fn every_character_boundary_round_trips() {
        for text in [
            "",
            "a",
            "\n\n",
            "rule r: allow \"é\"\n  when x == \"😀😀\"\r\n# ünï\n",
            "日本語\n\t𝄞 clef\nlast line without newline",
        ] {
            let ix = LineIndex::new(text);
            for (offset, _) in text
                .char_indices()
                .chain(std::iter::once((text.len(), ' ')))
            {
                let (line, col) = ix.position(text, offset);
                assert_eq!(ix.offset(text, line, col), offset, "{text:?} at {offset}");
            }
        }
    }
}
