//! What `/proc` says about a process: CPU time used and resident memory.
//!
//! CPU time is read as user + system ticks from `/proc/PID/stat`, so a figure
//! divided by a request count does not depend on how busy the box was.

use std::time::Duration;

use crate::Error;

/// Clock ticks per second for `/proc/PID/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// User plus system CPU time `pid` has used so far.
pub(crate) fn cpu_time(pid: u32) -> Result<Duration, Error> {
    let stat = read(&format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the rest follows its ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| Error::Proc(format!("{pid}: bad stat")))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' comes field 3 (state); utime and stime are fields 14 and 15.
    let tick = |i: usize| -> Result<u64, Error> {
        fields.get(i).and_then(|f| f.parse().ok()).ok_or_else(|| Error::Proc(format!("{pid}: no field {i}")))
    };
    let ticks = tick(11)? + tick(12)?;
    Ok(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// The current (`VmRSS`) or peak (`VmHWM`) resident size of `pid`, in KiB.
pub(crate) fn memory_kib(pid: u32, field: &str) -> Result<u64, Error> {
    let status = read(&format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| Error::Proc(format!("{pid}: no {field}")))
}

/// `pid` and its child processes (a Node.js cluster's primary and workers).
pub(crate) fn family(pid: u32) -> Result<Vec<u32>, Error> {
    let children = read(&format!("/proc/{pid}/task/{pid}/children"))?;
    Ok(std::iter::once(pid).chain(children.split_whitespace().filter_map(|c| c.parse().ok())).collect())
}

fn read(path: &str) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::Proc(format!("{path}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_cpu_and_memory() {
        let me = std::process::id();
        // Spin until the kernel has charged this process a tick (10 ms of
        // CPU), for at most 10 s of wall time: on a loaded machine 50 ms of
        // wall time brought less than one tick, and the test failed there.
        let spin = std::time::Instant::now();
        while cpu_time(me).unwrap() == Duration::ZERO && spin.elapsed() < Duration::from_secs(10) {}
        assert!(cpu_time(me).unwrap() > Duration::ZERO);
        assert!(memory_kib(me, "VmRSS").unwrap() > 0);
        assert!(memory_kib(me, "VmHWM").unwrap() >= memory_kib(me, "VmRSS").unwrap() / 2);
    }
}
