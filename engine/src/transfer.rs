//! Stock transfers between the shards of a sharded campaign (LOTTERY.TRANSFER).
//!
//! Two shards live on different Redis masters, so moving stock between them cannot be one
//! atomic step. It is three, each atomic on one shard and each idempotent by transfer id:
//!
//! 1. `OUT` on the source takes `min(count, remaining)` units and records the id as PENDING
//!    with the units taken. Asked again, it answers the recorded units and takes nothing.
//! 2. `IN` on the destination adds the units and records the id as APPLIED. Asked again, it
//!    adds nothing.
//! 3. `SETTLE` on the source marks the id SETTLED.
//!
//! A mover that dies between any two steps restarts by listing the PENDING records of every
//! shard and redoing steps 2 and 3 for each: units are never created (IN adds only what an
//! OUT recorded, at most once) and never lost (a PENDING record names its units until its IN
//! is applied). PENDING and APPLIED records are kept for the campaign's life, so a late
//! replay of those steps is still recognised. SETTLED records are done with: the newest
//! `KEEP_SETTLED` of them (in the order the transfers were made) are kept, so a late SETTLE
//! or OUT replay of a recent transfer is still recognised, and older ones are dropped, at most
//! `PRUNE_PER_STEP` per TRANSFER step that changes something. The choice depends only on the
//! records and their order, which replicas and the AOF share, so they drop the same ones.
//!
//! A code prize's units are its codes. OUT takes the `t` oldest unused codes out of the pool
//! (remembered there as moved out, so adding them again on this shard is refused) and keeps
//! them in the PENDING record, where `CODES id` reads them; IN is given exactly those codes
//! and adds them to the peer's pool: a code the peer moved out before comes back, any other is
//! added as LOTTERY.CODES ADD does (one the peer holds or handed out is skipped). SETTLE drops
//! the codes from the record: they are on the peer by then. So a code is at every instant in
//! one pool or in one PENDING record, never in two pools, and a code moving back to a shard it
//! left is not lost. The codes PENDING records hold are bounded (`MAX_PENDING_CODES`), as they
//! are part of the meta record.

use super::admin::OpError;
use super::campaign::Campaign;
use super::effect::Effect;
use super::ledger::{
    Direction, Transfer, TransferState, MAX_PENDING_CODES, MAX_TRANSFERS, MAX_TRANSFER_CODES,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferError {
    Op(OpError),
    /// The id exists with another direction, prize, peer (or, for IN, count).
    Mismatch(Vec<u8>),
    NoOutgoing(Vec<u8>),
    TooMany,
    /// OUT of a code prize asked for more than `MAX_TRANSFER_CODES` codes.
    TooManyCodes,
    /// OUT of a code prize would take the PENDING records past `MAX_PENDING_CODES` codes.
    PendingCodes,
    /// IN of a code prize was not given exactly `count` codes: (count, given).
    CodesCount(u64, u64),
}

impl std::fmt::Display for TransferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransferError::Op(e) => e.fmt(f),
            TransferError::Mismatch(id) => write!(
                f,
                "transfer '{}' was recorded with other arguments",
                crate::parse::shown(id)
            ),
            TransferError::NoOutgoing(id) => {
                write!(f, "no such outgoing transfer '{}'", crate::parse::shown(id))
            }
            TransferError::TooMany => write!(
                f,
                "too many transfer records (at most {MAX_TRANSFERS} per campaign)"
            ),
            TransferError::TooManyCodes => write!(
                f,
                "a transfer of a code prize moves at most {MAX_TRANSFER_CODES} codes: split it"
            ),
            TransferError::PendingCodes => write!(
                f,
                "pending transfers would hold more than {MAX_PENDING_CODES} codes: \
                 finish them (IN, then SETTLE) first"
            ),
            TransferError::CodesCount(count, given) => write!(
                f,
                "an IN of a code prize takes exactly its count of codes \
                 (CODES code ...): count {count}, {given} given"
            ),
        }
    }
}

impl From<OpError> for TransferError {
    fn from(e: OpError) -> Self {
        TransferError::Op(e)
    }
}

impl Campaign {
    /// TRANSFER OUT: takes up to `count` units of `prize` (of a code prize: its oldest unused
    /// codes, at most `MAX_TRANSFER_CODES`, kept in the record). Returns the units taken and
    /// the effect, or the recorded units and no effect for a repeated id.
    pub fn transfer_out(
        &mut self,
        id: &[u8],
        prize: &[u8],
        count: u64,
        peer: &[u8],
    ) -> Result<(u64, Option<Effect>), TransferError> {
        if let Some(t) = self.transfers.get(id) {
            return if t.direction == Direction::Out && t.prize == prize && t.peer == peer {
                Ok((t.count, None))
            } else {
                Err(TransferError::Mismatch(id.to_vec()))
            };
        }
        let i = self.finite_prize(prize)?;
        if !self.transfers.has_room() {
            return Err(TransferError::TooMany);
        }
        let mut record = Transfer {
            id: id.to_vec(),
            direction: Direction::Out,
            prize: prize.to_vec(),
            count: 0,
            peer: peer.to_vec(),
            state: TransferState::Pending,
            codes: Vec::new(),
        };
        if self.prizes[i].codes {
            if count > MAX_TRANSFER_CODES as u64 {
                return Err(TransferError::TooManyCodes);
            }
            let name = self.prizes[i].name;
            let taken = count.min(self.codes.unused(name));
            if self.transfers.pending_codes() as u64 + taken > MAX_PENDING_CODES as u64 {
                return Err(TransferError::PendingCodes);
            }
            record.codes = self.codes.move_out(name, self.seed, taken);
            record.count = record.codes.len() as u64;
            let new = self.codes.unused(name);
            return Ok((
                record.count,
                Some(self.record_transfer(record, Some((i, new)))),
            ));
        }
        let stock = self.prizes[i].stock.unwrap_or(0);
        let taken = count.min(stock);
        record.count = taken;
        let new = stock - taken;
        Ok((taken, Some(self.record_transfer(record, Some((i, new))))))
    }

