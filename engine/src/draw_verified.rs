//! VERIFIABLE draws' pick (`pick_verified`, called by `plan` for a verifiable campaign):
//! `x` from the epoch seed's words over the prefix sums of the table in force, then the
//! rules from the next words, as docs/verifiable.md states; and the bookkeeping of the tables
//! the command layer published in the wins stream.

use super::campaign::{Campaign, SoldOut};
use super::users::UserLife;
use super::verify::{self, Hmac, Words, SEED_LEN};
use sha2::{Digest, Sha256};

/// A table's fingerprint: SHA-256 (first 16 bytes) of its prize ids and weights, in order
/// (NOTHING's weight last), so a table entry is published again only when one of them
/// changed.
pub(crate) fn table_fingerprint(prizes: &[super::campaign::Prize], weights: &[u32]) -> u128 {
    let mut h = Sha256::new();
    for p in prizes {
        h.update((p.id.len() as u64).to_le_bytes());
        h.update(&p.id);
    }
    for w in weights {
        h.update(w.to_le_bytes());
    }
    let d: [u8; 32] = h.finalize().into();
    let mut f = [0u8; 16];
    f.copy_from_slice(&d[..16]);
    u128::from_le_bytes(f)
}

/// The rule that made a verifiable draw's outcome differ from its table pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickRule {
    Guarantee,
    Redraw,
    Fallback,
    Soldout,
}

impl PickRule {
    pub fn name(self) -> &'static str {
        match self {
            PickRule::Guarantee => "guarantee",
            PickRule::Redraw => "redraw",
            PickRule::Fallback => "fallback",
            PickRule::Soldout => "soldout",
        }
    }
}

/// What a verifiable draw that passed the checks picked, for its stream entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedPick {
    /// The draw number (the words' `s`).
    pub draw: u64,
    /// The table entry `x` fell in: a prize's index, or `prizes().len()` for NOTHING (also
    /// for a table whose weights all came to 0, which takes no word).
    pub entry: usize,
    /// The rule that changed the outcome from the pick, if one did.
    pub rule: Option<PickRule>,
    /// The tier whose table was in force (index in `rules().tiers`).
    pub tier: Option<usize>,
    /// The table in force differs from the last one published for its tier name: the
    /// command layer appends a table entry (`table_weights_in_force`) before the draw's
    /// entries, then calls `note_published`.
    pub publish: bool,
    /// The current seed was revealed: the draw used the fresh seed it was given, and the
    /// command layer starts the new epoch (`start_epoch`) before committing.
    pub new_epoch: bool,
}

/// The verifiable inputs of a draw: the campaign's key name at draw time (raw bytes), and a
/// fresh seed for a new epoch in case the current seed was revealed.
#[derive(Clone, Copy, Debug)]
pub struct DrawKey<'a> {
    pub key: &'a [u8],
    pub fresh_seed: Option<&'a [u8; SEED_LEN]>,
}

impl Campaign {
    /// `pick` of a VERIFIABLE campaign, with the words of draw `seq`: `x` first (uniform
    /// below the total of the table in force, prefix sums), then GUARANTEE's pick from the
    /// next words if the user reached it, else `resolve` of `x`'s entry (REDRAW's picks from
    /// the next words too). Returns the outcome and what the stream entries say of it.
    pub(crate) fn pick_verified(
        &mut self,
        tier: Option<usize>,
        life: &UserLife,
        now: i64,
        key: DrawKey<'_>,
        seq: u64,
    ) -> (Option<usize>, VerifiedPick) {
        if self.table_verify.0.is_empty() {
            self.table_dirty = true;
        }
        self.ensure_table(now);
        let tier = tier.filter(|&t| t < self.rules.tiers.len());
        if let Some(t) = tier {
            self.ensure_tier(t, now);
        }
        let n = self.prizes.len();
        let (seed, new_epoch) = match (self.verify, key.fresh_seed) {
            (Some(v), Some(f)) if v.revealed => (*f, true),
            (Some(v), _) => (v.seed, false),
            (None, _) => ([0; SEED_LEN], false),
        };
        if self.seed_mac.as_ref().is_none_or(|m| m.0 != seed) {
            self.seed_mac = Some(Box::new((seed, Hmac::new(&seed))));
        }
        let mut words = match &self.seed_mac {
            Some(m) => Words::with_mac(&m.1, key.key, seq),
            None => Words::new(&seed, key.key, seq),
        };
        let (prefix, fp) = self.verify_table(tier);
        let entry = verify::table_pick(prefix, &mut words).unwrap_or(n);
        let nth = life.draws.saturating_add(1);
        let mut outcome = None;
        let mut rule = None;
        if let Some(g) = &self.rules.guarantee {
            if life.since_win.saturating_add(1) >= g.n {
                if let Some(i) = self.guaranteed_pick(tier, nth, now, &mut words) {
                    outcome = Some(i);
                    rule = Some(PickRule::Guarantee);
                }
            }
        }
        if rule.is_none() {
            outcome = self.resolve(entry, tier, nth, now, &mut words, true);
            if entry < n && !self.winnable(entry, nth, now) {
                let available = self.prizes[entry].available(self.rules.window, now);
                rule = Some(match self.rules.soldout {
                    SoldOut::Redraw if available => PickRule::Redraw,
                    SoldOut::Fallback => PickRule::Fallback,
                    _ => PickRule::Soldout,
                });
            }
        }
        let picked = (entry < n).then_some(entry);
        if outcome == picked {
            rule = None;
        }
        let name: &[u8] = match tier.and_then(|t| self.rules.tiers.get(t)) {
            Some(t) => &t.name,
            None => b"",
        };
        let publish = !self
            .published
            .iter()
            .any(|(t, f)| t.as_slice() == name && *f == fp);
        (
            outcome,
            VerifiedPick {
                draw: seq,
                entry,
                rule,
                tier,
                publish,
                new_epoch,
            },
        )
    }

    /// The prefix sums and fingerprint of the table in force (see `table_in_force`).
    pub(crate) fn verify_table(&self, tier: Option<usize>) -> (&[u64], u128) {
        let built = tier
            .and_then(|t| self.tier_tables.get(t)?.as_ref())
            .is_some();
        match tier.and_then(|t| self.tier_verify.get(t)?.as_ref()) {
            Some((p, f)) if built => (p, *f),
            _ => (&self.table_verify.0, self.table_verify.1),
        }
    }

    /// The weights of the table a verifiable draw on `tier` used (prizes in table order,
    /// NOTHING last; REDRAW's zeros included): what its table entry lists.
    pub fn table_weights_in_force(&self, tier: Option<usize>) -> &[u32] {
        self.table_in_force(tier.filter(|&t| t < self.rules.tiers.len()))
            .1
    }

    /// Notes the table in force for `tier` as published in the wins stream (host
    /// bookkeeping: a later draw on the same table publishes nothing).
    pub fn note_published(&mut self, tier: Option<usize>) {
        let tier = tier.filter(|&t| t < self.rules.tiers.len());
        let fp = self.verify_table(tier).1;
        let name = match tier.and_then(|t| self.rules.tiers.get(t)) {
            Some(t) => t.name.clone(),
            None => Vec::new(),
        };
        match self.published.iter_mut().find(|(t, _)| *t == name) {
            Some(e) => e.1 = fp,
            None => {
                // Names of tiers removed since are forgotten: at most one entry a tier, plus
                // the base table.
                let tiers = &self.rules.tiers;
                self.published
                    .retain(|(t, _)| t.is_empty() || tiers.iter().any(|x| x.name == *t));
                self.published.push((name, fp));
            }
        }
    }
}
