//! Failure injection for tests: makes the handler panic on chosen requests.
//!
//! Compiled in only with the `failpoints` feature, which the test command
//! turns on and release builds never do; without it, [`hit`] is an empty
//! inline function.

#[cfg(feature = "failpoints")]
mod armed {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    fn table() -> &'static Mutex<HashMap<String, u32>> {
        static TABLE: OnceLock<Mutex<HashMap<String, u32>>> = OnceLock::new();
        TABLE.get_or_init(Default::default)
    }

    /// Makes the next `times` handlings of `key` panic; `u32::MAX` for ever.
    pub fn arm(key: &str, times: u32) {
        table().lock().unwrap().insert(key.to_owned(), times);
    }

    /// Panics if `key` is armed, counting the hit.
    pub fn hit(key: &str) {
        let mut table = table().lock().unwrap();
        if let Some(left) = table.get_mut(key).filter(|left| **left > 0) {
            *left = left.saturating_sub(u32::from(*left != u32::MAX));
            drop(table);
            panic!("failpoint hit");
        }
    }
}

#[cfg(feature = "failpoints")]
pub use armed::{arm, hit};

/// Does nothing: failpoints are compiled out.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_key: &str) {}
