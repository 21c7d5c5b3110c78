//! The checks, over every entry of a campaign in ID order (see README.md, "What it checks").

use crate::construction::{commitment, parse_seed};
use crate::entry::{decimal, short, Entry, Id};
pub use crate::table::Table;
use crate::table::{check_draw, parse_table, Draw};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Mismatches listed in the report at most (all are counted).
pub const LISTED: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedState {
    /// A revealed seed matches the commitment.
    Verified,
    /// A seed was given (reveal entry or --seed) and none matches the commitment.
    Mismatch,
    Unrevealed,
}

#[derive(Debug, Clone)]
pub struct Epoch {
    pub n: u64,
    pub from_draw: u64,
    pub commitment: String,
    pub state: SeedState,
    seed: Option<[u8; 32]>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub entries_read: usize,
    pub epochs: Vec<Epoch>,
    pub tables: Vec<Table>,
    pub draws: usize,
    pub draws_checked: usize,
    pub draws_unverifiable: usize,
    pub wins: usize,
    pub wins_checked: usize,
    /// Wins drawn before the first epoch (the campaign was not verifiable yet).
    pub wins_before_verifiable: usize,
    /// Draw entries with a prize whose win entry was not read: the first entry read (the
    /// stream trimmed between the two), so not cross-checked.
    pub draw_wins_unchecked: usize,
    pub unknown_entries: usize,
    pub mismatches: usize,
    /// The first `LISTED`: (entry ID or source, reason).
    pub listed: Vec<(String, String)>,
}

impl Report {
    pub fn mismatch(&mut self, at: impl ToString, why: impl Into<String>) {
        self.mismatches += 1;
        if self.listed.len() < LISTED {
            self.listed.push((at.to_string(), why.into()));
        }
    }
}

/// A win entry, or a draw entry with a prize, waiting for its other half: (entry ID, user,
/// prize or outcome).
type Half = (Id, Vec<u8>, Vec<u8>);

/// The checks over a campaign's entries in ID order, in two passes that keep no entry: pass 1
/// (`meta`) takes the epoch, reveal and table entries; `settle` checks the epochs and seeds;
/// pass 2 (`entry`) checks each draw and pairs each win entry with its draw entry as they come;
/// `finish` reports what stayed unpaired. Memory: the epochs and tables, the draw numbers met
/// (8 bytes each, for repeats), and the wins and draws whose other half has not been met yet
/// (the module appends a win entry right before its draw entry, so normally none or one).
pub struct Audit<'c> {
    campaign: &'c [u8],
    r: Report,
    epochs: BTreeMap<u64, Epoch>,
    tables: Vec<Table>,
    given: Vec<(u64, Vec<u8>, String)>,
    /// Tier -> (from_draw -> index in `tables`), made by `settle`.
    by_tier: HashMap<Vec<u8>, BTreeMap<u64, usize>>,
    /// (from_draw, seed) of each epoch in order, made by `settle`.
    in_force: Vec<(u64, Option<[u8; 32]>)>,
    first_from: Option<u64>,
    seen: HashSet<u64>,
    wins_waiting: HashMap<u64, Half>,
    draws_waiting: HashMap<u64, Half>,
    first: Option<Id>,
}

impl<'c> Audit<'c> {
    /// `seeds`: (epoch, seed hex) given on the command line.
    pub fn new(campaign: &'c [u8], seeds: &[(u64, String)]) -> Self {
        Audit {
            campaign,
            r: Report::default(),
            epochs: BTreeMap::new(),
            tables: Vec::new(),
            given: seeds
                .iter()
                .map(|(n, h)| (*n, h.as_bytes().to_vec(), format!("--seed {}=...", n)))
                .collect(),
            by_tier: HashMap::new(),
            in_force: Vec::new(),
            first_from: None,
            seen: HashSet::new(),
            wins_waiting: HashMap::new(),
            draws_waiting: HashMap::new(),
            first: None,
        }
    }

    /// Entries that were not read (ID or position, reason): each a mismatch.
    pub fn refused(&mut self, refused: &[(String, String)]) {
        self.r.entries_read += refused.len();
        for (at, why) in refused {
            self.r.mismatch(at, format!("entry refused: {}", why));
        }
    }

