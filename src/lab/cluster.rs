//! RabbitMQ nodes of the lab's own, on one host: a three-node cluster for
//! the cluster run, or a single node for the scaling figures.
//!
//! Each node is Debian's `rabbitmq-server` under a name and ports of its own
//! (AMQP on `base_port + i`, Erlang distribution 20000 above, as RabbitMQ
//! numbers them), with its data and logs in a directory of the run, and no
//! plugins. Every node and every `rabbitmqctl` runs as the `rabbitmq` user
//! with that user's home, so they share its Erlang cookie: that is what lets
//! the nodes cluster. The lab therefore has to run as root or as `rabbitmq`.
//!
//! Nodes are started with Debian's inner script,
//! `/usr/lib/rabbitmq/bin/rabbitmq-server`: the outer wrapper writes over
//! the shared node's `/var/log/rabbitmq/startup_log`.
//!
//! The nodes run with one setting changed from RabbitMQ's defaults, the one
//! the README asks of a production cluster: quorum queues dead-letter at
//! least once through a worker process on the queue's leader, which sends
//! each dead-lettered message on to its target queue and sends it again
//! if no confirm comes within `dead_letter_worker_publisher_confirm_timeout`.
//! When the target queue's leader changes under that worker, the confirm
//! never comes, and with the default of 180 s every delayed step caught in
//! the move waits three minutes (seen on RabbitMQ 3.10.8 in the cluster
//! run: 825 status checks held for 180 s after a rolling restart). The lab
//! sets it to [`DLX_CONFIRM_TIMEOUT_MS`]; a step sent twice is one the
//! worker already takes in its stride.
//!
//! Stopping a node is `rabbitmqctl stop`, which ends its Erlang VM: every
//! connection to it drops and its queue replicas go away until it is started
//! again, as when a machine of a real cluster goes down. Before a node is
//! stopped the lab waits until every quorum queue could lose it and still
//! have a majority (`rabbitmq-upgrade await_online_quorum_plus_one`), as a
//! careful operator would in a rolling restart; without that wait a restart
//! that comes too soon after the previous one would make the queues
//! unavailable, which shows a broken procedure, not a broken worker.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::process::{Child, Command};

/// Debian's inner start script, which runs the node in the foreground.
const SERVER_SCRIPT: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// The home of Debian's `rabbitmq` user, where its Erlang cookie lives.
const RABBITMQ_HOME: &str = "/var/lib/rabbitmq";

/// How long a quorum queue's dead-letter worker waits for a confirm before
/// it sends a dead-lettered message again (RabbitMQ's default: 180 s).
pub const DLX_CONFIRM_TIMEOUT_MS: u32 = 5_000;

/// How long a node may take to boot (Erlang VM, Mnesia, quorum queues).
const BOOT_LIMIT: Duration = Duration::from_secs(120);

/// How long a node may take to stop.
const STOP_LIMIT: Duration = Duration::from_secs(60);

/// How long the lab waits for the quorum queues to have a member to spare
/// before it stops a node.
const QUORUM_LIMIT: Duration = Duration::from_secs(120);

/// A node could not be started, joined, asked or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The lab runs as a user that cannot share the nodes' cookie.
    #[error(
        "RabbitMQ nodes run as the rabbitmq user, to share its Erlang cookie; run the lab as \
         root or as rabbitmq"
    )]
    User,
    /// A program could not be run at all.
    #[error("cannot run {program}; is Debian's rabbitmq-server installed?")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The node's directory or log cannot be written.
    #[error("cannot prepare {path}")]
    Dir {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("`{command}` failed ({status}): {output}")]
    Failed {
        /// What was run.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The last lines it printed.
        output: String,
    },
    /// A node did not come up or go down in time.
    #[error("{node} did not {what} within {limit:?}; see {log}")]
    Timeout {
        /// The node.
        node: String,
        /// "start" or "stop".
        what: &'static str,
        /// How long the lab waited.
        limit: Duration,
        /// The node's log directory.
        log: PathBuf,
    },
    /// `list_queues` printed something the lab cannot read.
    #[error("cannot read `rabbitmqctl list_queues`")]
    Queues(#[source] serde_json::Error),
    /// The nodes' ports would clash or overflow.
    #[error(
        "{nodes} nodes from port {first} need ports below 45535 that leave 5672, the shared \
         broker's, alone; choose another base port"
    )]
    Ports {
        /// The first node's AMQP port.
        first: u16,
        /// How many nodes.
        nodes: usize,
    },
    /// Asked about a queue the cluster does not have.
    #[error("no node leads {0}")]
    NoLeader(String),
}

