//! CONFIGURE: creating a campaign and changing it atomically (validate everything, then
//! apply), the prize table's replacement by id, and the rebuild of the lookups by id after a
//! decoder filled the state.

use super::campaign::{Campaign, ConfigChange, IdEntry, Prize, PrizeSpec, Rules, SoldOut, NO_SLOT};
use super::limits::{
    MAX_NAMES, MAX_PRIZES, MAX_TIERS, MAX_TIER_WEIGHTS, MAX_VERIFIABLE_REDRAW_PRIZES,
};
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    NeedPrize,
    AllWeightsZero,
    TooManyPrizes,
    /// The table would take the campaign past `MAX_NAMES` distinct prize ids.
    TooManyNames,
    DuplicatePrize(Vec<u8>),
    UnknownFallback(Vec<u8>),
    /// PACE names a prize that is not in the resulting table, or one with INF stock.
    BadPace(Vec<u8>, &'static str),
    PaceNeedsWindow,
    /// GUARANTEE or a TIER names a prize that is not in the resulting table.
    NotInTable(&'static str, Vec<u8>),
    /// A tier's weights, NOTHING included, all come to 0.
    TierAllZero(Vec<u8>),
    TooManyTiers,
    /// The tiers' PRIZE-WEIGHT entries, all tiers together, past `MAX_TIER_WEIGHTS`.
    TooManyTierWeights,
    /// A CONFIGURE would drop a code prize that has unused codes, or make it a counted one.
    CodesLeft(Vec<u8>, u64),
    /// A VERIFIABLE campaign with SOLDOUT REDRAW past `MAX_VERIFIABLE_REDRAW_PRIZES` prizes.
    VerifiableRedrawTooLarge,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::NeedPrize => write!(f, "a new campaign needs at least one PRIZE"),
            ConfigError::AllWeightsZero => {
                write!(
                    f,
                    "all weights are zero: at least one PRIZE or NOTHING weight must be positive"
                )
            }
            ConfigError::TooManyPrizes => write!(f, "too many prizes (at most {MAX_PRIZES})"),
            ConfigError::TooManyNames => write!(
                f,
                "too many distinct prize ids over the campaign's life (at most {MAX_NAMES}, \
                 every id ever configured is kept): reuse ids or start a new campaign"
            ),
            ConfigError::DuplicatePrize(id) => {
                write!(f, "duplicate prize '{}'", crate::parse::shown(id))
            }
            ConfigError::UnknownFallback(id) => write!(
                f,
                "FALLBACK prize '{}' is not in the prize table",
                crate::parse::shown(id)
            ),
            ConfigError::BadPace(id, why) => {
                write!(f, "PACE prize '{}' {why}", crate::parse::shown(id))
            }
            ConfigError::NotInTable(what, id) => write!(
                f,
                "{what} prize '{}' is not in the prize table",
                crate::parse::shown(id)
            ),
            ConfigError::TierAllZero(name) => write!(
                f,
                "TIER '{}': all weights are zero (NOTHING included)",
                crate::parse::shown(name)
            ),
            ConfigError::TooManyTiers => write!(f, "too many tiers (at most {MAX_TIERS})"),
            ConfigError::TooManyTierWeights => write!(
                f,
                "too many PRIZE-WEIGHT entries (at most {MAX_TIER_WEIGHTS} over all tiers)"
            ),
            ConfigError::CodesLeft(id, n) => write!(
                f,
                "prize '{}' has {n} unused codes: LOTTERY.CODES REMOVE them first",
                crate::parse::shown(id)
            ),
            ConfigError::VerifiableRedrawTooLarge => write!(
                f,
                "a VERIFIABLE campaign with SOLDOUT REDRAW may have at most \
                 {MAX_VERIFIABLE_REDRAW_PRIZES} prizes (each sell-out republishes the whole \
                 table in the wins stream): use SOLDOUT LOSE or FALLBACK, or fewer prizes"
            ),
            ConfigError::PaceNeedsWindow => {
                write!(
                    f,
                    "PACE needs a WINDOW (the span the stock is released over)"
                )
            }
        }
    }
}

