//! Placeholder pool (replaced by the real one).
use std::collections::{HashSet, VecDeque};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddResult {
    Added,
    Duplicate,
    AlreadyUsed,
    Full,
}

#[derive(Clone)]
pub struct CodePool {
    seed: (u64, u64),
    q: VecDeque<Vec<u8>>,
    live: HashSet<Vec<u8>>,
    used: HashSet<u128>,
}

impl CodePool {
    pub fn new(seed: (u64, u64)) -> CodePool {
        CodePool {
            seed,
            q: VecDeque::new(),
            live: HashSet::new(),
            used: HashSet::new(),
        }
    }
    pub fn key(&self, code: &[u8]) -> u128 {
        use siphasher::sip128::{Hasher128, SipHasher13};
        use std::hash::Hasher;
        let mut h = SipHasher13::new_with_keys(self.seed.0, self.seed.1);
        h.write(code);
        h.finish128().as_u128().max(1)
    }
    pub fn add(&mut self, code: &[u8]) -> AddResult {
        if self.used.contains(&self.key(code)) {
            return AddResult::AlreadyUsed;
        }
        if !self.live.insert(code.to_vec()) {
            return AddResult::Duplicate;
        }
        self.q.push_back(code.to_vec());
        AddResult::Added
    }
    pub fn remove(&mut self, code: &[u8]) -> bool {
        if !self.live.remove(code) {
            return false;
        }
        self.q.retain(|c| c != code);
        true
    }
    pub fn take(&mut self) -> Option<Vec<u8>> {
        let c = self.q.pop_front()?;
        self.live.remove(&c);
        let k = self.key(&c);
        self.used.insert(k);
        Some(c)
    }
    pub fn take_exact(&mut self, code: &[u8]) -> bool {
        if !self.remove(code) {
            return false;
        }
        let k = self.key(code);
        self.used.insert(k);
        true
    }
    pub fn peek(&self) -> Option<&[u8]> {
        self.q.front().map(|c| c.as_slice())
    }
    pub fn unused(&self) -> u64 {
        self.q.len() as u64
    }
    pub fn used(&self) -> u64 {
        self.used.len() as u64
    }
    pub fn iter_unused(&self) -> impl Iterator<Item = &[u8]> {
        self.q.iter().map(|c| c.as_slice())
    }
    pub fn iter_used_keys(&self) -> impl Iterator<Item = u128> + '_ {
        self.used.iter().copied()
    }
    pub fn insert_used_key(&mut self, key: u128) -> bool {
        self.used.insert(key)
    }
    pub fn mem_bytes(&self) -> usize {
        self.q.iter().map(|c| c.len() + 24).sum::<usize>() * 2 + self.used.len() * 16
    }
}
