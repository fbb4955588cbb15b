//! The engine's links by handle. A removed link's slot is reused by the next link added, with
//! a new generation, so a handle kept past its link's removal never reaches the newcomer.

use std::ops::{Index, IndexMut};

use super::Link;

/// A link the engine sends and hears on: a LoRa channel, or one Reticulum peer. Only the
/// engine makes these (`add_link`); they stay valid until `remove_link`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId {
    slot: u32,
    generation: u32,
}

struct Slot {
    generation: u32,
    link: Option<Link>,
}

#[derive(Default)]
pub(super) struct Slots(Vec<Slot>);

impl Slots {
    /// Stores `link` in a free slot, or a new one.
    pub fn insert(&mut self, link: Link) -> LinkId {
        let slot = match self.0.iter().position(|s| s.link.is_none()) {
            Some(free) => {
                let s = &mut self.0[free];
                s.generation = s.generation.wrapping_add(1);
                s.link = Some(link);
                free
            }
            None => {
                self.0.push(Slot {
                    generation: 0,
                    link: Some(link),
                });
                self.0.len() - 1
            }
        };
        id(slot, &self.0[slot])
    }

    /// Takes the link out; `None` if it was removed already.
    pub fn remove(&mut self, id: LinkId) -> Option<Link> {
        self.slot_mut(id)?.link.take()
    }

    pub fn get(&self, id: LinkId) -> Option<&Link> {
        let s = self.0.get(id.slot as usize);
        s.filter(|s| s.generation == id.generation)?.link.as_ref()
    }

    fn slot_mut(&mut self, id: LinkId) -> Option<&mut Slot> {
        let s = self.0.get_mut(id.slot as usize);
        s.filter(|s| s.generation == id.generation)
    }

    pub fn ids(&self) -> impl Iterator<Item = LinkId> + '_ {
        self.iter().map(|(id, _)| id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (LinkId, &Link)> {
        let slots = self.0.iter().enumerate();
        slots.filter_map(|(n, s)| Some((id(n, s), s.link.as_ref()?)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (LinkId, &mut Link)> {
        let slots = self.0.iter_mut().enumerate();
        slots.filter_map(|(n, s)| Some((id(n, &*s), s.link.as_mut()?)))
    }
}

/// The handle of slot `n` as it is now.
fn id(n: usize, s: &Slot) -> LinkId {
    LinkId {
        slot: n as u32,
        generation: s.generation,
    }
}

/// A handle from another engine, or one kept after `remove_link`, is the owner's bug: the
/// engine's calls panic on it, as a slice does on an index out of range.
impl Index<LinkId> for Slots {
    type Output = Link;

    fn index(&self, id: LinkId) -> &Link {
        self.get(id)
            .unwrap_or_else(|| panic!("{id:?} is not a link of this engine"))
    }
}

impl IndexMut<LinkId> for Slots {
    fn index_mut(&mut self, id: LinkId) -> &mut Link {
        self.slot_mut(id)
            .and_then(|s| s.link.as_mut())
            .unwrap_or_else(|| panic!("{id:?} is not a link of this engine"))
    }
}
