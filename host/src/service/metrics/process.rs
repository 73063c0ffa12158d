//! The process's own figures in the names Prometheus client libraries use
//! (`process_resident_memory_bytes`, `process_cpu_seconds_total`,
//! `process_open_fds`, `process_max_fds`, `process_start_time_seconds`),
//! read from `/proc/self` at scrape time. Where `/proc` is missing (not
//! Linux), they are left out.

use std::fs;

use super::{family, sample};

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, which Linux fixes
/// at 100 for userspace on every architecture).
const TICKS_PER_SECOND: f64 = 100.0;

/// Appends the process series that could be read.
pub(super) fn render(out: &mut String) {
    if let Some(stat) = fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| Stat::parse(&s))
    {
        let help = "Virtual memory size in bytes.";
        family(out, "process_virtual_memory_bytes", "gauge", help);
        sample(out, "process_virtual_memory_bytes", &[], stat.vsize_bytes);
        let help = "Total user and system CPU time spent in seconds.";
        family(out, "process_cpu_seconds_total", "counter", help);
        let cpu = (stat.utime + stat.stime) / TICKS_PER_SECOND;
        sample(out, "process_cpu_seconds_total", &[], cpu);
        if let Some(boot) = boot_time() {
            let help = "Start time of the process since the Unix epoch in seconds.";
            family(out, "process_start_time_seconds", "gauge", help);
            let start = boot + stat.start_ticks / TICKS_PER_SECOND;
            sample(out, "process_start_time_seconds", &[], start);
        }
    }
    if let Some(rss) = resident_bytes() {
        let help = "Resident memory size in bytes.";
        family(out, "process_resident_memory_bytes", "gauge", help);
        sample(out, "process_resident_memory_bytes", &[], rss);
    }
    if let Ok(fds) = fs::read_dir("/proc/self/fd") {
        family(
            out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
        );
        sample(out, "process_open_fds", &[], fds.count() as f64);
    }
    if let Some(max) = max_fds() {
        let help = "Maximum number of open file descriptors.";
        family(out, "process_max_fds", "gauge", help);
        sample(out, "process_max_fds", &[], max);
    }
}

/// The fields of `/proc/self/stat` that are reported.
#[derive(Debug, PartialEq)]
struct Stat {
    utime: f64,
    stime: f64,
    start_ticks: f64,
    vsize_bytes: f64,
}

impl Stat {
    /// Parses the line; the command name (field 2) may hold spaces and
    /// parentheses, so fields are counted from its closing parenthesis.
    fn parse(line: &str) -> Option<Stat> {
        let rest = &line[line.rfind(')')? + 1..];
        // After the name: field 3 (state) is index 0.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
        Some(Stat {
            utime: field(14)?,
            stime: field(15)?,
            start_ticks: field(22)?,
            vsize_bytes: field(23)?,
        })
    }
}

/// Resident memory, from `VmRSS` in `/proc/self/status` (in kB there, so the
/// page size does not matter).
fn resident_bytes() -> Option<f64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024.0)
}

/// When the machine booted, in seconds since the Unix epoch.
fn boot_time() -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The soft limit on open files.
fn max_fds() -> Option<f64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_parses_past_a_command_name_with_spaces_and_parentheses() {
        let line = "4242 (weir (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 \
                    9 0 123456 734003200 5120 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0";
        let stat = Stat::parse(line).unwrap();
        assert_eq!(
            stat,
            Stat {
                utime: 250.0,
                stime: 50.0,
                start_ticks: 123456.0,
                vsize_bytes: 734003200.0,
            }
        );
    }

    #[test]
    fn this_process_reports_memory_cpu_and_fds() {
        let mut out = String::new();
        render(&mut out);
        for name in [
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(out.contains(&format!("# HELP {name} ")), "{name}: {out}");
            let value: f64 = out
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name}: {out}"))
                .parse()
                .unwrap();
            assert!(value >= 0.0, "{name}");
        }
    }
}
