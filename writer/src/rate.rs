//! `--rate`: at most so many entries per second.

use std::time::{Duration, Instant};

/// Leaky bucket: `tat` is when the bucket is empty again (GCRA form).
pub struct Bucket {
    per_entry: Option<Duration>,
    tat: Instant,
}

impl Bucket {
    pub fn new(rate: u64) -> Self {
        Bucket {
            per_entry: (rate > 0).then(|| Duration::from_secs_f64(1.0 / rate as f64)),
            tat: Instant::now(),
        }
    }
    /// How long to wait before `n` more entries may go.
    pub fn wait(&self) -> Duration {
        self.tat.saturating_duration_since(Instant::now())
    }
    pub fn take(&mut self, n: usize) {
        if let Some(p) = self.per_entry {
            self.tat = self.tat.max(Instant::now()) + p * n as u32;
        }
    }
}