    /// Pass 1: the epoch, reveal and table entries.
    pub fn meta(&mut self, e: &Entry) {
        let r = &mut self.r;
        let Some(kind) = e.kind() else { return };
        if e.fields.first().is_none_or(|(k, _)| k != b"type") {
            return; // reported by pass 2
        }
        match kind {
            b"epoch" => {
                let n = e.get(b"epoch").and_then(decimal);
                let from = e.get(b"from_draw").and_then(decimal);
                let c = e.get(b"commitment").filter(|c| parse_seed(c).is_some());
                let (Some(n), Some(from_draw), Some(c)) = (n, from, c) else {
                    r.mismatch(e.id, "malformed epoch entry");
                    return;
                };
                let c = String::from_utf8_lossy(c).into_owned();
                if let Some(old) = self.epochs.get(&n) {
                    if old.from_draw != from_draw || old.commitment != c {
                        r.mismatch(e.id, format!("epoch {} published twice, differently", n));
                    }
                    return;
                }
                self.epochs.insert(
                    n,
                    Epoch {
                        n,
                        from_draw,
                        commitment: c,
                        state: SeedState::Unrevealed,
                        seed: None,
                    },
                );
            }
            b"reveal" => match (e.get(b"epoch").and_then(decimal), e.get(b"seed")) {
                (Some(n), Some(seed)) => {
                    self.given
                        .push((n, seed.to_vec(), format!("reveal {}", e.id)))
                }
                _ => r.mismatch(e.id, "malformed reveal entry"),
            },
            b"table" => match parse_table(e) {
                Ok(t) => self.tables.push(t),
                Err(why) => r.mismatch(e.id, why),
            },
            _ => {}
        }
    }

    /// Between the passes: the epochs' numbering, the seeds against the commitments.
    pub fn settle(&mut self) {
        let r = &mut self.r;
        // Epoch numbers run 1, 2, ... with growing from_draw: a gap is a deleted epoch entry.
        let mut prev: Option<&Epoch> = None;
        for (i, ep) in self.epochs.values().enumerate() {
            let want = prev.map_or(1, |p| p.n + 1);
            if ep.n != want && i == 0 {
                r.mismatch(
                    format!("epoch {}", ep.n),
                    format!(
                        "the first epoch entry is epoch {}, not 1: an epoch entry is missing",
                        ep.n
                    ),
                );
            } else if ep.n != want {
                r.mismatch(
                    format!("epoch {}", ep.n),
                    format!("epoch {} has no epoch entry", want),
                );
            }
            if prev.is_some_and(|p| p.from_draw > ep.from_draw) {
                r.mismatch(format!("epoch {}", ep.n), "from_draw goes back");
            }
            prev = Some(ep);
        }
        // Seeds: each must match its epoch's commitment.
        for (n, hex, from) in &self.given {
            let Some(ep) = self.epochs.get_mut(n) else {
                r.mismatch(
                    from,
                    format!("a seed for epoch {}, which has no epoch entry", n),
                );
                continue;
            };
            match parse_seed(hex) {
                Some(seed) if commitment(&seed) == ep.commitment => {
                    ep.state = SeedState::Verified;
                    ep.seed = Some(seed);
                }
                Some(_) => {
                    if ep.state != SeedState::Verified {
                        ep.state = SeedState::Mismatch;
                    }
                    r.mismatch(
                        from,
                        format!("the seed of epoch {} does not match its commitment", n),
                    );
                }
                None => r.mismatch(
                    from,
                    format!("the seed of epoch {} is not 64 lowercase hex digits", n),
                ),
            }
        }
        self.given = Vec::new();
        // The table in force for (tier, s): the latest entry of the tier with from_draw <= s.
        for (i, t) in self.tables.iter().enumerate() {
            self.by_tier
                .entry(t.tier.clone())
                .or_default()
                .insert(t.from_draw, i);
        }
        // No epoch at all: nothing can be verified (the campaign is not VERIFIABLE, or every
        // epoch entry was deleted).
        if self.epochs.is_empty() {
            r.mismatch("epochs", "no epoch entry: nothing is verifiable");
        }
        self.in_force = self
            .epochs
            .values()
            .map(|e| (e.from_draw, e.seed))
            .collect();
        self.first_from = self.in_force.first().map(|e| e.0);
    }

    /// Pass 2: every entry again, in the same order.
    pub fn entry(&mut self, e: &Entry) {
        self.r.entries_read += 1;
        if self.first.is_none() {
            self.first = Some(e.id);
        }
        let Some(kind) = e.kind() else {
            // A win entry: user prize draw.
            match (
                e.get(b"user"),
                e.get(b"prize"),
                e.get(b"draw").and_then(decimal),
            ) {
                (Some(u), Some(p), Some(s)) => self.win(e.id, u, p, s),
                _ => self
                    .r
                    .mismatch(e.id, "win entry without user, prize or draw"),
            }
            return;
        };
        if e.fields.first().is_none_or(|(k, _)| k != b"type") {
            self.r
                .mismatch(e.id, "typed entry whose first field is not type");
            return;
        }
        match kind {
            b"draw" => {
                let s = e.get(b"draw").and_then(decimal);
                match (s, e.get(b"user"), e.get(b"outcome"), e.get(b"pick")) {
                    (Some(s), Some(user), Some(outcome), Some(pick)) => self.draw(&Draw {
                        id: e.id,
                        s,
                        user,
                        outcome,
                        pick,
                        tier: e.get(b"tier").unwrap_or_default(),
                        rule: e.get(b"rule"),
                    }),
                    _ => self.r.mismatch(e.id, "malformed draw entry"),
                }
            }
            b"epoch" | b"reveal" | b"table" => {}
            _ => self.r.unknown_entries += 1,
        }
    }

