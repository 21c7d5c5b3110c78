//! The transfer records a sharded campaign keeps (LOTTERY.TRANSFER; the protocol is described
//! in `transfer`): each record, the set of them with its bound and pruning, and their encoding.

use super::codec::{DResult, DecodeError, Reader, Writer};
use super::limits::{MAX_ID_LEN, MAX_KEY_LEN};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Transfer records a campaign may hold.
pub const MAX_TRANSFERS: usize = 65_536;
/// SETTLED records kept (the newest, by when the transfer was made).
pub const KEEP_SETTLED: usize = 4096;
/// SETTLED records past `KEEP_SETTLED` dropped per TRANSFER step at most (a backlog loaded from
/// an older build goes a little at a time).
pub const PRUNE_PER_STEP: usize = 4;
/// Transfer ids: 1..=128 bytes.
pub const MAX_TRANSFER_ID_LEN: usize = 128;
/// Peer keys: 1..=4096 bytes.
pub const MAX_PEER_LEN: usize = MAX_KEY_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Out,
    In,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferState {
    /// OUT taken, not yet confirmed applied on the peer.
    Pending,
    /// OUT confirmed applied on the peer.
    Settled,
    /// IN added to this campaign's stock.
    Applied,
}

impl TransferState {
    pub fn name(self) -> &'static str {
        match self {
            TransferState::Pending => "PENDING",
            TransferState::Settled => "SETTLED",
            TransferState::Applied => "APPLIED",
        }
    }
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Out => "OUT",
            Direction::In => "IN",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub id: Vec<u8>,
    pub direction: Direction,
    pub prize: Vec<u8>,
    /// Units taken (OUT) or added (IN).
    pub count: u64,
    pub peer: Vec<u8>,
    pub state: TransferState,
}

/// The campaign's transfer records, oldest first, indexed by id.
#[derive(Clone, Debug, Default)]
pub struct Transfers {
    /// Records by a sequence number given as they arrive: oldest first.
    list: BTreeMap<u64, Transfer>,
    by_id: HashMap<Vec<u8>, u64>,
    /// Sequence numbers of the SETTLED records.
    settled: BTreeSet<u64>,
    next: u64,
    /// Bytes held by the records' ids, prizes and peers (kept up to date, so `mem_bytes` is
    /// O(1)).
    heap: usize,
}

impl Transfers {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Transfer> {
        self.list.values()
    }

    pub fn get(&self, id: &[u8]) -> Option<&Transfer> {
        self.by_id.get(id).and_then(|i| self.list.get(i))
    }

    /// SETTLED records held.
    pub fn settled(&self) -> usize {
        self.settled.len()
    }

    /// True when a new record fits once the next `prune` has run.
    pub fn has_room(&self) -> bool {
        let prunable = self
            .settled
            .len()
            .saturating_sub(KEEP_SETTLED)
            .min(PRUNE_PER_STEP);
        self.list.len() - prunable < MAX_TRANSFERS
    }

    fn heap_of(t: &Transfer) -> usize {
        2 * t.id.len() + t.prize.len() + t.peer.len()
    }

    /// Inserts or replaces the record with this id (a replaced record keeps its place).
    /// False if a new record would exceed the limit.
    pub fn put(&mut self, t: Transfer) -> bool {
        let seq = match self.by_id.get(&t.id) {
            Some(&i) => i,
            None => {
                if self.list.len() >= MAX_TRANSFERS {
                    return false;
                }
                let i = self.next;
                self.next += 1;
                self.by_id.insert(t.id.clone(), i);
                i
            }
        };
        if t.state == TransferState::Settled {
            self.settled.insert(seq);
        } else {
            self.settled.remove(&seq);
        }
        self.heap += Self::heap_of(&t);
        if let Some(old) = self.list.insert(seq, t) {
            self.heap -= Self::heap_of(&old);
        }
        true
    }

    /// Drops the oldest SETTLED records past `KEEP_SETTLED`, at most `PRUNE_PER_STEP`. Called
    /// before and after every TRANSFER step that changes something, on the master and where
    /// its effect is applied, never while loading. Returns how many went.
    pub fn prune(&mut self) -> usize {
        let mut n = 0;
        while n < PRUNE_PER_STEP && self.settled.len() > KEEP_SETTLED {
            let Some(seq) = self.settled.pop_first() else {
                break;
            };
            if let Some(t) = self.list.remove(&seq) {
                self.heap -= Self::heap_of(&t);
                self.by_id.remove(&t.id);
            }
            n += 1;
        }
        n
    }

    pub fn mem_bytes(&self) -> usize {
        // A record, its B-tree key and share of a node, its index entry; a settled mark.
        self.list.len() * (std::mem::size_of::<Transfer>() + 16 + 48)
            + self.settled.len() * 16
            + self.heap
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32(self.list.len() as u32);
        for t in self.list.values() {
            write_transfer(w, t);
        }
    }

    pub(crate) fn decode(r: &mut Reader) -> DResult<Transfers> {
        let n = r.count(20, MAX_TRANSFERS)?;
        let mut out = Transfers::default();
        for _ in 0..n {
            let t = read_transfer(r)?;
            if out.get(&t.id).is_some() {
                return Err(DecodeError("duplicate transfer id"));
            }
            out.put(t);
        }
        Ok(out)
    }
}

pub(crate) fn write_transfer(w: &mut Writer, t: &Transfer) {
    w.bytes(&t.id);
    w.u8(match (t.direction, t.state) {
        (Direction::Out, TransferState::Pending) => 0,
        (Direction::Out, _) => 1,
        (Direction::In, _) => 2,
    });
    w.bytes(&t.prize);
    w.u64(t.count);
    w.bytes(&t.peer);
}

pub(crate) fn read_transfer(r: &mut Reader) -> DResult<Transfer> {
    let id = r.bytes(MAX_TRANSFER_ID_LEN)?.to_vec();
    let (direction, state) = match r.u8()? {
        0 => (Direction::Out, TransferState::Pending),
        1 => (Direction::Out, TransferState::Settled),
        2 => (Direction::In, TransferState::Applied),
        _ => return Err(DecodeError("bad transfer state")),
    };
    let prize = r.bytes(MAX_ID_LEN)?.to_vec();
    let count = r.u64()?;
    let peer = r.bytes(MAX_PEER_LEN)?.to_vec();
    if id.is_empty() || prize.is_empty() || peer.is_empty() || count > i64::MAX as u64 {
        return Err(DecodeError("bad transfer record"));
    }
    Ok(Transfer {
        id,
        direction,
        prize,
        count,
        peer,
        state,
    })
}
