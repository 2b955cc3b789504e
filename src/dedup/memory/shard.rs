//! One shard of the memory store: a hash table of arena indices, an arena of entries, and one
//! expiry list per (TTL, state) class, so the entry that expires first is always at the front of
//! some list and every operation costs the same whether the shard is empty or full.
//!
//! A class's entries are all inserted with the same TTL on a monotonic clock, so insertion order
//! is expiry order: appending at the tail keeps each list sorted. Delivered keys and in-flight
//! claims have different TTLs, hence different classes. The lists are intrusive (`prev`/`next`
//! arena indices), so a release, forget or re-claim unlinks its entry at once — no stale
//! entries, no rescans. About 40 bytes of arena plus 5–11 bytes of table per key.

use hashbrown::HashTable;

/// Token value meaning "delivered".
pub(super) const DELIVERED: u32 = 0;
const NIL: u32 = u32::MAX;
/// Beyond this many live classes (distinct TTLs) in one shard, new TTLs share the last class:
/// its order is then approximate, never wrong about what has expired.
const MAX_CLASSES: usize = 1024;

/// One key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    /// `DELIVERED`, or the token of the in-flight claim.
    pub token: u32,
    /// Milliseconds of uptime at which the entry expires.
    pub expires: u64,
}

/// The arena bytes of one entry (the table adds a `u32` index and a control byte per bucket).
#[cfg(test)]
pub(super) const ENTRY_BYTES: usize = std::mem::size_of::<Entry>();

#[derive(Clone, Copy)]
struct Entry {
    key: [u8; 16],
    expires: u64,
    token: u32,
    /// Neighbours in the class list; for a free arena slot, `next` links the free list.
    prev: u32,
    next: u32,
    class: u16,
}

#[derive(Clone, Copy)]
struct Class {
    ttl: u64,
    delivered: bool,
    head: u32,
    tail: u32,
}

/// What an insertion displaced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Made {
    /// Expired entries dropped to make room (not counted anywhere).
    pub expired: usize,
    /// A live entry evicted for lack of space (an early eviction).
    pub evicted: bool,
}

pub(super) struct Shard {
    table: HashTable<u32>,
    entries: Vec<Entry>,
    free: u32,
    classes: Vec<Class>,
    held: usize,
    capacity: usize,
}

fn hash(key: &[u8; 16]) -> u64 {
    // The key is a digest: its first eight bytes are a uniform hash.
    u64::from_le_bytes(key[..8].try_into().expect("8 bytes"))
}

impl Shard {
    /// An empty shard holding at most `capacity` keys (at least one).
    pub(super) fn new(capacity: usize) -> Self {
        Shard {
            table: HashTable::new(),
            entries: Vec::new(),
            free: NIL,
            classes: Vec::new(),
            held: 0,
            capacity: capacity.clamp(1, NIL as usize - 1),
        }
    }

    /// Entries held, expired or not (see [`Shard::purge`]).
    pub(super) fn len(&self) -> usize {
        self.held
    }

    fn find(&self, key: &[u8; 16]) -> Option<u32> {
        let entries = &self.entries;
        self.table
            .find(hash(key), |&i| entries[i as usize].key == *key)
            .copied()
    }

    /// The state of `key`, if held (possibly expired).
    pub(super) fn get(&self, key: &[u8; 16]) -> Option<Slot> {
        self.find(key).map(|i| {
            let e = &self.entries[i as usize];
            Slot {
                token: e.token,
                expires: e.expires,
            }
        })
    }

    /// Sets `key` to `token` for `ttl_ms` from `now`: updates it in place if held, else inserts
    /// it, first dropping expired entries and, if still full, evicting the live entry that
    /// expires first (a delivered one if there is any).
    pub(super) fn put(&mut self, key: [u8; 16], token: u32, ttl_ms: u64, now: u64) -> Made {
        let mut made = Made {
            expired: self.purge(now),
            evicted: false,
        };
        let class = self.class_for(ttl_ms, token == DELIVERED);
        let expires = now.saturating_add(ttl_ms);
        if let Some(i) = self.find(&key) {
            self.unlink(i);
            let e = &mut self.entries[i as usize];
            e.token = token;
            e.expires = expires;
            e.class = class;
            self.link_tail(i);
            return made;
        }
        if self.held >= self.capacity {
            made.evicted = self.evict_first();
        }
        let entry = Entry {
            key,
            expires,
            token,
            prev: NIL,
            next: NIL,
            class,
        };
        let i = self.alloc(entry);
        let entries = &self.entries;
        self.table
            .insert_unique(hash(&key), i, |&j| hash(&entries[j as usize].key));
        self.link_tail(i);
        self.held += 1;
        made
    }

