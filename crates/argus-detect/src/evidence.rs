//! Evidence kept per key in little memory: the ids of the most recent events behind a measure.
//!
//! Event ids are UUIDs written as 36 characters; kept as text, 20 of them would cost more than the whole budget of
//! a tracked key. A canonical (lower-case, hyphenated) UUID is kept as its 16 bytes and written back exactly as it
//! came; any other id (tests, foreign emitters) is kept as text.

/// One event id, compactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventRef {
    /// A canonical UUID, as its bytes.
    Uuid([u8; 16]),
    /// Any other id, as text.
    Text(Box<str>),
}

impl EventRef {
    /// The reference to the event with id `id`.
    pub fn new(id: &str) -> Self {
        parse_uuid(id).map_or_else(|| Self::Text(id.into()), Self::Uuid)
    }

    /// The id as the event carried it.
    pub fn id(&self) -> String {
        match self {
            Self::Uuid(bytes) => format_uuid(bytes),
            Self::Text(text) => text.to_string(),
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Self::Uuid(_) => 0,
            Self::Text(text) => text.len(),
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

fn parse_uuid(id: &str) -> Option<[u8; 16]> {
    let s = id.as_bytes();
    if s.len() != 36 || HYPHENS.iter().any(|&i| s[i] != b'-') {
        return None;
    }
    let mut out = [0u8; 16];
    let mut digits = s.iter().enumerate().filter(|(i, _)| !HYPHENS.contains(i)).map(|(_, &c)| c);
    for byte in &mut out {
        let hi = nibble(digits.next()?)?;
        let lo = nibble(digits.next()?)?;
        *byte = hi << 4 | lo;
    }
    Some(out)
}

/// Lower-case hex only, so that the formatted id is byte for byte the one parsed.
fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn format_uuid(bytes: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

/// The ids of the last `N` events pushed, oldest first. Holds no heap memory until the first push.
#[derive(Clone, Debug, Default)]
pub struct Recent<const N: usize> {
    ring: Vec<EventRef>,
    /// Where the next push goes once the ring is full.
    next: u8,
}

impl<const N: usize> Recent<N> {
    /// Remembers `event_id`, forgetting the oldest if `N` are held.
    pub fn push(&mut self, event_id: &str) {
        let r = EventRef::new(event_id);
        if self.ring.len() < N {
            if self.ring.capacity() == 0 {
                self.ring.reserve_exact(N);
            }
            self.ring.push(r);
        } else {
            self.ring[usize::from(self.next)] = r;
            self.next = ((usize::from(self.next) + 1) % N) as u8;
        }
    }

    /// The ids, oldest first.
    pub fn ids(&self) -> Vec<String> {
        let (newer, older) = self.ring.split_at(usize::from(self.next).min(self.ring.len()));
        older.iter().chain(newer).map(EventRef::id).collect()
    }

    /// Whether nothing was pushed since the last clear.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Forgets everything but keeps the allocation.
    pub fn clear(&mut self) {
        self.ring.clear();
        self.next = 0;
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.ring.capacity() * std::mem::size_of::<EventRef>()
            + self.ring.iter().map(EventRef::heap_bytes).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_round_trip_exactly_and_other_ids_are_kept_as_text() {
        let id = "0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d";
        assert!(matches!(EventRef::new(id), EventRef::Uuid(_)));
        assert_eq!(EventRef::new(id).id(), id);
        let real = argus_model::id::new_id();
        assert_eq!(EventRef::new(&real).id(), real);
        // Upper case or a missing hyphen would not format back the same: kept as text.
        for other in ["e1", "0190A3C4-5E6F-7A8B-9C0D-1E2F3A4B5C6D", "0190a3c45e6f-7a8b-9c0d-1e2f3a4b5c6d0", ""] {
            assert_eq!(EventRef::new(other), EventRef::Text(other.into()));
            assert_eq!(EventRef::new(other).id(), other);
        }
    }

    #[test]
    fn recent_keeps_the_last_n_in_order() {
        let mut r: Recent<3> = Recent::default();
        assert_eq!(r.heap_bytes(), 0);
        assert!(r.ids().is_empty());
        for i in 0..2 {
            r.push(&format!("e{i}"));
        }
        assert_eq!(r.ids(), ["e0", "e1"]);
        for i in 2..8 {
            r.push(&format!("e{i}"));
        }
        assert_eq!(r.ids(), ["e5", "e6", "e7"]);
        r.clear();
        assert!(r.is_empty());
        r.push("x");
        assert_eq!(r.ids(), ["x"]);
    }
}
