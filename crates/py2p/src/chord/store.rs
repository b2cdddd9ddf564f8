//! The slots a chord node is responsible for: five tables of slot key -> value, within
//! `max_table_bytes`.

use std::collections::HashMap;

use super::key::{Key, Method};

/// What an entry counts against `max_table_bytes` besides its value: the 64-byte key and
/// the map's slot and the value's header, roughly.
pub(crate) const ENTRY_COST: usize = 112;

/// The table would outgrow `max_table_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full {
    pub used: usize,
    pub max: usize,
}

/// Five tables (one per [`Method`]) and the bytes they hold.
pub(crate) struct SlotStore {
    tables: [HashMap<Key, Vec<u8>>; 5],
    bytes: usize,
    max_bytes: usize,
}

impl SlotStore {
    pub fn new(max_bytes: usize) -> SlotStore {
        SlotStore {
            tables: Default::default(),
            bytes: 0,
            max_bytes,
        }
    }

    fn table(&self, m: Method) -> Option<&HashMap<Key, Vec<u8>>> {
        self.tables.get(m.index())
    }

    pub fn get(&self, m: Method, key: &Key) -> Option<&Vec<u8>> {
        self.table(m)?.get(key)
    }

    /// Stores a value (a non-empty one); refused when the table would pass its limit.
    pub fn put(&mut self, m: Method, key: Key, value: Vec<u8>) -> Result<(), Full> {
        let (used, max) = (self.bytes, self.max_bytes);
        let Some(table) = self.tables.get_mut(m.index()) else {
            return Ok(());
        };
        let freed = table.get(&key).map_or(0, |v| v.len() + ENTRY_COST);
        let rest = used.saturating_sub(freed);
        let cost = value.len() + ENTRY_COST;
        if rest + cost > max && cost > freed {
            return Err(Full { used, max });
        }
        table.insert(key, value);
        self.bytes = rest + cost;
        Ok(())
    }

    /// Removes a slot; returns its value.
    pub fn remove(&mut self, m: Method, key: &Key) -> Option<Vec<u8>> {
        let old = self.tables.get_mut(m.index())?.remove(key)?;
        self.bytes = self.bytes.saturating_sub(old.len() + ENTRY_COST);
        Some(old)
    }

    /// Every slot held, in a fixed order (simulations replay exactly).
    pub fn entries(&self) -> Vec<(Method, Key)> {
        let mut out: Vec<(Method, Key)> = Method::ALL
            .iter()
            .zip(&self.tables)
            .flat_map(|(m, t)| t.keys().map(move |k| (*m, *k)))
            .collect();
        out.sort_unstable();
        out
    }

    /// Slots held.
    pub fn len(&self) -> usize {
        self.tables.iter().map(HashMap::len).sum()
    }

    /// Bytes counted against the limit.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_stays_within_its_limit() {
        let k = |s: &[u8]| Method::Sha384.hash(s);
        let mut s = SlotStore::new(2 * (ENTRY_COST + 10));
        assert!(s.put(Method::Sha384, k(b"a"), vec![1; 10]).is_ok());
        assert!(s.put(Method::Sha384, k(b"b"), vec![1; 10]).is_ok());
        assert_eq!(
            s.put(Method::Sha384, k(b"c"), vec![1; 10]),
            Err(Full {
                used: 2 * (ENTRY_COST + 10),
                max: 2 * (ENTRY_COST + 10)
            })
        );
        // Growing a value past the limit is refused; replacing at the same size passes.
        assert!(s.put(Method::Sha384, k(b"a"), vec![1; 11]).is_err());
        assert!(s.put(Method::Sha384, k(b"a"), vec![2; 10]).is_ok());
        assert_eq!(s.remove(Method::Sha384, &k(b"b")), Some(vec![1; 10]));
        assert_eq!(s.bytes(), ENTRY_COST + 10);
        assert!(s.put(Method::Sha1, k(b"c"), vec![1; 10]).is_ok());
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(Method::Sha384, &k(b"c")), None);
        assert_eq!(s.get(Method::Sha1, &k(b"c")), Some(&vec![1; 10]));
    }
}