impl Campaign {
    /// Creates a campaign (CONFIGURE on a missing key). `default_stream` is used unless the
    /// change names one.
    pub fn create(
        change: &ConfigChange,
        seed: (u64, u64),
        default_stream: Vec<u8>,
    ) -> Result<Campaign, ConfigError> {
        if change.prizes.as_ref().is_none_or(|p| p.is_empty()) {
            return Err(ConfigError::NeedPrize);
        }
        let mut c = Campaign::empty(seed, Rules::defaults(default_stream));
        c.configure(change)?;
        Ok(c)
    }

    /// Changes the campaign atomically: validates everything first, then applies.
    pub fn configure(&mut self, change: &ConfigChange) -> Result<(), ConfigError> {
        let mut rules = self.rules.clone();
        if let Some(v) = change.nothing {
            rules.nothing = v;
        }
        if let Some(v) = change.cooldown_ms {
            rules.cooldown_ms = v;
        }
        if let Some(v) = change.daily {
            rules.daily = v;
        }
        if let Some(v) = change.maxwins {
            rules.maxwins = v;
        }
        if let Some(v) = change.dayoffset_min {
            rules.dayoffset_min = v;
        }
        if let Some(v) = change.window {
            rules.window = Some(v);
        }
        if let Some((p, f)) = &change.soldout {
            rules.soldout = *p;
            rules.fallback = f.clone();
        }
        if let Some(v) = &change.stream {
            rules.stream = v.clone();
            rules.stream_default = false;
        }
        if let Some(v) = change.idempotency_ms {
            rules.idempotency_ms = v;
        }
        if let Some(v) = change.rate {
            rules.rate = v;
        }
        if let Some(v) = change.admit {
            rules.admit = v;
        }
        if let Some(v) = change.client_limit {
            rules.client_limit = v;
        }
        if let Some(v) = change.penalty_ms {
            rules.penalty_ms = v;
        }
        if let Some(v) = &change.guarantee {
            rules.guarantee = v.clone();
        }
        if let Some(v) = change.total {
            rules.total = v;
        }
        if let Some(v) = change.period {
            rules.period = v;
        }
        // Removals first, so a command may drop a tier and define another on a full set.
        let (off, on): (Vec<_>, Vec<_>) = change.tiers.iter().partition(|(_, t)| t.is_none());
        for (name, t) in off.into_iter().chain(on) {
            let at = rules.tiers.iter().position(|x| &x.name == name);
            match (at, t) {
                (Some(i), Some(t)) => rules.tiers[i] = t.clone(),
                (None, Some(t)) => {
                    if rules.tiers.len() >= MAX_TIERS {
                        return Err(ConfigError::TooManyTiers);
                    }
                    rules.tiers.push(t.clone());
                }
                (Some(i), None) => {
                    rules.tiers.remove(i);
                }
                (None, None) => {}
            }
        }
        // The prize table the change leads to: a new one, or the current one (valid as it
        // is: ids unique and indexed).
        let table = change.prizes.as_deref();
        let len = table.map_or(self.prizes.len(), |p| p.len());
        if len == 0 {
            return Err(ConfigError::NeedPrize);
        }
        if len > MAX_PRIZES {
            return Err(ConfigError::TooManyPrizes);
        }
        let verifiable = self.verify.is_some() || change.verifiable.is_some();
        if verifiable && rules.soldout == SoldOut::Redraw && len > MAX_VERIFIABLE_REDRAW_PRIZES {
            return Err(ConfigError::VerifiableRedrawTooLarge);
        }
        let mut seen: HashMap<&[u8], usize> = HashMap::new();
        if let Some(p) = table {
            seen.reserve(p.len());
            for (i, s) in p.iter().enumerate() {
                if seen.insert(&s.id, i).is_some() {
                    return Err(ConfigError::DuplicatePrize(s.id.clone()));
                }
            }
        }
        // Position of a prize id in the resulting table, and whether that prize has INF stock.
        let position = |id: &[u8]| match table {
            Some(_) => seen.get(id).copied(),
            None => self.prize_index(id),
        };
        let inf = |i: usize| match table {
            Some(p) => p[i].stock.is_none() && !p[i].codes,
            None => self.prizes[i].stock.is_none(),
        };
        let weights: u64 = match table {
            Some(p) => p.iter().map(|s| u64::from(s.weight)).sum(),
            None => self.prizes.iter().map(|p| u64::from(p.weight)).sum(),
        };
        if weights + u64::from(rules.nothing) == 0 {
            return Err(ConfigError::AllWeightsZero);
        }
        // Ids GUARANTEE and the tiers name when they are given must be in the table; ids
        // they name that a later table drops are passed over (and count again if the prize
        // comes back).
        if let Some(Some(g)) = &change.guarantee {
            if let Some(id) = g.prizes.iter().find(|id| position(id).is_none()) {
                return Err(ConfigError::NotInTable("GUARANTEE", id.clone()));
            }
        }
        for (_, t) in &change.tiers {
            if let Some(id) = t
                .iter()
                .flat_map(|t| t.weights.iter())
                .map(|(id, _)| id)
                .find(|id| position(id).is_none())
            {
                return Err(ConfigError::NotInTable("TIER", id.clone()));
            }
        }
        let tier_weights: usize = rules.tiers.iter().map(|t| t.weights.len()).sum();
        if tier_weights > MAX_TIER_WEIGHTS {
            return Err(ConfigError::TooManyTierWeights);
        }
        // Every tier's weights, as the resulting table gives them, must not all be 0.
        let base_weight = |i: usize| match table {
            Some(p) => p[i].weight,
            None => self.prizes[i].weight,
        };
        for t in &rules.tiers {
            let mut total = u64::from(t.nothing.unwrap_or(rules.nothing));
            let mut listed = 0u64;
            for (id, w) in &t.weights {
                if let Some(i) = position(id) {
                    total += u64::from(*w);
                    listed += u64::from(base_weight(i));
                }
            }
            if total + weights - listed == 0 {
                return Err(ConfigError::TierAllZero(t.name.clone()));
            }
        }
        // A code prize keeps its unused codes: it may not leave the table or stop being one
        // while it has some.
        if let Some(p) = table {
            for old in self.prizes.iter().filter(|o| o.codes && o.stock != Some(0)) {
                let stays = seen.get(old.id.as_slice()).is_some_and(|&i| p[i].codes);
                if !stays {
                    return Err(ConfigError::CodesLeft(
                        old.id.clone(),
                        old.stock.unwrap_or(0),
                    ));
                }
            }
        }
        if rules.soldout == SoldOut::Fallback {
            match &rules.fallback {
                Some(f) if position(f).is_some() => {}
                Some(f) => return Err(ConfigError::UnknownFallback(f.clone())),
                None => return Err(ConfigError::UnknownFallback(Vec::new())),
            }
        }
        for (id, on) in &change.pace {
            match position(id) {
                None => {
                    return Err(ConfigError::BadPace(
                        id.clone(),
                        "is not in the prize table",
                    ))
                }
                Some(i) if *on && inf(i) => {
                    return Err(ConfigError::BadPace(id.clone(), "has INF stock"))
                }
                _ => {}
            }
        }
        // Paced after the change: a prize given PACE LINEAR (the last clause for a prize
        // wins), or a paced prize staying in the table without a PACE clause.
        let pace: HashMap<&[u8], bool> = change
            .pace
            .iter()
            .map(|(id, on)| (id.as_slice(), *on))
            .collect();
        let paced_after = pace.values().any(|&on| on)
            || self.ids.paced.iter().any(|&i| {
                let id = self.prizes[i as usize].id.as_slice();
                !pace.contains_key(id) && position(id).is_some()
            });
        if paced_after && rules.window.is_none() {
            return Err(ConfigError::PaceNeedsWindow);
        }
        // Each id the campaign never had takes a name for good (counted only near the limit).
        if let Some(p) = table {
            if self.names.len() + p.len() > MAX_NAMES {
                let fresh = p
                    .iter()
                    .filter(|s| !self.ids.by_id.contains_key(s.id.as_slice()))
                    .count();
                if self.names.len() + fresh > MAX_NAMES {
                    return Err(ConfigError::TooManyNames);
                }
            }
        }
        drop(seen);
        drop(pace);
        // Valid: apply.
        if let Some(p) = &change.prizes {
            self.replace_prizes(p);
        }
        for (id, on) in &change.pace {
            if let Some(i) = self.prize_index(id) {
                self.prizes[i].paced = *on;
            }
        }
        self.index_paced();

        if rules.stream != self.rules.stream {
            // A new wins stream holds none of the tables published so far.
            self.published.clear();
        }
        self.rules = rules;
        self.table_dirty = true;
        self.users.set_lifetime(self.needs_lifetime());
        if let (Some(Some(log)), Some(v)) = (change.verifiable, self.verify.as_mut()) {
            v.log = log;
        }
        Ok(())
    }

