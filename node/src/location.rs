//! Locations on the circle [0, 1), in fixed point.
//!
//! A location is a `u64` read as a fraction of 2^64, so arithmetic is exact, wraps for free
//! on the circle, and is bit-for-bit deterministic across machines (no float rounding in a
//! routing decision). `f64` is only for display and statistics.

use std::fmt;

use pamphlet_crypto::RoutingKey;
use serde::{Deserialize, Serialize};

/// A point on the circle [0, 1): `self.0 / 2^64`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct Location(pub u64);

impl Location {
    /// The location of a key: the first eight bytes of its routing key.
    pub fn of_key(key: &RoutingKey) -> Self {
        let mut b = [0u8; 8];
        b.copy_from_slice(&key.as_bytes()[..8]);
        Location(u64::from_be_bytes(b))
    }

    /// The location at fraction `x` of the circle (`x` taken modulo 1).
    pub fn from_f64(x: f64) -> Self {
        let x = x.rem_euclid(1.0);
        Location((x * 18_446_744_073_709_551_616.0) as u64)
    }

    /// This location as a fraction in [0, 1).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 18_446_744_073_709_551_616.0
    }

    /// Circular distance, as a fixed-point fraction of the circle in [0, 2^63].
    pub fn distance(self, other: Location) -> u64 {
        let d = self.0.wrapping_sub(other.0);
        d.min(d.wrapping_neg())
    }

    /// Circular distance as a fraction in [0, 0.5].
    pub fn distance_f64(self, other: Location) -> f64 {
        self.distance(other) as f64 / 18_446_744_073_709_551_616.0
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({:.6})", self.as_f64())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6}", self.as_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_wraps_around() {
        let a = Location::from_f64(0.05);
        let b = Location::from_f64(0.95);
        assert!((a.distance_f64(b) - 0.1).abs() < 1e-12);
        assert_eq!(a.distance(b), b.distance(a));
        assert_eq!(a.distance(a), 0);
        assert_eq!(Location(0).distance(Location(1 << 63)), 1 << 63);
    }

    #[test]
    fn key_location_matches_crypto() {
        let key = RoutingKey([0x40; 32]);
        assert!((Location::of_key(&key).as_f64() - key.location()).abs() < 1e-15);
    }
}
