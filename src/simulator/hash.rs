//! A small hash with a fixed definition, behind every "random" choice the
//! simulator makes.
//!
//! `std`'s `DefaultHasher` may change between Rust releases, and a rerun with
//! the same seed must inject the same faults and issue the same cards, so the
//! simulator hashes with its own function: FNV-1a, then a splitmix64 finaliser.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Hashes the parts in order; each part is length-prefixed, so that
/// ("ab", "c") and ("a", "bc") hash differently.
pub(crate) fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut state = FNV_OFFSET;
    for part in parts {
        state = fnv(state, &(part.len() as u64).to_le_bytes());
        state = fnv(state, part);
    }
    finalise(state)
}

/// Maps a hash to a number in [0, 1), from its top 53 bits (what an `f64`
/// mantissa holds, so every value is exact).
pub(crate) fn unit_interval(hash: u64) -> f64 {
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

fn fnv(mut state: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        state ^= u64::from(byte);
        state = state.wrapping_mul(FNV_PRIME);
    }
    state
}

/// FNV's high bits depend weakly on the last bytes; this spreads every input
/// bit over the whole output, so `unit_interval` is close to uniform.
fn finalise(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_boundaries_change_the_hash() {
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
    }

    #[test]
    fn unit_interval_stays_below_one() {
        assert!(unit_interval(u64::MAX) < 1.0);
        assert_eq!(unit_interval(0), 0.0);
    }
}
