//! A process the lab started: its output goes to a log file of its own, and
//! a run ends it one of two ways, SIGKILL on purpose or SIGTERM with a grace
//! period.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// How often a starting process is asked whether it answers yet.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A process could not be started or did not come up; the run stops.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The log file cannot be created.
    #[error("cannot create the log file {path}")]
    Log {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The program cannot be started.
    #[error("cannot start {program}; is it built (`cargo build --release`)?")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The process ended before it answered.
    #[error("{name} exited ({status}) before it answered; see {log}")]
    ExitedEarly {
        /// Which process.
        name: String,
        /// How it ended.
        status: ExitStatus,
        /// Its log.
        log: PathBuf,
    },
    /// The process did not answer in time.
    #[error("{name} did not answer {url} within {limit:?}; see {log}")]
    NotAnswering {
        /// Which process.
        name: String,
        /// What was asked.
        url: String,
        /// How long the lab waited.
        limit: Duration,
        /// Its log.
        log: PathBuf,
    },
}

/// A child process with its standard output and error in one log file.
///
/// Dropping it kills the process, so a lab that fails half-way leaves
/// nothing running behind it.
pub struct ChildProcess {
    name: String,
    log: PathBuf,
    child: Child,
}

impl ChildProcess {
    /// Starts `command`, its output going to `log`; `name` is how reports
    /// and errors call it (`worker 2`).
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Result<Self, ProcessError> {
        let log_error = |source| ProcessError::Log {
            path: log.to_owned(),
            source,
        };
        let stdout = File::create(log).map_err(log_error)?;
        let stderr = stdout.try_clone().map_err(log_error)?;
        // A process group of its own: Ctrl-C at the terminal reaches only the
        // lab, which then stops its children in its own order.
        command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(true);
        let child = command.spawn().map_err(|source| ProcessError::Spawn {
            program: PathBuf::from(command.as_std().get_program()),
            source,
        })?;
        Ok(Self {
            name: name.to_owned(),
            log: log.to_owned(),
            child,
        })
    }

    /// How reports call it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where its output goes.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Its exit status, if it has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills it with SIGKILL, as a crash would, and waits until it is gone.
    pub async fn kill(&mut self) {
        // An error means it had already exited, which is what we want.
        let _ = self.child.kill().await;
    }

    /// Asks it to stop with SIGTERM, waits up to `grace`, then kills it.
    pub async fn stop(&mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        if let Some(pid) = self.child.id() {
            terminate(pid);
        }
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            self.kill().await;
        }
    }

    /// Waits until `url` answers 200, the process exits, or `limit` passes.
    pub async fn wait_until_answering(
        &mut self,
        http: &reqwest::Client,
        url: &str,
        limit: Duration,
    ) -> Result<(), ProcessError> {
        let since = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return Err(ProcessError::ExitedEarly {
                    name: self.name.clone(),
                    status,
                    log: self.log.clone(),
                });
            }
            let answer = http.get(url).send().await;
            if answer.is_ok_and(|response| response.status().is_success()) {
                return Ok(());
            }
            if since.elapsed() > limit {
                return Err(ProcessError::NotAnswering {
                    name: self.name.clone(),
                    url: url.to_owned(),
                    limit,
                    log: self.log.clone(),
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// Sends SIGTERM. tokio's `Child` only knows SIGKILL, and a graceful stop is
/// what lets the worker hand its deliveries back cleanly.
fn terminate(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours;
    // the pid is our own child's, not yet reaped, so it names no other process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// A loopback port that was free a moment ago, for a process to listen on.
///
/// Another process could take it in between; on a test machine that is rare
/// enough, and the process then fails to start with a clear error.
pub fn free_loopback_port() -> io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// A `Command` for `program` without the caller's `CARD_ISSUER_*` variables,
/// so the settings of a started process are exactly the flags given to it.
pub fn clean_command(program: &Path) -> Command {
    let mut command = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CARD_ISSUER_") {
            command.env_remove(key);
        }
    }
    command
}
