//! PLACEHOLDER (replaced by the segmented map): std HashMap wrapper with the same API.
use std::collections::HashMap;
#[derive(Clone, Default)]
pub struct SegMap<V: Copy + Default> {
    m: HashMap<u128, V>,
}
impl<V: Copy + Default> SegMap<V> {
    pub fn new() -> Self {
        SegMap { m: HashMap::new() }
    }
    pub fn len(&self) -> usize {
        self.m.len()
    }
    pub fn is_empty(&self) -> bool {
        self.m.is_empty()
    }
    pub fn get(&self, key: u128) -> Option<V> {
        self.m.get(&key.max(1)).copied()
    }
    pub fn insert(&mut self, key: u128, value: V) {
        self.m.insert(key.max(1), value);
    }
    pub fn remove(&mut self, key: u128) -> Option<V> {
        self.m.remove(&key.max(1))
    }
    pub fn iter(&self) -> impl Iterator<Item = (u128, V)> + '_ {
        self.m.iter().map(|(k, v)| (*k, *v))
    }
    pub fn mem_bytes(&self) -> usize {
        self.m.capacity() * 48
    }
    pub fn clear(&mut self) {
        self.m.clear()
    }
}
