//! The timing loop of the benches that print their own tables (`decision`,
//! `shapes`): the median of timed batches, each long enough to hide the
//! clock's cost, so that writ and its peers are measured alike.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How many batches are timed and how long each takes.
#[derive(Clone, Copy, Debug)]
pub struct Timer {
    /// Timed batches (after one warm-up batch); the median is reported.
    pub batches: usize,
    /// A batch repeats the call until it takes about this long.
    pub batch: Duration,
}

impl Timer {
    /// 21 batches of about 10 ms: the decision bench's loop.
    pub const STANDARD: Timer = Timer {
        batches: 21,
        batch: Duration::from_millis(10),
    };

    /// 5 batches of about 2 ms, for a smoke run.
    pub const QUICK: Timer = Timer {
        batches: 5,
        batch: Duration::from_millis(2),
    };

    /// Median nanoseconds per call of `f`.
    pub fn median_ns(self, mut f: impl FnMut()) -> f64 {
        // Size a batch; the sizing runs serve as the warm-up.
        let mut batch = 1u64;
        loop {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            if t.elapsed() >= self.batch || batch >= 1 << 24 {
                break;
            }
            batch *= 2;
        }
        let samples = (0..self.batches.max(1)).map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed().as_nanos() as f64 / batch as f64
        });
        median(samples.collect())
    }
}

/// Median nanoseconds per call of `f`, with [`Timer::STANDARD`].
pub fn median_ns(f: impl FnMut()) -> f64 {
    Timer::STANDARD.median_ns(f)
}

/// Median microseconds to load `bytes` with `Runtime::from_vec` (what
/// `Runtime::load` does after reading the file) over `samples` loads, the
/// drop of each runtime left out of its time.
///
/// # Panics
/// When the bundle does not load (a bug in the bench's policy).
#[must_use]
pub fn median_load_us(bytes: &[u8], samples: usize) -> f64 {
    let loads = (0..samples.max(1)).map(|_| {
        let owned = bytes.to_vec();
        let t = Instant::now();
        let rt = writ_runtime::Runtime::from_vec(black_box(owned));
        let elapsed = t.elapsed().as_nanos() as f64;
        assert!(rt.is_ok(), "the bench's bundle must load");
        drop(black_box(rt));
        elapsed
    });
    median(loads.collect()) / 1000.0
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}
