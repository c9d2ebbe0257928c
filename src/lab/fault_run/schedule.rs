//! When a fault run breaks things: worker kills and broker restarts, spread
//! evenly over the commands, alternating so that neither kind bunches up.
//! Moments are counted in commands sent rather than seconds, so a run that
//! slows down (the broker was away) still spreads them over its commands.

use std::collections::VecDeque;

/// One deliberate disruption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disruption {
    /// SIGKILL the worker, then start a new one.
    KillWorker,
    /// `rabbitmqctl stop_app`, a pause, `start_app`.
    RestartBroker,
}

/// The disruptions still to come, each after so many commands were sent.
#[derive(Debug)]
pub struct Schedule {
    steps: VecDeque<(u32, Disruption)>,
}

impl Schedule {
    /// `kills` and `restarts` spread over `commands`: the i-th of n
    /// disruptions comes after i/(n+1) of the commands.
    pub fn spread(commands: u32, kills: u32, restarts: u32) -> Self {
        let total = kills + restarts;
        let steps = (0..total)
            .map(|i| {
                let after = u64::from(commands) * u64::from(i + 1) / u64::from(total + 1);
                (after as u32, kind_of(i, kills, total))
            })
            .collect();
        Self { steps }
    }

    /// The next disruption due once `sent` commands went out, if any.
    pub fn due(&mut self, sent: u32) -> Option<Disruption> {
        let &(after, disruption) = self.steps.front()?;
        if sent < after {
            return None;
        }
        self.steps.pop_front();
        Some(disruption)
    }
}

/// Kills are laid out evenly among the `total` steps (a line drawn across
/// a grid, as Bresenham would), the first step a kill; restarts fill the
/// rest.
fn kind_of(step: u32, kills: u32, total: u32) -> Disruption {
    let kills_before = |n: u32| (u64::from(n) * u64::from(kills)).div_ceil(u64::from(total));
    if kills_before(step + 1) > kills_before(step) {
        Disruption::KillWorker
    } else {
        Disruption::RestartBroker
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Disruption::{KillWorker as Kill, RestartBroker as Restart};

    fn drain(mut schedule: Schedule, commands: u32) -> Vec<(u32, Disruption)> {
        let mut seen = Vec::new();
        for sent in 0..=commands {
            while let Some(disruption) = schedule.due(sent) {
                seen.push((sent, disruption));
            }
        }
        seen
    }

    #[test]
    fn one_kill_and_one_restart_split_the_run_in_thirds() {
        let seen = drain(Schedule::spread(300, 1, 1), 300);

        assert_eq!(seen, [(100, Kill), (200, Restart)]);
    }

    #[test]
    fn kinds_alternate_when_there_are_as_many_of_each() {
        let seen = drain(Schedule::spread(10_000, 3, 3), 10_000);
        let kinds: Vec<Disruption> = seen.iter().map(|(_, kind)| *kind).collect();

        assert_eq!(kinds, [Kill, Restart, Kill, Restart, Kill, Restart]);
        assert!(seen.windows(2).all(|pair| pair[0].0 < pair[1].0));
    }

    #[test]
    fn every_disruption_asked_for_happens_before_the_last_command() {
        for (kills, restarts) in [(0, 0), (5, 0), (0, 4), (4, 2)] {
            let schedule = Schedule::spread(1_000, kills, restarts);

            let seen = drain(schedule, 999);

            let count = |kind| seen.iter().filter(|(_, k)| *k == kind).count() as u32;
            assert_eq!((count(Kill), count(Restart)), (kills, restarts));
        }
    }
}
