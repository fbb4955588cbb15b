//! The run's randomness: one seed, independent named streams derived from it.
//!
//! Each consumer (a node's engine, the medium's shadowing, its loss draws, a traffic
//! generator) gets its own ChaCha stream keyed by (seed, label, index), so adding a draw in
//! one place never shifts the numbers another place sees, and every run replays from its seed.

use rand_chacha::ChaCha12Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// The 32-byte seed of stream `label`/`index` of run `seed`.
pub fn stream_seed(seed: u64, label: &str, index: u64) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("lorabridge-sim 2026-11 rng stream");
    hasher.update(&seed.to_le_bytes());
    hasher.update(&(label.len() as u64).to_le_bytes());
    hasher.update(label.as_bytes());
    hasher.update(&index.to_le_bytes());
    *hasher.finalize().as_bytes()
}

/// A random stream of the run.
pub fn stream(seed: u64, label: &str, index: u64) -> ChaCha12Rng {
    ChaCha12Rng::from_seed(stream_seed(seed, label, index))
}

/// Uniform in [0, 1).
pub fn unit(rng: &mut impl Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Standard normal (Box–Muller).
pub fn normal(rng: &mut impl Rng) -> f64 {
    let u1 = unit(rng).max(f64::MIN_POSITIVE);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Uniform integer in [0, n).
pub fn below(rng: &mut impl Rng, n: u64) -> u64 {
    if n == 0 { 0 } else { rng.next_u64() % n }
}

/// Exponentially distributed with the given mean (Poisson inter-arrival times).
pub fn exponential(rng: &mut impl Rng, mean: f64) -> f64 {
    -mean * (1.0 - unit(rng)).ln()
}
