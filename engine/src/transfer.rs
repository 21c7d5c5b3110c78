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

use super::admin::OpError;
use super::campaign::Campaign;
use super::effect::Effect;
use super::ledger::{Direction, Transfer, TransferState, MAX_TRANSFERS};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferError {
    Op(OpError),
    /// The id exists with another direction, prize, peer (or, for IN, count).
    Mismatch(Vec<u8>),
    NoOutgoing(Vec<u8>),
    TooMany,
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
        }
    }
}

impl From<OpError> for TransferError {
    fn from(e: OpError) -> Self {
        TransferError::Op(e)
    }
}

impl Campaign {
    /// TRANSFER OUT: takes up to `count` units of `prize`. Returns the units taken and the
    /// effect, or the recorded units and no effect for a repeated id.
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
        let stock = self.prizes[i].stock.unwrap_or(0);
        let taken = count.min(stock);
        let record = Transfer {
            id: id.to_vec(),
            direction: Direction::Out,
            prize: prize.to_vec(),
            count: taken,
            peer: peer.to_vec(),
            state: TransferState::Pending,
        };
        let new = stock - taken;
        Ok((taken, Some(self.record_transfer(record, Some((i, new))))))
    }

    /// TRANSFER IN: adds `count` units of `prize`. True if applied now, false (and no effect)
    /// if this id was applied before.
    pub fn transfer_in(
        &mut self,
        id: &[u8],
        prize: &[u8],
        count: u64,
        peer: &[u8],
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
        if !self.transfers.has_room() {
            return Err(TransferError::TooMany);
        }
        let stock = self.prizes[i].stock.unwrap_or(0);
        let new = stock
            .checked_add(count)
            .filter(|&v| v <= i64::MAX as u64)
            .ok_or(OpError::Overflow)?;
        let record = Transfer {
            id: id.to_vec(),
            direction: Direction::In,
            prize: prize.to_vec(),
            count,
            peer: peer.to_vec(),
            state: TransferState::Applied,
        };
        Ok((true, Some(self.record_transfer(record, Some((i, new))))))
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
        Ok((true, Some(self.record_transfer(record, None))))
    }

    fn finite_prize(&self, prize: &[u8]) -> Result<usize, OpError> {
        let i = self
            .prize_index(prize)
            .ok_or_else(|| OpError::NoSuchPrize(prize.to_vec()))?;
        if self.prizes[i].codes {
            return Err(OpError::CodePrize(prize.to_vec()));
        }
        if self.prizes[i].stock.is_none() {
            return Err(OpError::InfStock(prize.to_vec()));
        }
        Ok(i)
    }

    /// Stores the record and the prize's new stock; the effect carries both, absolute. Old
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
