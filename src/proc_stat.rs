//! CPU time as Linux's `/proc` counts it, for the measuring tools (the
//! benchmark and the lab): per process, and for the whole machine. The
//! worker itself reads none of this.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Seconds of CPU (user and system) process `pid` has used so far; `None`
/// if it is gone or its `stat` does not parse.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it do not.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index)?.parse::<u64>().ok();
    // Fields 14 and 15 of stat(5), counted from the state (field 3).
    Some((ticks(11)? + ticks(12)?) as f64 / clock_ticks())
}

/// CPU time of the whole machine so far, in clock ticks: (busy, all).
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    if ticks.len() < 5 {
        return None;
    }
    // user nice system idle iowait irq softirq steal ...; guest time is
    // already counted in user.
    let all: u64 = ticks.iter().take(8).sum();
    let idle = ticks[3] + ticks[4];
    Some((all - idle, all))
}

/// Seconds of CPU every process on the machine has used so far, by process
/// id, with its name; processes that end meanwhile are left out.
pub fn all_cpu_seconds() -> HashMap<u32, (String, f64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, (process_name(pid), cpu_seconds(pid)?))))
        .collect()
}

/// A process's name, from `/proc/<pid>/comm`; empty if it is gone.
pub fn process_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

/// A process's arguments, from `/proc/<pid>/cmdline`; empty if it is gone.
pub fn command_line(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|&byte| byte == 0)
                .filter(|arg| !arg.is_empty())
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Clock ticks a second, as `/proc/<pid>/stat` counts CPU time.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_seen_with_its_cpu_time_and_arguments() {
        let me = std::process::id();

        assert!(cpu_seconds(me).is_some_and(|seconds| seconds >= 0.0));
        assert!(!command_line(me).is_empty());
        assert!(all_cpu_seconds().contains_key(&me));
        let (busy, all) = machine_ticks().expect("/proc/stat parses");
        assert!(busy <= all && all > 0);
    }
}
