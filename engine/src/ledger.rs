//! The transfer records a sharded campaign keeps (LOTTERY.TRANSFER; the protocol is described
//! in `transfer`): each record, the set of them with its bound and pruning, and their encoding.

use super::codec::{DResult, DecodeError, Reader, Writer};
use super::limits::{MAX_CODES_PER_CALL, MAX_CODE_LEN, MAX_ID_LEN, MAX_KEY_LEN};
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
/// Codes one transfer of a code prize may move (an OUT's count is refused above it).
pub const MAX_TRANSFER_CODES: usize = MAX_CODES_PER_CALL;
/// Codes the PENDING records of a campaign may hold together: they are part of the meta
/// record, so this keeps it small (a mover has one transfer in flight at a time).
pub const MAX_PENDING_CODES: usize = MAX_CODES_PER_CALL;

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
    /// For a code prize: the codes an OUT took, oldest first, kept while the record is
    /// PENDING (`count` of them), so its IN can add them on the peer. In an IN's effect, the
    /// codes the IN was given. Empty otherwise: a stored record that is not PENDING holds none.
    pub codes: Vec<Vec<u8>>,
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
    /// Bytes held by the records' ids, prizes, peers and codes (kept up to date, so
    /// `mem_bytes` is O(1)).
    heap: usize,
    /// Codes held by the records (all of them PENDING).
    codes: usize,
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

    /// Codes held by the PENDING records.
    pub fn pending_codes(&self) -> usize {
        self.codes
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
        2 * t.id.len()
            + t.prize.len()
            + t.peer.len()
            + t.codes.iter().map(|c| c.len() + 48).sum::<usize>()
    }

    /// Inserts or replaces the record with this id (a replaced record keeps its place).
    /// A record that is not PENDING is stored without codes. False if a new record would
    /// exceed the limit.
    pub fn put(&mut self, mut t: Transfer) -> bool {
        if t.state != TransferState::Pending {
            t.codes = Vec::new();
        }
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
        self.codes += t.codes.len();
        if let Some(old) = self.list.insert(seq, t) {
            self.heap -= Self::heap_of(&old);
            self.codes -= old.codes.len();
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
                self.codes -= t.codes.len();
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

    /// Reads the records of a meta record of encoding version `v` (codes from version 5).
    pub(crate) fn decode(r: &mut Reader, v: u8) -> DResult<Transfers> {
        let n = r.count(20, MAX_TRANSFERS)?;
        let mut out = Transfers::default();
        for _ in 0..n {
            let t = read_transfer(r, v)?;
            if out.get(&t.id).is_some() {
                return Err(DecodeError("duplicate transfer id"));
            }
            if !t.codes.is_empty() && t.state != TransferState::Pending {
                return Err(DecodeError(
                    "codes in a transfer record that is not pending",
                ));
            }
            out.put(t);
            if out.codes > MAX_PENDING_CODES {
                return Err(DecodeError("too many codes in pending transfers"));
            }
        }
        Ok(out)
    }
}

/// A record; from version 5 (of the meta and of the effect encoding) with its codes.
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
    w.u32(t.codes.len() as u32);
    for c in &t.codes {
        w.bytes(c);
    }
}

/// Reads a record written by `write_transfer` in version `v` (no codes before 5). Codes come
/// with an OUT that is PENDING or an IN, exactly `count` of them.
pub(crate) fn read_transfer(r: &mut Reader, v: u8) -> DResult<Transfer> {
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
    let mut codes = Vec::new();
    if v >= 5 {
        let n = r.count(5, MAX_TRANSFER_CODES)?;
        codes.reserve_exact(n);
        for _ in 0..n {
            let c = r.bytes(MAX_CODE_LEN)?;
            if c.is_empty() {
                return Err(DecodeError("empty code"));
            }
            codes.push(c.to_vec());
        }
        if n > 0 && (n as u64 != count || state == TransferState::Settled) {
            return Err(DecodeError("bad codes in a transfer record"));
        }
    }
    Ok(Transfer {
        id,
        direction,
        prize,
        count,
        peer,
        state,
        codes,
    })
}