    /// A win entry: paired with its draw entry (one win entry per draw entry).
    fn win(&mut self, id: Id, user: &[u8], prize: &[u8], s: u64) {
        self.r.wins += 1;
        if self.first_from.is_none_or(|f| s < f) {
            self.r.wins_before_verifiable += 1;
            return;
        }
        self.r.wins_checked += 1;
        if let Some((_, du, dout)) = self.draws_waiting.remove(&s) {
            self.pair(id, user, prize, s, &du, &dout);
        } else if self.wins_waiting.contains_key(&s) {
            self.r.mismatch(
                id,
                format!("win of draw {}: a second win entry for the same draw", s),
            );
        } else if self.seen.contains(&s) {
            self.r.mismatch(
                id,
                format!(
                    "win of draw {} (user {:?}, prize {:?}): its draw entry has no prize, or another win entry already has it",
                    s,
                    short(user),
                    short(prize)
                ),
            );
        } else {
            self.wins_waiting
                .insert(s, (id, user.to_vec(), prize.to_vec()));
        }
    }

    /// A win entry and its draw entry: the same user and prize.
    fn pair(&mut self, id: Id, user: &[u8], prize: &[u8], s: u64, du: &[u8], dout: &[u8]) {
        if du != user || dout != prize {
            self.r.mismatch(
                id,
                format!(
                    "win of draw {} (user {:?}, prize {:?}) differs from its draw entry (user {:?}, outcome {:?})",
                    s,
                    short(user),
                    short(prize),
                    short(du),
                    short(dout)
                ),
            );
        }
    }

    fn draw(&mut self, d: &Draw) {
        let r = &mut self.r;
        r.draws += 1;
        if !self.seen.insert(d.s) {
            r.mismatch(d.id, format!("draw {} appears twice", d.s));
            return;
        }
        let Some(&(_, seed)) = self.in_force.iter().rev().find(|e| e.0 <= d.s) else {
            r.mismatch(d.id, format!("draw {}: no epoch in force", d.s));
            return;
        };
        if let Some((wid, wu, wp)) = self.wins_waiting.remove(&d.s) {
            self.pair(wid, &wu, &wp, d.s, d.user, d.outcome);
        } else if !d.outcome.is_empty() {
            self.draws_waiting
                .insert(d.s, (d.id, d.user.to_vec(), d.outcome.to_vec()));
        }
        let r = &mut self.r;
        let in_force = self
            .by_tier
            .get(d.tier)
            .and_then(|m| m.range(..=d.s).next_back())
            .map(|(_, &i)| &self.tables[i]);
        let Some(t) = in_force else {
            r.mismatch(
                d.id,
                format!(
                    "draw {}: no table in force for tier {:?}",
                    d.s,
                    short(d.tier)
                ),
            );
            return;
        };
        let Some(seed) = seed else {
            r.draws_unverifiable += 1;
            return;
        };
        r.draws_checked += 1;
        check_draw(r, self.campaign, &seed, t, d);
    }

    /// What stayed unpaired, and the report.
    pub fn finish(mut self) -> Report {
        // Draws that won: each has its win entry (the module appends it right before the draw
        // entry), unless the draw entry is the first entry read (the stream was trimmed
        // between the two).
        let mut draws: Vec<(u64, Half)> = std::mem::take(&mut self.draws_waiting)
            .into_iter()
            .collect();
        draws.sort_by_key(|(_, h)| h.0);
        for (s, (id, _, outcome)) in draws {
            if Some(id) == self.first {
                self.r.draw_wins_unchecked += 1;
            } else {
                self.r.mismatch(
                    id,
                    format!("draw {} won {:?} and has no win entry", s, short(&outcome)),
                );
            }
        }
        // Wins: each has its draw entry.
        let mut wins: Vec<(u64, Half)> =
            std::mem::take(&mut self.wins_waiting).into_iter().collect();
        wins.sort_by_key(|(_, h)| h.0);
        for (s, (id, _, _)) in wins {
            self.r
                .mismatch(id, format!("win of draw {} has no draw entry", s));
        }
        let mut r = self.r;
        r.epochs = self.epochs.into_values().collect();
        r.tables = self.tables;
        r
    }
}

/// Runs every check over entries in memory. `seeds`: (epoch, seed hex) given on the command
/// line.
pub fn audit(
    campaign: &[u8],
    entries: &[Entry],
    seeds: &[(u64, String)],
    refused: &[(String, String)],
) -> Report {
    let mut a = Audit::new(campaign, seeds);
    a.refused(refused);
    for e in entries {
        a.meta(e);
    }
    a.settle();
    for e in entries {
        a.entry(e);
    }
    a.finish()
}
