//! Counting distinct values in fixed memory: exact up to [`EXACT_MAX`], then a HyperLogLog sketch.
//!
//! "How many accounts did this IP try", "how many object ids did this token read": most keys see few values and
//! get an exact count; a key that sees many (the attacker) switches to a 128-register HyperLogLog (Flajolet et al.
//! 2007), about 9% standard error, which is plenty to tell 40 from 400. Either way a key never holds more than
//! 128 bytes of it, whatever the attacker sends.
//!
//! Values are hashed with a fixed-key SipHash ([`hash64`]), so counts are the same on every run and replay.

use std::hash::{DefaultHasher, Hasher};

/// Distinct values counted exactly (as 64-bit hashes) before the set becomes a sketch.
pub const EXACT_MAX: usize = 16;

/// log2 of the number of sketch registers.
const P: u32 = 7;
/// Sketch registers (one byte each).
const M: usize = 1 << P;

/// The 64-bit hash distinct counting and keys use: SipHash-1-3 with fixed keys, stable within a build.
pub fn hash64(value: &str) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(value.as_bytes());
    h.finish()
}

/// A distinct counter; see the module documentation.
#[derive(Clone, Debug)]
pub enum Distinct {
    /// Up to [`EXACT_MAX`] hashes, exact.
    Exact(Vec<u64>),
    /// HyperLogLog registers: for each bucket, the highest rank seen.
    Sketch(Box<[u8; M]>),
}

impl Default for Distinct {
    fn default() -> Self {
        Self::Exact(Vec::new())
    }
}

impl Distinct {
    /// Adds a value.
    pub fn insert(&mut self, value: &str) {
        self.insert_hash(hash64(value));
    }

    /// Adds a value by its [`hash64`]. Returns whether the count may have changed (exact: the value was new).
    pub fn insert_hash(&mut self, hash: u64) -> bool {
        match self {
            Self::Exact(hashes) => {
                if hashes.contains(&hash) {
                    return false;
                }
                if hashes.len() < EXACT_MAX {
                    hashes.push(hash);
                    return true;
                }
                let mut registers = Box::new([0u8; M]);
                for &h in hashes.iter().chain(std::iter::once(&hash)) {
                    observe(&mut registers, h);
                }
                *self = Self::Sketch(registers);
                true
            }
            Self::Sketch(registers) => observe(registers, hash),
        }
    }

    /// How many distinct values were added: exact up to [`EXACT_MAX`], an estimate beyond.
    pub fn count(&self) -> u64 {
        match self {
            Self::Exact(hashes) => hashes.len() as u64,
            Self::Sketch(registers) => estimate(registers).max(EXACT_MAX as u64 + 1),
        }
    }

    /// Whether the count is exact.
    pub fn is_exact(&self) -> bool {
        matches!(self, Self::Exact(_))
    }

    /// Forgets everything (a new window).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Self::Exact(hashes) => hashes.capacity() * 8,
            Self::Sketch(_) => M,
        }
    }
}

/// Records `hash` in the registers; returns whether a register went up.
fn observe(registers: &mut [u8; M], hash: u64) -> bool {
    let bucket = (hash >> (64 - P)) as usize;
    // The rank of the remaining bits: position of the first 1, from 1; capped where the bits run out.
    let rest = hash << P;
    let rank = (rest.leading_zeros() + 1).min(64 - P + 1) as u8;
    if registers[bucket] < rank {
        registers[bucket] = rank;
        true
    } else {
        false
    }
}

/// The HyperLogLog estimate with the small-range (linear counting) correction.
fn estimate(registers: &[u8; M]) -> u64 {
    let m = M as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let sum: f64 = registers.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
    let raw = alpha * m * m / sum;
    let zeros = registers.iter().filter(|&&r| r == 0).count();
    let e = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
    e.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_up_to_the_limit() {
        let mut d = Distinct::default();
        for round in 0..3 {
            for i in 0..EXACT_MAX {
                let new = d.insert_hash(hash64(&format!("v{i}")));
                assert_eq!(new, round == 0);
            }
        }
        assert!(d.is_exact());
        assert_eq!(d.count(), EXACT_MAX as u64);
        assert_eq!(d.heap_bytes(), EXACT_MAX * 8);
    }

    #[test]
    fn estimates_within_a_few_standard_errors() {
        for n in [17u64, 50, 200, 1_000, 10_000, 100_000] {
            let mut d = Distinct::default();
            for i in 0..n {
                d.insert(&format!("object-{i}"));
                // Repeats never count.
                d.insert(&format!("object-{}", i / 2));
            }
            let got = d.count() as f64;
            let err = (got - n as f64).abs() / n as f64;
            // 128 registers: standard error ~9.2%; allow three of them.
            assert!(err < 0.28, "n={n} got={got}");
            assert!(!d.is_exact() && d.heap_bytes() == M);
        }
    }

    #[test]
    fn sequential_ids_are_counted_like_random_ones() {
        let mut d = Distinct::default();
        for i in 0..500 {
            d.insert(&i.to_string());
        }
        let got = d.count() as f64;
        assert!((got - 500.0).abs() < 140.0, "{got}");
    }

    #[test]
    fn clear_starts_over() {
        let mut d = Distinct::default();
        for i in 0..100 {
            d.insert(&i.to_string());
        }
        d.clear();
        assert_eq!(d.count(), 0);
        assert!(d.is_exact());
    }
}