/// Where and how to start a set of nodes.
#[derive(Clone, Debug)]
pub struct ClusterLayout {
    /// Node names are `<prefix>-<i>@localhost`, from 1.
    pub prefix: String,
    /// How many nodes; more than one are joined into one cluster.
    pub nodes: usize,
    /// Node i listens for AMQP on `base_port + i - 1`.
    pub base_port: u16,
    /// Where the nodes keep their data and logs; emptied first.
    pub dir: PathBuf,
}

/// One node of the lab's.
#[derive(Debug)]
pub struct Node {
    /// `prefix-i@localhost`.
    pub name: String,
    /// Its AMQP port on 127.0.0.1.
    pub amqp_port: u16,
    dir: PathBuf,
    /// Whether the lab stopped it (or never started it).
    pub down: bool,
    /// The process the lab started it as (`runuser` or the start script,
    /// the node's VM below it in the same process group).
    process: Option<Child>,
}

/// The nodes' names and AMQP ports, apart from the nodes themselves.
#[derive(Clone, Debug)]
pub struct Addresses {
    /// The node names, in order.
    pub names: Vec<String>,
    ports: Vec<u16>,
}

impl Addresses {
    /// The AMQP URL of node `i` (from 0), as guest.
    pub fn url(&self, i: usize) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.ports[i])
    }

    /// Every node's URL, comma-separated, starting with node `first`: what
    /// a replica meant to connect to `first` is given as
    /// `CARD_ISSUER_AMQP_URL`.
    pub fn urls_from(&self, first: usize) -> String {
        let count = self.ports.len();
        (0..count)
            .map(|k| self.url((first + k) % count))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Nodes the lab started; [`Cluster::shut_down`] stops them all and
/// deletes their data.
#[derive(Debug)]
pub struct Cluster {
    nodes: Vec<Node>,
    dir: PathBuf,
    control_log: PathBuf,
}

/// One row of `rabbitmqctl list_queues name leader --formatter json`.
#[derive(Deserialize)]
struct QueueLeader {
    name: String,
    leader: Option<String>,
}

impl Cluster {
    /// The nodes of `layout`, none started yet: a handle that
    /// [`Cluster::shut_down`] can clean up after from the first moment,
    /// however far [`Cluster::form`] gets.
    pub fn new(layout: &ClusterLayout) -> Result<Self, ClusterError> {
        check_user()?;
        check_ports(layout)?;
        recreate_dir(&layout.dir)?;
        let nodes = (1..=layout.nodes)
            .map(|i| Node {
                name: format!("{}-{i}@localhost", layout.prefix),
                amqp_port: layout.base_port + i as u16 - 1,
                dir: layout.dir.join(format!("node-{i}")),
                down: true,
                process: None,
            })
            .collect();
        Ok(Self {
            nodes,
            control_log: layout.dir.join("rabbitmqctl.log"),
            dir: layout.dir.clone(),
        })
    }

    /// Starts the nodes and joins them into one cluster. A node of the same
    /// name already running (left by a run that was killed, or another lab
    /// run on the same ports) is stopped first: the names belong to the
    /// lab.
    pub async fn form(&mut self) -> Result<(), ClusterError> {
        for i in 0..self.nodes.len() {
            if self.ctl(i, &["ping"]).await.is_ok() {
                eprintln!(
                    "cluster: {} is already running; stopping it",
                    self.nodes[i].name
                );
                self.stop_node(i).await?;
            }
            self.start_node(i).await?;
        }
        let first = self.nodes[0].name.clone();
        for i in 1..self.nodes.len() {
            self.ctl(i, &["stop_app"]).await?;
            self.ctl(i, &["join_cluster", &first]).await?;
            self.ctl(i, &["start_app"]).await?;
            self.ctl(i, &["await_startup"]).await?;
        }
        Ok(())
    }

    /// The nodes, in order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Where the nodes listen, to hand to clients.
    pub fn addresses(&self) -> Addresses {
        Addresses {
            names: self.nodes.iter().map(|n| n.name.clone()).collect(),
            ports: self.nodes.iter().map(|n| n.amqp_port).collect(),
        }
    }

    /// The node (index from 0) that leads the quorum queue `queue`, asked of
    /// a node that is up.
    pub async fn leader_of(&self, queue: &str) -> Result<usize, ClusterError> {
        let asked = self.nodes.iter().position(|n| !n.down).unwrap_or(0);
        let output = self
            .ctl(
                asked,
                &["-q", "list_queues", "name", "leader", "--formatter", "json"],
            )
            .await?;
        let rows: Vec<QueueLeader> =
            serde_json::from_slice(&output.stdout).map_err(ClusterError::Queues)?;
        let leader = rows
            .into_iter()
            .find(|row| row.name == queue)
            .and_then(|row| row.leader)
            .ok_or_else(|| ClusterError::NoLeader(queue.to_owned()))?;
        self.nodes
            .iter()
            .position(|node| node.name == leader)
            .ok_or_else(|| ClusterError::NoLeader(queue.to_owned()))
    }

    /// Waits until every quorum queue can lose node `i` and keep a
    /// majority: what an operator checks before taking a node down.
    pub async fn await_spare(&self, i: usize) -> Result<(), ClusterError> {
        if self.nodes.len() > 1 {
            let limit = QUORUM_LIMIT.as_secs().to_string();
            self.run(
                "rabbitmq-upgrade",
                i,
                &["await_online_quorum_plus_one", "-t", &limit],
            )
            .await?;
        }
        Ok(())
    }

    /// Stops node `i` (its Erlang VM) and waits until it is gone. Call
    /// [`Cluster::await_spare`] first, or the queues may lose their
    /// majority.
    pub async fn stop_node(&mut self, i: usize) -> Result<(), ClusterError> {
        self.nodes[i].down = true;
        self.ctl(i, &["stop"]).await?;
        let since = Instant::now();
        while self.ctl(i, &["ping"]).await.is_ok() {
            if since.elapsed() > STOP_LIMIT {
                return Err(self.timeout(i, "stop", STOP_LIMIT));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.reap(i, STOP_LIMIT.saturating_sub(since.elapsed()))
            .await;
        Ok(())
    }

    /// Waits up to `patience` for node `i`'s process to end, then kills its
    /// whole process group, the VM included.
    async fn reap(&mut self, i: usize, patience: Duration) {
        let Some(mut process) = self.nodes[i].process.take() else {
            return;
        };
        if tokio::time::timeout(patience, process.wait()).await.is_ok() {
            return;
        }
        if let Some(pid) = process.id() {
            eprintln!(
                "cluster: {} did not end; killing its processes",
                self.nodes[i].name
            );
            // SAFETY: kill(2) takes plain integers and touches no memory of
            // ours. The group is the node's own (`process_group(0)`).
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
        let _ = process.wait().await;
    }

    /// Starts node `i` with its data as it left it, and waits until it
    /// serves; a node of a cluster rejoins it by itself.
    pub async fn start_node(&mut self, i: usize) -> Result<(), ClusterError> {
        let node = &self.nodes[i];
        prepare_node_dir(node)?;
        let log = node.dir.join("log").join("startup.log");
        let output = File::create(&log).map_err(|source| ClusterError::Dir {
            path: log.clone(),
            source,
        })?;
        let errors = output.try_clone().map_err(|source| ClusterError::Dir {
            path: log.clone(),
            source,
        })?;
        let mut command = as_rabbitmq(SERVER_SCRIPT);
        command
            .env("RABBITMQ_NODENAME", &node.name)
            .env("RABBITMQ_NODE_PORT", node.amqp_port.to_string())
            .env(
                "RABBITMQ_DIST_PORT",
                (u32::from(node.amqp_port) + 20_000).to_string(),
            )
            .env("RABBITMQ_CONFIG_FILE", node.dir.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ADVANCED_CONFIG_FILE",
                node.dir.join("advanced.config"),
            )
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                node.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_MNESIA_BASE", node.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", node.dir.join("log"))
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            // Its own process group: Ctrl-C on the lab must not take the
            // node down behind the lab's back; clean-up stops it.
            .process_group(0);
        let process = command.spawn().map_err(|source| ClusterError::Spawn {
            program: SERVER_SCRIPT.into(),
            source,
        })?;
        self.nodes[i].process = Some(process);
        let since = Instant::now();
        while self
            .ctl(i, &["-q", "await_startup", "--timeout", "2"])
            .await
            .is_err()
        {
            if since.elapsed() > BOOT_LIMIT {
                return Err(self.timeout(i, "start", BOOT_LIMIT));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.nodes[i].down = false;
        Ok(())
    }

    /// The operating-system process ids of the nodes that are up, to
    /// measure their CPU time.
    pub async fn os_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for i in (0..self.nodes.len()).filter(|&i| !self.nodes[i].down) {
            if let Ok(output) = self.ctl(i, &["eval", "os:getpid()."]).await {
                let text = String::from_utf8_lossy(&output.stdout);
                if let Ok(pid) = text.trim().trim_matches('"').parse() {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// Stops every node the lab started and deletes their data, keeping
    /// their logs. A node that does not answer (one still booting, say) is
    /// killed. Failures are printed, with what to do by hand, rather than
    /// returned: this runs when a run is already ending.
    pub async fn shut_down(&mut self) {
        let mut left_running = Vec::new();
        for i in 0..self.nodes.len() {
            // Asked even of nodes marked down: a failed start may have left
            // one running.
            if self.ctl(i, &["ping"]).await.is_ok()
                && let Err(error) = self.ctl(i, &["stop"]).await
            {
                eprintln!("cluster: {}", crate::worker::error_chain(&error));
            }
            self.reap(i, STOP_LIMIT).await;
            self.nodes[i].down = true;
            if self.ctl(i, &["ping"]).await.is_ok() {
                left_running.push(self.nodes[i].name.clone());
            }
        }
        if left_running.is_empty() {
            for node in &self.nodes {
                let _ = std::fs::remove_dir_all(node.dir.join("mnesia"));
            }
        } else {
            eprintln!(
                "cluster: still running, stop by hand with `rabbitmqctl -n NODE stop`: {}; \
                 data in {}",
                left_running.join(" "),
                self.dir.display()
            );
        }
    }

    async fn ctl(&self, i: usize, args: &[&str]) -> Result<Output, ClusterError> {
        self.run("rabbitmqctl", i, args).await
    }

    /// Runs a RabbitMQ CLI tool against node `i`, logging what it said.
    async fn run(&self, tool: &str, i: usize, args: &[&str]) -> Result<Output, ClusterError> {
        let node = &self.nodes[i].name;
        let mut command = as_rabbitmq(tool);
        command.args(["-n", node]).args(args).process_group(0);
        let output = command
            .output()
            .await
            .map_err(|source| ClusterError::Spawn {
                program: tool.to_owned(),
                source,
            })?;
        let shown = format!("{tool} -n {node} {}", args.join(" "));
        self.record(&shown, &output);
        if output.status.success() {
            return Ok(output);
        }
        Err(ClusterError::Failed {
            command: shown,
            status: output.status,
            output: last_lines(&output),
        })
    }

    fn timeout(&self, i: usize, what: &'static str, limit: Duration) -> ClusterError {
        ClusterError::Timeout {
            node: self.nodes[i].name.clone(),
            what,
            limit,
            log: self.nodes[i].dir.join("log"),
        }
    }

    /// Appends what a tool said to the cluster's control log; the log is
    /// evidence, so failing to write it is not worth stopping the run.
    fn record(&self, shown: &str, output: &Output) {
        let Ok(mut file) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.control_log)
        else {
            return;
        };
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        let _ = writeln!(file, "{now} {shown} -> {}", output.status);
        let _ = file.write_all(&output.stdout);
        let _ = file.write_all(&output.stderr);
    }
}

/// A command run as the `rabbitmq` user with its home, directly when the
/// lab already is that user, through `runuser` when it is root.
fn as_rabbitmq(program: &str) -> Command {
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "rabbitmq", "--", program]);
        command
    } else {
        Command::new(program)
    };
    command.env("HOME", RABBITMQ_HOME);
    command
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| {
        use std::os::unix::fs::MetadataExt;
        meta.uid() == 0
    })
}

fn check_user() -> Result<(), ClusterError> {
    use std::os::unix::fs::MetadataExt;
    if is_root() {
        return Ok(());
    }
    // The lab runs as rabbitmq exactly when its home is ours.
    let me = std::fs::metadata("/proc/self").map(|m| m.uid());
    let theirs = std::fs::metadata(RABBITMQ_HOME).map(|m| m.uid());
    match (me, theirs) {
        (Ok(me), Ok(theirs)) if me == theirs => Ok(()),
        _ => Err(ClusterError::User),
    }
}

/// Every node's AMQP port and Erlang distribution port (20000 above) must
/// exist and stay off the shared broker's 5672.
fn check_ports(layout: &ClusterLayout) -> Result<(), ClusterError> {
    let first = u32::from(layout.base_port);
    let last = first + layout.nodes as u32 - 1;
    if last + 20_000 > u32::from(u16::MAX) || (first..=last).contains(&5672) {
        return Err(ClusterError::Ports {
            first: layout.base_port,
            nodes: layout.nodes,
        });
    }
    Ok(())
}

fn recreate_dir(dir: &Path) -> Result<(), ClusterError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|source| ClusterError::Dir {
        path: dir.to_owned(),
        source,
    })
}

/// The node's configuration (its own listener: the system file pins 5672;
/// the dead-letter worker's confirm timeout), no plugins, and directories
/// the `rabbitmq` user owns.
fn prepare_node_dir(node: &Node) -> Result<(), ClusterError> {
    let dir_error = |path: &Path| {
        let path = path.to_owned();
        move |source| ClusterError::Dir { path, source }
    };
    for sub in ["mnesia", "log"] {
        let path = node.dir.join(sub);
        std::fs::create_dir_all(&path).map_err(dir_error(&path))?;
    }
    let config = node.dir.join("rabbitmq.conf");
    let listener = format!("listeners.tcp.1 = 127.0.0.1:{}\n", node.amqp_port);
    std::fs::write(&config, listener).map_err(dir_error(&config))?;
    let advanced = node.dir.join("advanced.config");
    let settings = format!(
        "[{{rabbit, [{{dead_letter_worker_publisher_confirm_timeout, {DLX_CONFIRM_TIMEOUT_MS}}}]}}].\n"
    );
    std::fs::write(&advanced, settings).map_err(dir_error(&advanced))?;
    let plugins = node.dir.join("enabled_plugins");
    std::fs::write(&plugins, "[].\n").map_err(dir_error(&plugins))?;
    if is_root() {
        chown_to_rabbitmq(&node.dir)?;
    }
    Ok(())
}

fn chown_to_rabbitmq(dir: &Path) -> Result<(), ClusterError> {
    use std::os::unix::fs::MetadataExt;
    let home = std::fs::metadata(RABBITMQ_HOME).map_err(|source| ClusterError::Dir {
        path: RABBITMQ_HOME.into(),
        source,
    })?;
    // The run's directory too, so the node can reach its own below it.
    let mut paths = vec![dir.to_owned()];
    if let Some(parent) = dir.parent() {
        paths.push(parent.to_owned());
    }
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        if let Ok(entries) = std::fs::read_dir(&path) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path.clone());
                }
                paths.push(path);
            }
        }
    }
    for path in paths {
        std::os::unix::fs::chown(&path, Some(home.uid()), Some(home.gid()))
            .map_err(|source| ClusterError::Dir { path, source })?;
    }
    Ok(())
}

fn last_lines(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_replica_gets_every_node_starting_with_its_own() {
        let addresses = Addresses {
            names: vec![
                "a@localhost".into(),
                "b@localhost".into(),
                "c@localhost".into(),
            ],
            ports: vec![5691, 5692, 5693],
        };

        let urls = addresses.urls_from(1);

        let ports: Vec<&str> = urls
            .split(',')
            .map(|url| url.rsplit(':').next().unwrap())
            .collect();
        assert_eq!(ports, ["5692/%2f", "5693/%2f", "5691/%2f"]);
    }
}