    /// Installs a new prize table (validated, within `MAX_NAMES`). Prizes keep their counters
    /// and pacing by id; prizes dropped from the table are retired with their counters (DRAIN
    /// still owes the pending sales; a prize that comes back keeps its sold count). O(old +
    /// new table) hash lookups, plus one pass over the retired prizes when some come back or
    /// leave (and a binary search among them for each id of the table the campaign had before
    /// but not in its current table).
    fn replace_prizes(&mut self, specs: &[PrizeSpec]) {
        let mut old = std::mem::take(&mut self.prizes);
        let mut kept = vec![false; old.len()];
        // Retired prizes coming back, by index in `retired`.
        let mut back: Vec<usize> = Vec::new();
        let mut prizes = Vec::with_capacity(specs.len());
        // Ids are unique in `specs`: each entry is read (its old slot) and moved to its new
        // slot once; the entries of prizes leaving the table are cleared after.
        let mut grown = false;
        for (i, s) in specs.iter().enumerate() {
            let slot = i as u32;
            let mut id = None;
            let (name, sold, pending, paced) = match self.ids.by_id.get_mut(s.id.as_slice()) {
                Some(e) if e.slot != NO_SLOT => {
                    let o = e.slot as usize;
                    e.slot = slot;
                    kept[o] = true;
                    let p = &mut old[o];
                    // The kept prize's id moves over (it is not needed in `old` any more).
                    id = Some(std::mem::take(&mut p.id));
                    (e.name, p.sold, p.pending, p.paced)
                }
                Some(e) => {
                    e.slot = slot;
                    let name = e.name;
                    match self.retired_index(&s.id) {
                        Some(r) => {
                            back.push(r);
                            let p = &self.retired[r];
                            (name, p.sold, p.pending, false)
                        }
                        None => (name, 0, 0, false),
                    }
                }
                None => {
                    if !grown {
                        // Room for the rest of the table at once, rather than growing (and
                        // rehashing) step by step through a table of new ids.
                        grown = true;
                        self.ids.by_id.reserve(specs.len() - i);
                        self.names.reserve(specs.len() - i);
                    }
                    self.names.push(s.id.clone());
                    let name = self.names.len() as u32;
                    self.ids.by_id.insert(s.id.clone(), IdEntry { name, slot });
                    (name, 0, 0, false)
                }
            };
            // A code prize's stock is its unused codes.
            let stock = if s.codes {
                Some(self.codes.unused(name))
            } else {
                s.stock
            };
            prizes.push(Prize {
                id: id.unwrap_or_else(|| s.id.clone()),
                name,
                weight: s.weight,
                stock,
                sold,
                pending,
                paced: paced && stock.is_some(),
                after: s.after,
                codes: s.codes,
            });
        }
        for (p, _) in old.iter().zip(&kept).filter(|(_, k)| !**k) {
            if let Some(e) = self.ids.by_id.get_mut(p.id.as_slice()) {
                e.slot = NO_SLOT;
            }
        }
        self.prizes = prizes;
        let mut leaving: Vec<Prize> = old
            .into_iter()
            .zip(kept)
            .filter(|(_, k)| !k)
            .map(|(p, _)| Prize {
                weight: 0,
                stock: Some(0),
                paced: false,
                after: 0,
                ..p
            })
            .collect();
        if !back.is_empty() {
            back.sort_unstable();
            let mut next = back.iter().copied().peekable();
            let mut at = 0;
            self.retired.retain(|_| {
                let stays = next.next_if_eq(&at).is_none();
                at += 1;
                stays
            });
        }
        if !leaving.is_empty() {
            // `retired` stays sorted by id: merge the two sorted runs.
            leaving.sort_unstable_by(|a, b| a.id.cmp(&b.id));
            let stay = std::mem::take(&mut self.retired);
            let mut merged = Vec::with_capacity(stay.len() + leaving.len());
            let mut a = stay.into_iter().peekable();
            let mut b = leaving.into_iter().peekable();
            loop {
                let from_a = match (a.peek(), b.peek()) {
                    (Some(x), Some(y)) => x.id < y.id,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => break,
                };
                merged.extend(if from_a { a.next() } else { b.next() });
            }
            self.retired = merged;
        }
    }

