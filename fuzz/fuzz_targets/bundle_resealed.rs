//! A valid bundle changed by the input and sealed again (body length and
//! checksum recomputed), as whoever can write the file could: the runtime
//! never panics, loads only what the full decoder accepts, and every rule
//! of a bundle it loads decodes.
//!
//! The first byte picks one of the example bundles (compiled once) and the
//! format version (2 or 3). The rest is either, after a 0xB0 byte, a whole
//! new body (the seed corpus holds the examples' bodies, which libFuzzer's
//! own mutations then change), or a list of edits of the example's body:
//! each edit is an operation byte, a 16-bit offset (modulo the body's
//! length) and an operand byte.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Marks an input whose rest is the body itself.
const WHOLE_BODY: u8 = 0xB0;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let examples = writ_fuzz::examples();
    let Some(example) = examples.get(usize::from(first & 0x7f) % examples.len()) else {
        return;
    };
    let version = if first & 0x80 == 0 { 3 } else { 2 };
    let body = match rest.split_first() {
        Some((&WHOLE_BODY, body)) => body.to_vec(),
        _ => edit(writ_fuzz::body(&example.bundle), rest),
    };
    writ_fuzz::load_and_decide(&writ_fuzz::seal(&body, version));
});

/// Applies the edits in `ops` to a copy of `body`.
fn edit(body: &[u8], ops: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    for op in ops.chunks_exact(4) {
        let &[kind, lo, hi, operand] = op else {
            continue;
        };
        if out.is_empty() {
            out.push(operand);
            continue;
        }
        let at = usize::from(u16::from_le_bytes([lo, hi])) % out.len();
        let n = usize::from(operand);
        match kind % 8 {
            0 => out[at] ^= operand,
            1 => out[at] = operand,
            2 => out.insert(at, operand),
            3 => {
                out.drain(at..(at + 1 + n % 8).min(out.len()));
            }
            // A large varint: 0xff bytes continue a varint, so a length or
            // count becomes huge.
            4 => {
                for b in out.iter_mut().skip(at).take(1 + n % 5) {
                    *b = 0xff;
                }
            }
            // Copy a run from elsewhere (a string, a record) over this place.
            5 => {
                let from = n * 7 % out.len();
                let run: Vec<u8> = out.iter().skip(from).take(1 + n % 16).copied().collect();
                for (b, r) in out.iter_mut().skip(at).zip(run) {
                    *b = r;
                }
            }
            // Duplicate a run in place (records repeated).
            6 => {
                let run: Vec<u8> = out.iter().skip(at).take(1 + n % 32).copied().collect();
                out.splice(at..at, run);
            }
            // Cut the body here.
            _ => out.truncate(at),
        }
    }
    out
}
