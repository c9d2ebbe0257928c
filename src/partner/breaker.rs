//! The circuit breaker: when the partner keeps failing, new open-card calls
//! pause instead of hammering it.
//!
//! Open-card calls report their replies here. When half of the last calls
//! (a window of `CARD_ISSUER_BREAKER_WINDOW`) failed transiently (1007,
//! 1009, 5xx, 429, timeouts), the breaker opens; a window rather than a run
//! of failures in a row, because with dozens of calls in flight the odd
//! failures of a healthy partner line up now and then. So does a
//! `Retry-After` from the partner, for as long as it asks, and so do rejected
//! credentials, for the longest retry delay. While it is open, open-card
//! calls wait; status checks keep their own schedule, because a card the
//! partner has already issued should not wait on a new application. When the
//! pause ends, one trial call goes through: an answer closes the breaker, a
//! failure opens it again for twice as long, up to ten times the base.
//!
//! Status checks report too, but only what concerns every call: rejected
//! credentials and a `Retry-After`. Their other answers say nothing about
//! open-card: the partner may answer 1005 to status checks while its HUMO
//! side answers 1007 to every new application.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{PartnerCode, Reply};
use crate::metrics;

/// How the breaker stands, for the metric and for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// One trial call is allowed.
    HalfOpen,
    /// Open-card calls wait.
    Open,
}

#[derive(Debug)]
enum State {
    Closed {
        recent: Recent,
    },
    Open {
        until: Instant,
        openings: u32,
        credentials: bool,
    },
    HalfOpen {
        trial_running: bool,
        openings: u32,
    },
}

/// Shared by every handler of this process.
pub struct Breaker {
    state: Mutex<State>,
    changed: Notify,
    window: usize,
    base_pause: Duration,
    credentials_pause: Duration,
}

/// Leave to make an open-card call. Dropping it without a recorded reply (the
/// call was abandoned) frees the trial slot for someone else.
pub struct Admission<'a> {
    breaker: &'a Breaker,
    trial: bool,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if !self.trial {
            return;
        }
        let mut state = self.breaker.lock();
        if let State::HalfOpen { trial_running, .. } = &mut *state {
            *trial_running = false;
        }
        drop(state);
        self.breaker.changed.notify_waiters();
    }
}

impl Breaker {
    /// A closed breaker that watches the last `window` open-card calls.
    pub fn new(window: u32, base_pause: Duration, credentials_pause: Duration) -> Self {
        metrics::circuit_state(0);
        Self {
            state: Mutex::new(State::Closed {
                recent: Recent::default(),
            }),
            changed: Notify::new(),
            window: window.max(1) as usize,
            base_pause,
            credentials_pause,
        }
    }

