//! A cap on partner calls per second, shared by every call this process
//! makes, however many messages wait.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics;

/// Spaces calls evenly: with a cap of 50 a second, one call every 20 ms.
///
/// Each caller reserves the next free slot and sleeps until it, so waiting
/// callers are served in the order they asked and no caller spins. A caller
/// that gives up while waiting (shutdown) leaves its slot unused, which only
/// errs on the side of fewer calls.
pub struct RateLimit {
    interval: Option<Duration>,
    next_slot: Mutex<Instant>,
}

impl RateLimit {
    /// A cap of `calls` a second; 0 means no cap.
    pub fn per_second(calls: u32) -> Self {
        let interval = (calls > 0).then(|| Duration::from_secs(1) / calls);
        Self {
            interval,
            next_slot: Mutex::new(Instant::now()),
        }
    }

    /// Waits until this caller may make its call.
    pub async fn wait_turn(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = Instant::now();
        let slot = {
            let mut next = self
                .next_slot
                .lock()
                .expect("rate limit lock is never poisoned");
            let slot = (*next).max(now);
            *next = slot + interval;
            slot
        };
        if slot > now {
            tokio::time::sleep_until(slot).await;
            metrics::rate_limit_wait(slot - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_by_the_cap() {
        let limit = RateLimit::per_second(10);
        let start = Instant::now();

        for _ in 0..5 {
            limit.wait_turn().await;
        }

        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn no_cap_never_waits() {
        let limit = RateLimit::per_second(0);
        let start = Instant::now();

        for _ in 0..1000 {
            limit.wait_turn().await;
        }

        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
