//! Deterministic randomness: every draw is a pure function of the seed and a counter, so no
//! lock is shared between requests and a sequential run replays exactly.

/// SplitMix64 of `seed` and `n`.
pub(crate) fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed
        .wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stream of draws for one request.
pub(crate) struct Draws {
    state: u64,
}

impl Draws {
    pub fn new(seed: u64, seq: u64) -> Self {
        Draws {
            state: mix(seed, seq),
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = mix(self.state, 1);
        self.state
    }

    /// A uniform draw in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform draw in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