    /// TRANSFER IN: adds `count` units of `prize`; for a code prize, the `codes` an OUT took,
    /// exactly `count` of them (one this pool moved out before comes back; of the others, those
    /// the pool holds or handed out are skipped, as by LOTTERY.CODES ADD). `codes` is None
    /// when not given: an error for a code prize with a count above 0; given, an error for a
    /// counted prize. True if applied now, false (and no effect) if this id was applied
    /// before.
    pub fn transfer_in(
        &mut self,
        id: &[u8],
        prize: &[u8],
        count: u64,
        peer: &[u8],
        codes: Option<&[&[u8]]>,
    ) -> Result<(bool, Option<Effect>), TransferError> {
        if let Some(t) = self.transfers.get(id) {
            return if t.direction == Direction::In
                && t.prize == prize
                && t.peer == peer
                && t.count == count
            {
                Ok((false, None))
            } else {
                Err(TransferError::Mismatch(id.to_vec()))
            };
        }
        let i = self.finite_prize(prize)?;
        if !self.prizes[i].codes && codes.is_some() {
            return Err(OpError::NotCodePrize(prize.to_vec()).into());
        }
        if !self.transfers.has_room() {
            return Err(TransferError::TooMany);
        }
        let mut record = Transfer {
            id: id.to_vec(),
            direction: Direction::In,
            prize: prize.to_vec(),
            count,
            peer: peer.to_vec(),
            state: TransferState::Applied,
            codes: Vec::new(),
        };
        if self.prizes[i].codes {
            let codes = codes.unwrap_or_default();
            if codes.len() as u64 != count {
                return Err(TransferError::CodesCount(count, codes.len() as u64));
            }
            let name = self.prizes[i].name;
            let seed = self.seed;
            let pool = self.codes.pool_mut(name, seed);
            let held = pool.unused().saturating_add(pool.used());
            if held.saturating_add(count) > crate::limits::MAX_CODES {
                return Err(OpError::TooManyCodes.into());
            }
            self.codes.bring_in(name, seed, codes);
            let new = self.codes.unused(name);
            record.codes = codes.iter().map(|c| c.to_vec()).collect();
            return Ok((true, Some(self.record_transfer(record, Some((i, new))))));
        }
        let stock = self.prizes[i].stock.unwrap_or(0);
        let new = stock
            .checked_add(count)
            .filter(|&v| v <= i64::MAX as u64)
            .ok_or(OpError::Overflow)?;
        Ok((true, Some(self.record_transfer(record, Some((i, new))))))
    }

    /// TRANSFER CODES: the codes an OUT record took, while it is PENDING (none for a counted
    /// prize, nor once SETTLED: they are on the peer then).
    pub fn transfer_codes(&self, id: &[u8]) -> Result<&[Vec<u8>], TransferError> {
        match self.transfers.get(id) {
            Some(t) if t.direction == Direction::Out => Ok(&t.codes),
            _ => Err(TransferError::NoOutgoing(id.to_vec())),
        }
    }

    /// TRANSFER SETTLE: marks an OUT record settled. True if it was pending.
    pub fn transfer_settle(&mut self, id: &[u8]) -> Result<(bool, Option<Effect>), TransferError> {
        let t = match self.transfers.get(id) {
            Some(t) if t.direction == Direction::Out => t,
            _ => return Err(TransferError::NoOutgoing(id.to_vec())),
        };
        if t.state == TransferState::Settled {
            return Ok((false, None));
        }
        let mut record = t.clone();
        record.state = TransferState::Settled;
        // The codes are on the peer now: the record and its effect go without them.
        record.codes = Vec::new();
        Ok((true, Some(self.record_transfer(record, None))))
    }

    fn finite_prize(&self, prize: &[u8]) -> Result<usize, OpError> {
        let i = self
            .prize_index(prize)
            .ok_or_else(|| OpError::NoSuchPrize(prize.to_vec()))?;
        if self.prizes[i].stock.is_none() {
            return Err(OpError::InfStock(prize.to_vec()));
        }
        Ok(i)
    }

    /// Stores the record and the prize's new stock; the effect carries both, absolute (and
    /// the record's codes, which the stored record keeps only while PENDING). Old
    /// SETTLED records are pruned before (to make room) and after (`Transfers::prune`), as
    /// where the effect is applied.
    fn record_transfer(&mut self, record: Transfer, stock: Option<(usize, u64)>) -> Effect {
        self.transfers.prune();
        let stock = stock.map(|(i, new)| {
            self.set_stock(i, new);
            (i as u32, new)
        });
        self.transfers.put(record.clone());
        self.transfers.prune();
        Effect::Transfer {
            record: Box::new(record),
            stock,
        }
    }
}
