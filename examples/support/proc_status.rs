//! Memory figures of a process from `/proc/<pid>/status`, shared by the benchmarks.

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), or of this process when `pid` is `None`;
/// 0 where `/proc` does not exist.
pub fn memory_kib(pid: Option<u32>, field: &str) -> u64 {
    let path = pid.map_or_else(
        || "/proc/self/status".to_owned(),
        |pid| format!("/proc/{pid}/status"),
    );
    std::fs::read_to_string(path)
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}
