//! What the cluster run does to the nodes, in order: stop the node that
//! leads the command queue and start it again, stop another one and start
//! it again, then roll a restart through every node, one at a time. Each
//! stop is a [`NodeLoss`], timed so the report can say how long outcomes
//! stalled after it.
//!
//! Stops are spread over the commands as the fault run spreads its
//! disruptions, and held in step with the publisher by a [`Gate`]: the
//! i-th stop waits until i/(n+1) of the commands were sent, and the
//! publisher waits for it to have begun before it sends more. However
//! long a node takes to stop and start, every loss happens with commands
//! still to come.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, watch};

use crate::lab::cluster::{Cluster, ClusterError};

/// Why a node was picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// It led the command queue.
    Leader,
    /// Another node than the one stopped first.
    Another,
    /// Its turn in the rolling restart.
    Rolling,
}

/// One node stop.
#[derive(Debug)]
pub struct NodeLoss {
    /// The node's name.
    pub node: String,
    /// Why it was picked.
    pub pick: Pick,
    /// When it went down.
    pub stopped_at: Instant,
    /// How long it stayed down, once it is back.
    pub down_for: Option<Duration>,
}

/// Node stops in a script on `nodes` nodes: the leader, another, and each
/// node once more in the rolling restart.
pub fn stops(nodes: usize) -> usize {
    2 + nodes
}

/// Keeps node stops and the publisher in step.
pub struct Gate {
    sent: AtomicU32,
    held_ms: AtomicU64,
    thresholds: Vec<u32>,
    begun: watch::Sender<usize>,
}

impl Gate {
    /// `stops` stops spread over `commands` commands.
    pub fn new(commands: u32, stops: usize) -> Self {
        let thresholds = (1..=stops as u64)
            .map(|i| (u64::from(commands) * i / (stops as u64 + 1)) as u32)
            .collect();
        Self {
            sent: AtomicU32::new(0),
            held_ms: AtomicU64::new(0),
            thresholds,
            begun: watch::Sender::new(0),
        }
    }

    /// Waits, before command `number` (from 0) is sent, until every stop
    /// due by then has begun.
    pub async fn before_send(&self, number: u32) {
        let due = self.thresholds.iter().filter(|&&t| t <= number).count();
        let mut begun = self.begun.subscribe();
        let since = Instant::now();
        let _ = begun.wait_for(|&begun| begun >= due).await;
        let held = since.elapsed().as_millis() as u64;
        self.held_ms.fetch_add(held, Ordering::Relaxed);
    }

    /// How long the publisher waited for node stops in all. Outcomes stall
    /// meanwhile for want of commands, not because of the cluster.
    pub fn held(&self) -> Duration {
        Duration::from_millis(self.held_ms.load(Ordering::Relaxed))
    }

    /// Notes that `count` commands were sent.
    pub fn sent(&self, count: u32) {
        self.sent.store(count, Ordering::Relaxed);
    }

    /// Lets the publisher go on to the end: the script ended, done or not.
    pub fn release(&self) {
        self.begun.send_replace(usize::MAX);
    }

    async fn wait_for_turn(&self, stop: usize) {
        let threshold = self.thresholds.get(stop).copied().unwrap_or(0);
        while self.sent.load(Ordering::Relaxed) < threshold {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Runs the whole script on `cluster`, appending each loss to `losses` as
/// it happens, so an interrupted run still reports what was done. Each node
/// stays down for `down`.
pub async fn run(
    cluster: &Arc<Mutex<Cluster>>,
    command_queue: &str,
    down: Duration,
    gate: &Gate,
    losses: &std::sync::Mutex<Vec<NodeLoss>>,
) -> Result<(), ClusterError> {
    let nodes = cluster.lock().await.nodes().len();
    gate.wait_for_turn(0).await;
    let leader = cluster.lock().await.leader_of(command_queue).await?;
    let mut picks = vec![
        (leader, Pick::Leader),
        ((leader + 1) % nodes, Pick::Another),
    ];
    picks.extend((0..nodes).map(|node| (node, Pick::Rolling)));
    for (stop, (node, pick)) in picks.into_iter().enumerate() {
        gate.wait_for_turn(stop).await;
        bounce(
            cluster,
            node,
            pick,
            down,
            || {
                gate.begun.send_replace(stop + 1);
            },
            losses,
        )
        .await?;
    }
    Ok(())
}

/// Stops node `i` once the queues can spare it, telling `stopping` as the
/// stop begins; leaves it down for a while, starts it again.
async fn bounce(
    cluster: &Arc<Mutex<Cluster>>,
    i: usize,
    pick: Pick,
    down: Duration,
    stopping: impl FnOnce(),
    losses: &std::sync::Mutex<Vec<NodeLoss>>,
) -> Result<(), ClusterError> {
    let mut cluster = cluster.lock().await;
    let node = cluster.nodes()[i].name.clone();
    cluster.await_spare(i).await?;
    eprintln!("cluster-run: stopping {node} ({})", pick.describe());
    let stopped_at = Instant::now();
    stopping();
    let index = {
        let mut losses = lock(losses);
        losses.push(NodeLoss {
            node: node.clone(),
            pick,
            stopped_at,
            down_for: None,
        });
        losses.len() - 1
    };
    cluster.stop_node(i).await?;
    tokio::time::sleep(down).await;
    cluster.start_node(i).await?;
    lock(losses)[index].down_for = Some(stopped_at.elapsed());
    eprintln!("cluster-run: {node} is back");
    Ok(())
}

impl Pick {
    /// How the report says it.
    pub fn describe(self) -> &'static str {
        match self {
            Pick::Leader => "leads the command queue",
            Pick::Another => "another node",
            Pick::Rolling => "rolling restart",
        }
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_are_spread_evenly_over_the_commands() {
        let gate = Gate::new(600, stops(3));

        assert_eq!(gate.thresholds, [100, 200, 300, 400, 500]);
    }

    #[tokio::test]
    async fn the_publisher_waits_for_a_stop_that_is_due() {
        let gate = Arc::new(Gate::new(600, 5));
        // Before the first threshold nothing is due.
        tokio::time::timeout(Duration::from_millis(50), gate.before_send(99))
            .await
            .expect("command 99 goes out before any stop");

        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.before_send(100).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "command 100 waits for the first stop"
        );

        gate.begun.send_replace(1);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("the first stop lets it go")
            .unwrap();
    }

    #[tokio::test]
    async fn a_released_gate_holds_nothing_back() {
        let gate = Gate::new(600, 5);

        gate.release();

        tokio::time::timeout(Duration::from_millis(50), gate.before_send(599))
            .await
            .expect("a script that ended early does not block the publisher");
    }
}
