//! The event loop's connections, kept by token (stages 06 and 07).
//!
//! `mio` tells the loop *which* socket is ready by the [`Token`](mio::Token) it was registered
//! with: a number, chosen by us. A slab is a `Vec` whose free slots are reused, so the index of
//! a connection's slot can be its token: finding the connection for an event is one index, and
//! memory stays proportional to the most connections ever open at once.
//!
//! A reused slot has a cost: a token now names a new connection, so anything that remembered
//! the old one (a timer, most of all) must check it is still talking about the same
//! connection. Each connection carries a number unique over the whole run for that
//! (`Conn::id`, see `src/event_loop/timers.rs`).
//!
//! Introduced in chapter 6 (`docs/06-event-loop.md`).

/// A `Vec` of slots, with the free ones on a list.
#[derive(Debug)]
pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    /// The first free slot; each free slot names the next.
    free: Option<usize>,
    len: usize,
}

#[derive(Debug)]
enum Slot<T> {
    Taken(T),
    Free { next: Option<usize> },
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab::new()
    }
}

impl<T> Slab<T> {
    pub const fn new() -> Slab<T> {
        Slab {
            slots: Vec::new(),
            free: None,
            len: 0,
        }
    }

    /// Puts `value` in a free slot (the most recently freed one, or a new one at the end) and
    /// returns the slot's index.
    pub fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        match self.free {
            Some(index) => {
                if let Some(Slot::Free { next }) = self.slots.get(index) {
                    self.free = *next;
                }
                self.slots[index] = Slot::Taken(value);
                index
            }
            None => {
                self.slots.push(Slot::Taken(value));
                self.slots.len() - 1
            }
        }
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        match self.slots.get_mut(index) {
            Some(Slot::Taken(value)) => Some(value),
            _ => None,
        }
    }

    /// Takes the value out of its slot, which becomes free.
    pub fn remove(&mut self, index: usize) -> Option<T> {
        let slot = self.slots.get_mut(index)?;
        if matches!(slot, Slot::Free { .. }) {
            return None;
        }
        let taken = std::mem::replace(slot, Slot::Free { next: self.free });
        self.free = Some(index);
        self.len -= 1;
        match taken {
            Slot::Taken(value) => Some(value),
            Slot::Free { .. } => None,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The indexes of the taken slots, in order.
    pub fn keys(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| matches!(self.slots[i], Slot::Taken(_)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_slots_are_reused_last_freed_first() {
        let mut slab = Slab::new();
        let (a, b, c) = (slab.insert('a'), slab.insert('b'), slab.insert('c'));
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(slab.remove(b), Some('b'));
        assert_eq!(slab.remove(b), None, "a slot is freed once");
        assert_eq!(slab.get_mut(b), None);
        assert_eq!(slab.remove(a), Some('a'));
        assert_eq!(slab.len(), 1);
        assert_eq!(slab.insert('d'), a);
        assert_eq!(slab.insert('e'), b);
        assert_eq!(slab.insert('f'), 3);
        assert_eq!(slab.keys(), [0, 1, 2, 3]);
        assert_eq!(slab.get_mut(2), Some(&mut 'c'));
        assert_eq!(slab.remove(99), None);
    }
}
