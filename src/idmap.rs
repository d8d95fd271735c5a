//! A small map from increasing `u64` ids to values, kept as a sorted `Vec`.
//!
//! The request and ack tables hold at most a few thousand entries whose ids only grow, so a
//! sorted vector (binary search, push at the end) does the job of a `BTreeMap` in a fraction of
//! the code size, which every page downloads.

use crate::prelude::*;

/// A map from `u64` ids to `V`, iterated in id order.
#[derive(Debug, Clone)]
pub struct IdMap<V>(Vec<(u64, V)>);

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        IdMap(Vec::new())
    }
}

impl<V> IdMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        IdMap::default()
    }

    fn find(&self, id: u64) -> Result<usize, usize> {
        self.0.binary_search_by_key(&id, |e| e.0)
    }

    /// Inserts or replaces the value of `id` (cheapest when `id` is the largest so far).
    pub fn insert(&mut self, id: u64, value: V) {
        match self.0.last() {
            Some(last) if last.0 >= id => match self.find(id) {
                Ok(i) => {
                    if let Some(entry) = self.0.get_mut(i) {
                        entry.1 = value;
                    }
                }
                Err(i) => self.0.insert(i, (id, value)),
            },
            _ => self.0.push((id, value)),
        }
    }

    /// Removes and returns the value of `id`.
    pub fn remove(&mut self, id: u64) -> Option<V> {
        self.find(id).ok().map(|i| self.0.remove(i).1)
    }

    /// The value of `id`.
    pub fn get(&self, id: u64) -> Option<&V> {
        self.find(id).ok().and_then(|i| self.0.get(i)).map(|e| &e.1)
    }

    /// The value of `id`, mutably.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut V> {
        let i = self.find(id).ok()?;
        self.0.get_mut(i).map(|e| &mut e.1)
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The entries in id order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.0.iter().map(|(k, v)| (*k, v))
    }

    /// The values in id order, mutably.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.0.iter_mut().map(|(_, v)| v)
    }

    /// All entries, leaving the map empty.
    pub fn drain(&mut self) -> impl Iterator<Item = (u64, V)> + '_ {
        self.0.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::IdMap;

    #[test]
    fn behaves_like_a_sorted_map() {
        let mut m = IdMap::new();
        for id in [5, 1, 9, 3, 7] {
            m.insert(id, id * 10);
        }
        m.insert(3, 33);
        assert_eq!(
            m.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            [1, 3, 5, 7, 9]
        );
        assert_eq!(m.get(3), Some(&33));
        assert_eq!(m.remove(5), Some(50));
        assert_eq!(m.remove(5), None);
        assert_eq!(m.get(4), None);
        *m.get_mut(9).unwrap() += 1;
        assert_eq!(
            m.drain().collect::<Vec<_>>(),
            [(1, 10), (3, 33), (7, 70), (9, 91)]
        );
        assert!(m.is_empty());
    }
}
