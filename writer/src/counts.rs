//! What a writer has done, for the `progress` and `stopped` lines.

#[derive(Default, Clone)]
pub struct Counts {
    pub read: u64,
    pub inserted: u64,
    pub duplicates: u64,
    pub acked: u64,
    pub deleted: u64,
    pub malformed: u64,
    /// Typed entries (lottery_verify_log): rows new, already there, malformed for their type.
    pub verify_inserted: u64,
    pub verify_duplicates: u64,
    pub verify_malformed: u64,
    pub recovered: u64,
    pub claimed: u64,
    pub batches: u64,
    pub drains_stored: u64,
    pub drains_skipped: u64,
    pub drains_empty: u64,
    pub errors: u64,
    /// Transient failures retried (Redis or the database).
    pub retries: u64,
}

impl Counts {
    /// The `key=value` fields of a `progress` / `stopped` line.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        [
            ("read", self.read),
            ("inserted", self.inserted),
            ("duplicates", self.duplicates),
            ("acked", self.acked),
            ("recovered", self.recovered),
            ("claimed", self.claimed),
            ("deleted", self.deleted),
            ("malformed", self.malformed),
            ("verify_inserted", self.verify_inserted),
            ("verify_duplicates", self.verify_duplicates),
            ("verify_malformed", self.verify_malformed),
            ("batches", self.batches),
            ("drains_stored", self.drains_stored),
            ("drains_skipped", self.drains_skipped),
            ("drains_empty", self.drains_empty),
            ("errors", self.errors),
            ("retries", self.retries),
        ]
        .into_iter()
        .map(|(k, n)| (k, n.to_string()))
        .collect()
    }

    pub fn add(&mut self, o: &Counts) {
        self.read += o.read;
        self.inserted += o.inserted;
        self.duplicates += o.duplicates;
        self.acked += o.acked;
        self.deleted += o.deleted;
        self.malformed += o.malformed;
        self.verify_inserted += o.verify_inserted;
        self.verify_duplicates += o.verify_duplicates;
        self.verify_malformed += o.verify_malformed;
        self.recovered += o.recovered;
        self.claimed += o.claimed;
        self.batches += o.batches;
        self.drains_stored += o.drains_stored;
        self.drains_skipped += o.drains_skipped;
        self.drains_empty += o.drains_empty;
        self.errors += o.errors;
        self.retries += o.retries;
    }
}