    /// Index in `retired` (sorted by id) of a retired prize.
    fn retired_index(&self, id: &[u8]) -> Option<usize> {
        self.retired
            .binary_search_by(|p| p.id.as_slice().cmp(id))
            .ok()
    }

    /// Rebuilds the list of paced prizes (after the table or a prize's pacing changed).
    fn index_paced(&mut self) {
        self.ids.paced.clear();
        self.ids.paced.extend(
            self.prizes
                .iter()
                .enumerate()
                .filter(|(_, p)| p.paced)
                .map(|(i, _)| i as u32),
        );
    }

    /// Rebuilds the lookups by id from `names`, `prizes` and `retired` as a decoder filled
    /// them, checking what they rely on: names unique, every prize and retired prize named by
    /// its own id, no id both in the table and retired. Sorts `retired` by id if needed.
    pub(crate) fn reindex(&mut self) -> Result<(), &'static str> {
        if self.names.len() > MAX_NAMES {
            return Err("too many prize names");
        }
        let mut by_id = HashMap::with_capacity(self.names.len());
        for (i, n) in self.names.iter().enumerate() {
            let e = IdEntry {
                name: i as u32 + 1,
                slot: NO_SLOT,
            };
            if by_id.insert(n.clone(), e).is_some() {
                return Err("duplicate prize name");
            }
        }
        for (i, p) in self.prizes.iter().enumerate() {
            match by_id.get_mut(p.id.as_slice()) {
                Some(e) if e.name == p.name && e.slot == NO_SLOT => e.slot = i as u32,
                Some(e) if e.name == p.name => return Err("duplicate prize id"),
                _ => return Err("prize name mismatch"),
            }
        }
        if !self.retired.is_sorted_by(|a, b| a.id < b.id) {
            self.retired.sort_by(|a, b| a.id.cmp(&b.id));
        }
        for (i, p) in self.retired.iter().enumerate() {
            match by_id.get(p.id.as_slice()) {
                Some(e) if e.name == p.name && e.slot == NO_SLOT => {}
                Some(e) if e.name == p.name => return Err("duplicate prize id"),
                _ => return Err("prize name mismatch"),
            }
            if i > 0 && self.retired[i - 1].id == p.id {
                return Err("duplicate prize id");
            }
        }
        self.ids.by_id = by_id;
        self.index_paced();
        self.table_dirty = true;
        Ok(())
    }
}