    /// Drops `key` if held; whether it was.
    pub(super) fn remove(&mut self, key: &[u8; 16]) -> bool {
        let entries = &self.entries;
        let Ok(found) = self
            .table
            .find_entry(hash(key), |&i| entries[i as usize].key == *key)
        else {
            return false;
        };
        let (i, _) = found.remove();
        self.unlink(i);
        self.release_slot(i);
        true
    }

    /// Drops every entry expired at `now`: the fronts of the class lists. Returns how many.
    pub(super) fn purge(&mut self, now: u64) -> usize {
        let mut dropped = 0;
        for c in 0..self.classes.len() {
            loop {
                let head = self.classes[c].head;
                if head == NIL || self.entries[head as usize].expires > now {
                    break;
                }
                let key = self.entries[head as usize].key;
                self.remove(&key);
                dropped += 1;
            }
        }
        dropped
    }

    /// Evicts the live entry expiring first, preferring delivered keys over in-flight claims.
    fn evict_first(&mut self) -> bool {
        let front = |delivered: bool| {
            self.classes
                .iter()
                .filter(|c| c.delivered == delivered && c.head != NIL)
                .map(|c| c.head)
                .min_by_key(|&h| self.entries[h as usize].expires)
        };
        let Some(victim) = front(true).or_else(|| front(false)) else {
            return false;
        };
        let key = self.entries[victim as usize].key;
        self.remove(&key)
    }

    fn class_for(&mut self, ttl: u64, delivered: bool) -> u16 {
        let mut empty = None;
        for (i, c) in self.classes.iter().enumerate() {
            if c.ttl == ttl && c.delivered == delivered {
                return i as u16;
            }
            if c.head == NIL && empty.is_none() {
                empty = Some(i);
            }
        }
        let fresh = Class {
            ttl,
            delivered,
            head: NIL,
            tail: NIL,
        };
        if let Some(i) = empty {
            self.classes[i] = fresh;
            return i as u16;
        }
        if self.classes.len() >= MAX_CLASSES {
            return (MAX_CLASSES - 1) as u16;
        }
        self.classes.push(fresh);
        (self.classes.len() - 1) as u16
    }

    fn alloc(&mut self, entry: Entry) -> u32 {
        if self.free != NIL {
            let i = self.free;
            self.free = self.entries[i as usize].next;
            self.entries[i as usize] = entry;
            return i;
        }
        if self.entries.len() == self.entries.capacity() {
            // Grow by doubling, but never past the capacity: a full shard wastes no arena.
            let target = (self.entries.len() * 2).clamp(8, self.capacity.max(8));
            self.entries.reserve_exact(target - self.entries.len());
        }
        self.entries.push(entry);
        (self.entries.len() - 1) as u32
    }

    fn release_slot(&mut self, i: u32) {
        let e = &mut self.entries[i as usize];
        e.next = self.free;
        e.prev = NIL;
        self.free = i;
        self.held -= 1;
    }

    fn link_tail(&mut self, i: u32) {
        let class = self.entries[i as usize].class as usize;
        let tail = self.classes[class].tail;
        {
            let e = &mut self.entries[i as usize];
            e.prev = tail;
            e.next = NIL;
        }
        if tail == NIL {
            self.classes[class].head = i;
        } else {
            self.entries[tail as usize].next = i;
        }
        self.classes[class].tail = i;
    }