    /// How the breaker stands now.
    pub fn state(&self) -> BreakerState {
        match &*self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
            State::Open { until, .. } if *until <= Instant::now() => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
        }
    }

    /// Waits until an open-card call may go out.
    pub async fn admit(&self) -> Admission<'_> {
        loop {
            // Registered before the state is read, so a change between the
            // read and the wait is not missed.
            let changed = self.changed.notified();
            let wake_at = {
                let mut state = self.lock();
                match &mut *state {
                    State::Closed { .. } => {
                        return Admission {
                            breaker: self,
                            trial: false,
                        };
                    }
                    State::Open {
                        until, openings, ..
                    } if *until <= Instant::now() => {
                        *state = State::HalfOpen {
                            trial_running: true,
                            openings: *openings,
                        };
                        publish(&state);
                        return Admission {
                            breaker: self,
                            trial: true,
                        };
                    }
                    State::HalfOpen { trial_running, .. } if !*trial_running => {
                        *trial_running = true;
                        return Admission {
                            breaker: self,
                            trial: true,
                        };
                    }
                    State::Open { until, .. } => Some(*until),
                    State::HalfOpen { .. } => None,
                }
            };
            match wake_at {
                Some(until) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// Takes an open-card call's reply into account.
    pub fn record_open_card(&self, reply: &Reply) {
        self.update(classify(reply), true);
    }

    /// Takes a status check's reply into account: only rejected
    /// credentials and a `Retry-After` count.
    pub fn record_status_check(&self, reply: &Reply) {
        let verdict = match classify(reply) {
            Verdict::Credentials => Verdict::Credentials,
            Verdict::Failing {
                retry_after: Some(asked),
            } if !asked.is_zero() => Verdict::Failing {
                retry_after: Some(asked),
            },
            _ => return,
        };
        self.update(verdict, false);
    }

    fn update(&self, verdict: Verdict, from_open_card: bool) {
        let mut state = self.lock();
        let before = BreakerKind::of(&state);
        let next = match (verdict, &mut *state) {
            (Verdict::Credentials, current) => State::Open {
                until: Instant::now() + self.credentials_pause,
                openings: openings_of(current),
                credentials: true,
            },
            // Answers to calls let out before the breaker opened arrive
            // late; they neither close it nor extend the pause.
            (_, State::Open { .. }) => return,
            (Verdict::Healthy, State::Closed { recent }) => {
                recent.push(false, self.window);
                return;
            }
            (Verdict::Healthy, State::HalfOpen { .. }) => State::Closed {
                recent: Recent::default(),
            },
            (Verdict::Failing { retry_after }, current) => {
                if !from_open_card && !matches!(current, State::Closed { .. }) {
                    return;
                }
                match self.after_failure(current, retry_after) {
                    Some(next) => next,
                    None => return,
                }
            }
        };
        *state = next;
        let after = BreakerKind::of(&state);
        if before != after {
            publish(&state);
            log_change(&state);
            drop(state);
            self.changed.notify_waiters();
        }
    }

    /// The state a transient failure leads to, or `None` when the breaker
    /// stays closed (the failure only joins the window).
    fn after_failure(&self, state: &mut State, retry_after: Option<Duration>) -> Option<State> {
        let asked = retry_after.unwrap_or_default();
        match state {
            State::Closed { recent } => {
                let failures = recent.push(true, self.window);
                if failures < self.window.div_ceil(2) && asked.is_zero() {
                    return None;
                }
                Some(self.open(1, asked))
            }
            State::HalfOpen { openings, .. } | State::Open { openings, .. } => {
                Some(self.open(*openings + 1, asked))
            }
        }
    }

    fn open(&self, openings: u32, asked: Duration) -> State {
        let longest = self.base_pause.saturating_mul(10);
        let doubled = self
            .base_pause
            .saturating_mul(2u32.saturating_pow(openings.saturating_sub(1)));
        // What the partner asks for is honoured up to the longest pause the
        // breaker would choose itself, or the credentials pause if longer.
        let asked = asked.min(longest.max(self.credentials_pause));
        let pause = doubled.min(longest).max(asked);
        // Up to a fifth more, so replicas that opened together do not all
        // send their trial call in the same instant.
        let jitter = pause.mul_f64(fastrand::f64() * 0.2);
        State::Open {
            until: Instant::now() + pause + jitter,
            openings,
            credentials: false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Its state stays consistent whatever panicked while holding it: each
        // update replaces the state whole.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The outcomes of the last open-card calls, `true` for a transient failure.
#[derive(Debug, Default)]
struct Recent {
    failed: VecDeque<bool>,
}

impl Recent {
    /// Adds a call's outcome, forgets those beyond the window, and returns
    /// the failures left in it.
    fn push(&mut self, failed: bool, window: usize) -> usize {
        self.failed.push_back(failed);
        while self.failed.len() > window {
            self.failed.pop_front();
        }
        self.failed.iter().filter(|failed| **failed).count()
    }
}

enum Verdict {
    Healthy,
    Failing { retry_after: Option<Duration> },
    Credentials,
}

fn classify(reply: &Reply) -> Verdict {
    match reply {
        Reply::Accepted | Reply::Issued { .. } => Verdict::Healthy,
        Reply::Refused {
            code: PartnerCode::HumoUnavailable | PartnerCode::ServiceUnavailable,
            ..
        } => Verdict::Failing { retry_after: None },
        Reply::Refused { .. } => Verdict::Healthy,
        Reply::Unavailable { retry_after, .. } => Verdict::Failing {
            retry_after: *retry_after,
        },
        Reply::CredentialsRejected { .. } => Verdict::Credentials,
    }
}

fn openings_of(state: &State) -> u32 {
    match state {
        State::Closed { .. } => 0,
        State::Open { openings, .. } | State::HalfOpen { openings, .. } => *openings,
    }
}

#[derive(PartialEq, Eq)]
enum BreakerKind {
    Closed,
    Open { credentials: bool },
    HalfOpen,
}

impl BreakerKind {
    fn of(state: &State) -> Self {
        match state {
            State::Closed { .. } => Self::Closed,
            State::Open { credentials, .. } => Self::Open {
                credentials: *credentials,
            },
            State::HalfOpen { .. } => Self::HalfOpen,
        }
    }
}

fn publish(state: &State) {
    metrics::circuit_state(match state {
        State::Closed { .. } => 0,
        State::HalfOpen { .. } => 1,
        State::Open { .. } => 2,
    });
}

fn log_change(state: &State) {
    match state {
        State::Closed { .. } => tracing::info!("partner answers again; circuit breaker closed"),
        State::Open {
            until,
            credentials: true,
            ..
        } => tracing::error!(
            pause = ?until.saturating_duration_since(Instant::now()),
            "the partner rejects our credentials (401/403): new open-card calls are paused and \
             requests wait; check CARD_ISSUER_PARTNER_USERNAME and CARD_ISSUER_PARTNER_PASSWORD"
        ),
        State::Open {
            until, openings, ..
        } => tracing::warn!(
            pause = ?until.saturating_duration_since(Instant::now()),
            openings,
            "the partner keeps failing; circuit breaker open, new open-card calls wait"
        ),
        State::HalfOpen { .. } => {}
    }
}

#[cfg(test)]
mod tests;
