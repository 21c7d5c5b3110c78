//! Administration: GRANT, RESTOCK, PAUSE, BAN/UNBAN, DRAIN, CODES, and the wins stream
//! following its key (COPY, a restore in another slot). Each change returns the effect to
//! replicate.

use super::campaign::Campaign;
use super::codes::AddResult;
use super::effect::Effect;
use super::keyslot;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpError {
    NoSuchPrize(Vec<u8>),
    InfStock(Vec<u8>),
    BelowZero,
    Overflow,
    /// RESTOCK of a code prize (its stock is its codes).
    CodePrize(Vec<u8>),
    /// LOTTERY.CODES on a prize that is not a code prize.
    NotCodePrize(Vec<u8>),
    /// The pool would go past `MAX_CODES`.
    TooManyCodes,
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpError::NoSuchPrize(id) => {
                write!(f, "no such prize '{}'", crate::parse::shown(id))
            }
            OpError::InfStock(id) => {
                write!(f, "prize '{}' has INF stock", crate::parse::shown(id))
            }
            OpError::BelowZero => write!(f, "stock would go below zero"),
            OpError::Overflow => write!(f, "stock would exceed 9223372036854775807"),
            OpError::CodePrize(id) => write!(
                f,
                "prize '{}' is a code prize: its stock is its codes (LOTTERY.CODES)",
                crate::parse::shown(id)
            ),
            OpError::NotCodePrize(id) => write!(
                f,
                "prize '{}' is not a code prize (PRIZE id weight CODES)",
                crate::parse::shown(id)
            ),
            OpError::TooManyCodes => write!(
                f,
                "too many codes (at most {} per prize, handed out included)",
                crate::limits::MAX_CODES
            ),
        }
    }
}

impl Campaign {
    pub fn grant(&mut self, user: u128, n: u32, cap: Option<u32>) -> (u32, Effect) {
        let mut d = self.users.get(user).unwrap_or_default();
        let raised = d.bonus.saturating_add(n);
        d.bonus = match cap {
            Some(m) => raised.min(m.max(d.bonus)),
            None => raised,
        };
        self.users.insert(user, d);
        (d.bonus, Effect::User { user, day: d })
    }

    pub fn restock(&mut self, id: &[u8], delta: i64) -> Result<(u64, Effect), OpError> {
        let i = self
            .prize_index(id)
            .ok_or_else(|| OpError::NoSuchPrize(id.to_vec()))?;
        if self.prizes[i].codes {
            return Err(OpError::CodePrize(id.to_vec()));
        }
        let cur = self.prizes[i]
            .stock
            .ok_or_else(|| OpError::InfStock(id.to_vec()))?;
        let new = i128::from(cur) + i128::from(delta);
        if new < 0 {
            return Err(OpError::BelowZero);
        }
        let new = u64::try_from(new).map_err(|_| OpError::Overflow)?;
        if new > i64::MAX as u64 {
            return Err(OpError::Overflow);
        }
        self.set_stock(i, new);
        Ok((
            new,
            Effect::Stock {
                index: i as u32,
                stock: new,
            },
        ))
    }

    /// The index of a code prize in the table.
    fn code_prize(&self, id: &[u8]) -> Result<usize, OpError> {
        let i = self
            .prize_index(id)
            .ok_or_else(|| OpError::NoSuchPrize(id.to_vec()))?;
        if !self.prizes[i].codes {
            return Err(OpError::NotCodePrize(id.to_vec()));
        }
        Ok(i)
    }

    /// LOTTERY.CODES ADD: adds, in order, the codes the prize's pool does not have, never
    /// handed out and did not move out to another shard (TRANSFER OUT). Returns how many were
    /// added and the effect (None when none were). Codes are 1..=MAX_CODE_LEN bytes (the
    /// parser checks). Refused whole if the pool would go past `MAX_CODES`.
    pub fn add_codes(
        &mut self,
        id: &[u8],
        codes: &[&[u8]],
    ) -> Result<(u64, Option<Effect>), OpError> {
        let i = self.code_prize(id)?;
        let name = self.prizes[i].name;
        let seed = self.seed;
        let pool = self.codes.pool_mut(name, seed);
        let held = pool.unused().saturating_add(pool.used());
        if held.saturating_add(codes.len() as u64) > crate::limits::MAX_CODES {
            return Err(OpError::TooManyCodes);
        }
        let added: Vec<Vec<u8>> = codes
            .iter()
            .filter(|c| self.codes.add(name, seed, c) == AddResult::Added)
            .map(|c| c.to_vec())
            .collect();
        Ok(self.codes_changed(i, id, true, added))
    }

