//! Randomness as the core sees it: a generator built from a seed given at
//! construction, so that one seed reproduces a run byte for byte.
//!
//! The generator serves two purposes: the `jti` of client assertions, which
//! must be unique (RFC 7523 §3) but need not be secret, and the jitter of
//! refresh and backoff deadlines. Drivers seed it from the operating system
//! with [`Rng::from_entropy`]; tests seed it with a number.

/// A small, fast, seedable generator (SplitMix64).
///
/// Not for key material: keys come from the user, and nothing here is secret.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator that produces the same sequence for the same seed.
    pub fn from_seed(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator seeded from the operating system's random source.
    pub fn from_entropy() -> Self {
        let mut seed = [0u8; 8];
        // The system random source fails only on a broken platform; a fixed
        // seed there still yields unique `jti`s within this process.
        let _ = aws_lc_rs::rand::fill(&mut seed);
        Self::from_seed(u64::from_le_bytes(seed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniformly distributed fraction in `[0, 1)`.
    pub fn next_fraction(&mut self) -> f64 {
        // 53 bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A fresh 128-bit identifier as 32 lowercase hex digits, for a `jti`.
    pub fn next_id(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::from_seed(7);
        let mut b = Rng::from_seed(7);
        assert_eq!(a.next_id(), b.next_id());
        assert_ne!(a.next_id(), Rng::from_seed(8).next_id());
        let f = a.next_fraction();
        assert!((0.0..1.0).contains(&f));
    }
}