    fn unlink(&mut self, i: u32) {
        let Entry {
            prev, next, class, ..
        } = self.entries[i as usize];
        let class = &mut self.classes[class as usize];
        if prev == NIL {
            class.head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            class.tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: u32) -> [u8; 16] {
        let mut key = [0u8; 16];
        // Spread over the hash bits too.
        key[..8].copy_from_slice(&(u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes());
        key[8..12].copy_from_slice(&n.to_le_bytes());
        key
    }

    /// Every class list is sorted by expiry and the lists together hold exactly the table.
    fn check(shard: &Shard) {
        let mut listed = 0;
        for (c, class) in shard.classes.iter().enumerate() {
            let (mut i, mut prev, mut last) = (class.head, NIL, 0);
            while i != NIL {
                let e = &shard.entries[i as usize];
                assert_eq!(e.class as usize, c);
                assert_eq!(e.prev, prev);
                assert!(e.expires >= last, "sorted");
                assert_eq!(shard.find(&e.key), Some(i));
                last = e.expires;
                prev = i;
                i = e.next;
                listed += 1;
            }
            assert_eq!(class.tail, prev);
        }
        assert_eq!(listed, shard.held);
        assert_eq!(shard.table.len(), shard.held);
    }

    #[test]
    fn a_full_shard_evicts_the_delivered_entry_expiring_first() {
        let mut s = Shard::new(4);
        s.put(k(1), 7, 50, 0); // in flight, expires at 50
        s.put(k(2), DELIVERED, 1000, 1); // expires 1001
        s.put(k(3), DELIVERED, 100, 2); // expires 102 (shorter TTL class)
        s.put(k(4), DELIVERED, 1000, 3); // 1003
        let made = s.put(k(5), DELIVERED, 1000, 4);
        assert!(made.evicted);
        assert_eq!(s.get(&k(3)), None, "the delivered key expiring first went");
        assert!(s.get(&k(1)).is_some(), "the in-flight claim stays");
        check(&s);
        // Now the 1000-ms class front (k2) goes before the in-flight claim.
        s.put(k(6), DELIVERED, 1000, 5);
        assert_eq!(s.get(&k(2)), None);
        assert_eq!(s.len(), 4);
        check(&s);
    }

    #[test]
    fn expired_entries_make_room_without_eviction() {
        let mut s = Shard::new(3);
        for n in 0..3 {
            s.put(k(n), DELIVERED, 10, 0);
        }
        let made = s.put(k(9), DELIVERED, 10, 10);
        assert_eq!(
            made,
            Made {
                expired: 3,
                evicted: false
            }
        );
        assert_eq!(s.len(), 1);
        check(&s);
    }

    #[test]
    fn updates_move_an_entry_to_its_new_class_tail() {
        let mut s = Shard::new(10);
        s.put(k(1), 5, 35, 0);
        s.put(k(2), DELIVERED, 100, 1);
        s.put(k(1), DELIVERED, 100, 2); // promote
        check(&s);
        assert_eq!(
            s.get(&k(1)),
            Some(Slot {
                token: DELIVERED,
                expires: 102
            })
        );
        assert_eq!(s.purge(101), 1);
        assert_eq!(s.get(&k(2)), None);
        assert_eq!(s.len(), 1);
        check(&s);
    }

    #[test]
    fn removal_frees_arena_slots_for_reuse() {
        let mut s = Shard::new(100);
        for n in 0..100 {
            s.put(k(n), DELIVERED, 1000, u64::from(n));
        }
        let arena = s.entries.len();
        for n in (0..100).step_by(2) {
            assert!(s.remove(&k(n)));
        }
        assert!(!s.remove(&k(0)));
        check(&s);
        for n in 100..150 {
            assert!(!s.put(k(n), DELIVERED, 1000, 200).evicted);
        }
        assert_eq!(s.entries.len(), arena, "freed slots reused");
        assert_eq!(s.len(), 100);
        check(&s);
        // Still sorted: the odd keys (inserted first) expire first.
        assert_eq!(s.purge(1000 + 99), 50);
        assert_eq!(s.len(), 50);
        check(&s);
    }

    #[test]
    fn arena_never_grows_past_capacity() {
        let mut s = Shard::new(1000);
        for n in 0..5000 {
            s.put(k(n), DELIVERED, 1_000_000, u64::from(n));
        }
        assert_eq!(s.len(), 1000);
        assert!(s.entries.capacity() <= 1000);
        check(&s);
    }

    #[test]
    fn empty_classes_are_reused() {
        let mut s = Shard::new(10);
        for ttl in 1..=5 {
            s.put(k(ttl as u32), DELIVERED, ttl, 0);
        }
        s.purge(100);
        s.put(k(50), DELIVERED, 77, 100);
        assert_eq!(s.classes.len(), 5);
        check(&s);
    }
}