    /// After CODES ADD or REMOVE changed prize `i`'s pool by `codes` (in order): its stock
    /// follows, and the count with the effect (None when nothing changed).
    fn codes_changed(
        &mut self,
        i: usize,
        id: &[u8],
        add: bool,
        codes: Vec<Vec<u8>>,
    ) -> (u64, Option<Effect>) {
        let unused = self.codes.unused(self.prizes[i].name);
        self.set_stock(i, unused);
        let n = codes.len() as u64;
        let eff = (!codes.is_empty()).then(|| Effect::Codes {
            prize: id.to_vec(),
            add,
            codes,
        });
        (n, eff)
    }

    /// LOTTERY.CODES REMOVE: removes the codes that are unused in the prize's pool. Returns
    /// how many were removed and the effect (None when none were).
    pub fn remove_codes(
        &mut self,
        id: &[u8],
        codes: &[&[u8]],
    ) -> Result<(u64, Option<Effect>), OpError> {
        let i = self.code_prize(id)?;
        let name = self.prizes[i].name;
        let seed = self.seed;
        let pool = self.codes.pool_mut(name, seed);
        let removed: Vec<Vec<u8>> = codes
            .iter()
            .filter(|c| pool.remove(c))
            .map(|c| c.to_vec())
            .collect();
        Ok(self.codes_changed(i, id, false, removed))
    }

    /// LOTTERY.CODES COUNT: the prize's unused codes.
    pub fn count_codes(&self, id: &[u8]) -> Result<u64, OpError> {
        let i = self.code_prize(id)?;
        Ok(self.codes.unused(self.prizes[i].name))
    }

    /// The code the next win of prize `i` hands out (the oldest unused), if it is a code
    /// prize with codes: the command layer writes it in the stream entry before the draw
    /// commits.
    pub fn next_code(&self, i: usize) -> Option<&[u8]> {
        let p = self.prizes.get(i).filter(|p| p.codes)?;
        self.codes.get(p.name)?.peek()
    }

    /// Sets a finite prize's remaining stock; the alias table is rebuilt when the prize goes
    /// in or out of stock.
    pub(crate) fn set_stock(&mut self, i: usize, new: u64) {
        let p = &mut self.prizes[i];
        if p.stock.is_some_and(|cur| (cur == 0) != (new == 0)) {
            self.table_dirty = true;
        }
        p.stock = Some(new);
    }

    pub fn set_paused(&mut self, paused: bool) -> Effect {
        self.paused = paused;
        Effect::Paused(paused)
    }

    /// Bans a user until `until` (Unix ms). A banned user counts among the campaign's users.
    pub fn ban(&mut self, user: u128, until: i64) -> Effect {
        self.set_ban(user, until);
        Effect::Ban { user, until }
    }

    pub(crate) fn set_ban(&mut self, user: u128, until: i64) {
        self.bans.insert(user, until);
        self.users.ensure_day(user);
    }

    /// Lifts a ban; true if one was active at `now`. The effect is None when the user had no
    /// ban record (nothing changed).
    pub fn unban(&mut self, user: u128, now: i64) -> (bool, Option<Effect>) {
        let removed = self.bans.remove(user);
        (
            removed.is_some_and(|until| until > now),
            removed.map(|_| Effect::Unban { user }),
        )
    }

    /// Hands out the pending sold counts: (seq, batch).
    pub fn drain(&mut self) -> (u64, Vec<(Vec<u8>, u64)>, Effect) {
        let mut batch = Vec::new();
        for p in self.prizes.iter_mut().chain(self.retired.iter_mut()) {
            if p.pending > 0 {
                batch.push((p.id.clone(), p.pending));
                p.pending = 0;
            }
        }
        self.drain_seq = self.drain_seq.saturating_add(1);
        self.last_batch = batch.clone();
        let eff = Effect::Drain {
            seq: self.drain_seq,
            batch: batch.clone(),
        };
        (self.drain_seq, batch, eff)
    }

    /// COPY to `key`: a campaign on its key's default wins stream gets the new key's default
    /// stream (two live campaigns should not share one). Returns true if the stream changed.
    pub fn follow_key(&mut self, key: &[u8]) -> bool {
        self.rules.stream_default && self.use_default_stream(key)
    }

    /// Loading under `key` in a cluster: a wins stream in another slot than the key (a DUMP
    /// restored under another name) falls back to the key's default stream, so the campaign
    /// never writes outside its slot. Returns true if the stream changed.
    pub fn fix_slot(&mut self, key: &[u8]) -> bool {
        self.needs_slot_fix(key) && self.use_default_stream(key)
    }

    /// True if the wins stream is in another slot than `key`.
    pub fn needs_slot_fix(&self, key: &[u8]) -> bool {
        keyslot::key_slot(&self.rules.stream) != keyslot::key_slot(key)
    }

    fn use_default_stream(&mut self, key: &[u8]) -> bool {
        let default = keyslot::default_stream(key);
        if self.rules.stream == default || keyslot::key_slot(&default) != keyslot::key_slot(key) {
            return false;
        }
        self.rules.stream = default;
        self.rules.stream_default = true;
        // The new stream holds none of the tables published so far.
        self.published.clear();
        true
    }
}
