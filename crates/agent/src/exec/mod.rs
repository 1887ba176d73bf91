//! Executors: what the agent does with a verified job's packages. This module holds what all
//! package managers share: the options (`ExecOptions`: root, reboot command, free-space
//! minimum, lock wait), the pre-checks (disk space, package-manager lock, pending reboot,
//! battery), a command runner with a timeout and a combined, bounded log, and the dispatch
//! of each package to its manager's executor (`apt` for `dpkg`, `dnf` for `rpm`, and the
//! Windows and macOS ones in `platforms`). It does not decide whether a job may run (that is
//! `jobs`, with the signature and the ledger) and it does not talk to the server.
//!
//! Everything reads and writes under `ExecOptions::root`, so the same code installs into a
//! private dpkg root in tests and into `/` on a device.

pub mod apt;
pub mod dnf;
pub mod health;

use crate::Root;
use ringfence_proto::jobs::{MAX_LOG, PackageVersion};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How the executors behave on this device.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// Where the system lives: `/`, or a private root (a test tree, a mounted image).
    pub root: Root,
    /// The program and arguments that reboot the machine.
    pub reboot_command: Vec<String>,
    /// Free space the package cache and `/` must have before an install (MiB).
    pub min_free_mib: u64,
    /// How long to wait for another package manager to finish before giving up.
    pub lock_wait: Duration,
}

impl ExecOptions {
    /// The defaults for a root: `systemctl reboot`, 500 MiB free, two minutes of lock wait.
    pub fn for_root(root: Root) -> ExecOptions {
        ExecOptions {
            root,
            reboot_command: vec!["systemctl".into(), "reboot".into()],
            min_free_mib: 500,
            lock_wait: Duration::from_secs(120),
        }
    }

    /// Whether the executors work on the running system rather than a private root.
    pub fn is_system_root(&self) -> bool {
        self.root.0 == Path::new("/")
    }
}

/// Why a step of a job failed: the report's `phase` and one line of `detail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub phase: &'static str,
    pub detail: String,
}

impl Failure {
    pub fn new(phase: &'static str, detail: impl Into<String>) -> Failure {
        Failure { phase, detail: detail.into() }
    }
}

/// What the package step of an install or rollback did.
#[derive(Clone, Debug, Default)]
pub struct PackageRun {
    /// The job's packages at the versions found afterwards ("" = not installed).
    pub installed: Vec<PackageVersion>,
    pub log: String,
    pub failure: Option<Failure>,
}

/// The end of `text`, at most `max` bytes, cut on a character boundary: the end of a log is
/// where the error is.
pub fn keep_end(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// The start of `text`, at most `max` bytes (a label or one line of a report).
pub fn keep_start(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Appends to a job's log, keeping only its last `MAX_LOG` bytes.
pub fn append_log(log: &mut String, text: &str) {
    log.push_str(text);
    if !text.ends_with('\n') {
        log.push('\n');
    }
    if log.len() > 2 * MAX_LOG {
        *log = keep_end(log, MAX_LOG);
    }
}

/// The kernel's boot id: under a private root its `proc/sys/kernel/random/boot_id` when
/// present (tests simulate a reboot by rewriting it), else the running kernel's.
pub fn boot_id(root: &Root) -> Option<String> {
    let file = "/proc/sys/kernel/random/boot_id";
    let private = (root.0 != Path::new("/")).then(|| root.read(file)).flatten();
    private
        .or_else(|| std::fs::read_to_string(file).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Whether the system asks for a reboot (Debian's `reboot-required` flag file).
pub fn reboot_required(root: &Root) -> bool {
    root.path("/run/reboot-required").exists() || root.path("/var/run/reboot-required").exists()
}

/// What a command did: its exit code (`None` when killed), stdout and stderr interleaved as
/// written, and whether it ran out of time.
#[derive(Clone, Debug, Default)]
pub struct CommandRun {
    pub code: Option<i32>,
    pub output: String,
    pub timed_out: bool,
}

impl CommandRun {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs `argv` with `env` added, killing it (and what it started) after `timeout`. stdout
/// and stderr share one pipe so the log reads in the order things happened; only the last
/// `2 * MAX_LOG` bytes are kept.
pub fn run_command(argv: &[String], env: &[(&str, String)], timeout: Duration) -> Result<CommandRun, String> {
    let (program, args) = argv.split_first().ok_or("an empty command line")?;
    let (mut reader, writer) = std::io::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(writer.try_clone().map_err(|e| format!("cannot make a pipe: {e}"))?)
        .stderr(writer);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Its own process group, so a timeout kills what it started too (a shell's children
    // would otherwise keep the pipe open).
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {program}: {e}"))?;
    // The parent's copies of the pipe's writing end go with the Command; without this the
    // reader would never see the end.
    drop(cmd);
    let collector = std::thread::spawn(move || {
        let mut kept: Vec<u8> = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > 4 * MAX_LOG {
                        kept.drain(..kept.len() - 2 * MAX_LOG);
                    }
                }
            }
        }
        kept
    });
    let started = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= timeout => {
                timed_out = true;
                kill_group(&mut child);
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot wait for {program}: {e}")),
        }
    };
    if !timed_out {
        // The command is done; anything it left running in its group must not hold the log.
        kill_group(&mut child);
    }
    let bytes = collector.join().unwrap_or_default();
    Ok(CommandRun {
        code: if timed_out { None } else { status.and_then(|s| s.code()) },
        output: keep_end(&String::from_utf8_lossy(&bytes), 2 * MAX_LOG),
        timed_out,
    })
}

fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is shared.
        let pgid = child.id() as i32;
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
}

/// Pre-check: the file system holding `path` has at least `min_mib` MiB free.
pub fn check_free_space(path: &Path, min_mib: u64) -> Result<(), Failure> {
    let free = free_mib(path).map_err(|e| Failure::new("precheck", e))?;
    if free < min_mib {
        return Err(Failure::new(
            "precheck",
            format!(
                "only {free} MiB free on {} (at least {min_mib} MiB needed): free some space, then retry",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// Free space for unprivileged use of the file system holding `path`, in MiB.
pub fn free_mib(path: &Path) -> Result<u64, String> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| format!("{} contains a NUL byte", path.display()))?;
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a valid NUL-terminated path and `st` a statvfs the call fills in.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return Err(format!(
                "cannot read the free space of {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64) / (1024 * 1024))
    }
    #[cfg(windows)]
    {
        use std::os::windows::ffi::OsStrExt;
        let wide: Vec<u16> = path.as_os_str().encode_wide().chain(Some(0)).collect();
        let mut available: u64 = 0;
        // SAFETY: `wide` is a NUL-terminated UTF-16 path; the call writes one u64.
        let ok = unsafe {
            windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceExW(
                wide.as_ptr(),
                &mut available,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(format!(
                "cannot read the free space of {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(available / (1024 * 1024))
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = path;
        Err("free space cannot be read on this platform".into())
    }
}

/// Pre-check: refuse while the machine runs on a discharging battery (an install cut by a
/// dead battery can leave the package database half-configured).
pub fn check_battery(root: &Root) -> Result<(), Failure> {
    let Ok(entries) = std::fs::read_dir(root.path("/sys/class/power_supply")) else { return Ok(()) };
    for e in entries.flatten() {
        let read = |f: &str| std::fs::read_to_string(e.path().join(f)).unwrap_or_default();
        if read("type").trim() == "Battery" && read("status").trim() == "Discharging" {
            return Err(Failure::new(
                "precheck",
                format!(
                    "running on battery ({} is discharging): connect the charger; the job is retried in a later window",
                    e.file_name().to_string_lossy()
                ),
            ));
        }
    }
    Ok(())
}

/// Pre-check: a reboot is already pending and the job may not reboot: installing now would
/// leave the device running old code with new files, so refuse.
pub fn check_pending_reboot(root: &Root, reboot_allowed: bool) -> Result<(), Failure> {
    if !reboot_allowed && reboot_required(root) {
        return Err(Failure::new(
            "precheck",
            "a reboot is pending and this job may not reboot: reboot the device or allow a reboot in the window",
        ));
    }
    Ok(())
}

/// The process holding a write lock on `path`, if any (dpkg and apt take `fcntl` locks).
pub fn lock_holder(path: &Path) -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let f = std::fs::OpenOptions::new().read(true).write(true).open(path).ok()?;
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        // Open-file-description locks see a lock held by any other open file, also one of
        // this process (tests hold one that way), and dpkg's classic locks alike.
        // SAFETY: `fl` is a valid flock for F_OFD_GETLK on an open descriptor.
        let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
        if r == 0 && fl.l_type != libc::F_UNLCK as libc::c_short {
            return Some(fl.l_pid);
        }
        None
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

/// The package-manager locks under the root, in the order apt takes them.
pub fn lock_files(root: &Root) -> Vec<std::path::PathBuf> {
    [
        "/var/lib/dpkg/lock-frontend",
        "/var/lib/dpkg/lock",
        "/var/lib/apt/lists/lock",
        "/var/cache/apt/archives/lock",
    ]
    .iter()
    .map(|p| root.path(p))
    .collect()
}

/// Pre-check: waits up to `wait` for the package-manager locks to be free.
pub fn wait_for_locks(root: &Root, wait: Duration) -> Result<(), Failure> {
    let started = Instant::now();
    loop {
        let held = lock_files(root).into_iter().find_map(|p| lock_holder(&p).map(|pid| (p, pid)));
        let Some((path, pid)) = held else { return Ok(()) };
        if started.elapsed() >= wait {
            return Err(Failure::new(
                "precheck",
                format!(
                    "the package manager is busy: process {pid} holds {} after {} s of waiting; the job is retried later",
                    path.display(),
                    wait.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The pre-checks of an install or rollback, in order; the first that fails stops the job.
pub fn prechecks(opts: &ExecOptions, managers: &[&str], reboot_allowed: bool) -> Result<(), Failure> {
    check_pending_reboot(&opts.root, reboot_allowed)?;
    check_battery(&opts.root)?;
    let mut paths = vec![opts.root.path("/")];
    if managers.contains(&"dpkg") {
        paths.insert(0, opts.root.path("/var/cache/apt/archives"));
    }
    for p in paths {
        // A missing cache folder is apt's to create; measure what holds it then.
        let p = if p.exists() { p } else { opts.root.path("/") };
        check_free_space(&p, opts.min_free_mib)?;
    }
    if managers.contains(&"dpkg") {
        wait_for_locks(&opts.root, opts.lock_wait)?;
    }
    Ok(())
}

/// Brings `packages` to their exact versions (and, for a rollback, holds them there), with
/// each package's own manager. Managers of another platform fail with a clear detail.
pub fn apply_packages(packages: &[PackageVersion], rollback: bool, opts: &ExecOptions) -> PackageRun {
    let mut managers: Vec<&str> = packages.iter().map(|p| p.manager.as_str()).collect();
    managers.sort();
    managers.dedup();
    let mut total = PackageRun::default();
    for manager in managers {
        let mine: Vec<PackageVersion> = packages.iter().filter(|p| p.manager == manager).cloned().collect();
        let run = match manager {
            "dpkg" => apt::apply(&mine, rollback, opts),
            "rpm" => dnf::apply(&mine, rollback, opts),
            "windows_update" | "winget" if cfg!(target_os = "windows") => {
                crate::platforms::windows_install::apply(&mine, rollback)
            }
            "softwareupdate" if cfg!(target_os = "macos") => {
                crate::platforms::macos_install::apply(&mine, rollback)
            }
            other => PackageRun {
                installed: mine
                    .iter()
                    .map(|p| PackageVersion { version: String::new(), ..p.clone() })
                    .collect(),
                log: String::new(),
                failure: Some(Failure::new(
                    "precheck",
                    format!(
                        "package manager '{other}' is not available on this {} device",
                        std::env::consts::OS
                    ),
                )),
            },
        };
        append_log(&mut total.log, &run.log);
        total.installed.extend(run.installed);
        if run.failure.is_some() && total.failure.is_none() {
            total.failure = run.failure;
        }
    }
    // The report lists the job's packages in the job's order.
    total.installed.sort_by_key(|i| packages.iter().position(|p| p.manager == i.manager && p.name == i.name));
    total
}

/// The versions of `packages` installed now, without changing anything (for a job stopped
/// before its package step). Managers of another platform read as "" (unknown).
pub fn current_versions(packages: &[PackageVersion], opts: &ExecOptions) -> Vec<PackageVersion> {
    let mut log = String::new();
    let dpkg: Vec<PackageVersion> = packages.iter().filter(|p| p.manager == "dpkg").cloned().collect();
    let rpm: Vec<PackageVersion> = packages.iter().filter(|p| p.manager == "rpm").cloned().collect();
    let mut found = Vec::new();
    if !dpkg.is_empty() {
        found.extend(apt::installed(&dpkg, &opts.root, &mut log));
    }
    if !rpm.is_empty() && cfg!(target_os = "linux") {
        found.extend(dnf::installed(&rpm, &opts.root));
    }
    packages
        .iter()
        .map(|p| {
            found
                .iter()
                .find(|f| f.manager == p.manager && f.name == p.name)
                .cloned()
                .unwrap_or_else(|| PackageVersion { version: String::new(), ..p.clone() })
        })
        .collect()
}

/// The first package not at its target version, as a failure detail.
pub fn version_mismatch(targets: &[PackageVersion], installed: &[PackageVersion]) -> Option<String> {
    targets.iter().find_map(|t| {
        let now = installed.iter().find(|i| i.manager == t.manager && i.name == t.name);
        match now.map(|i| i.version.as_str()) {
            Some(v) if v == t.version => None,
            Some("") | None => {
                Some(format!("{} is not installed after the run (target {})", t.name, t.version))
            }
            Some(v) => Some(format!("{} is at {v} after the run, not the target {}", t.name, t.version)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ringfence-exec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn battery_discharging_refuses_and_mains_or_charging_does_not() {
        let d = tree("battery");
        let root = Root(d.clone());
        assert_eq!(check_battery(&root), Ok(()), "no power_supply folder: a server");
        let bat = d.join("sys/class/power_supply/BAT0");
        let ac = d.join("sys/class/power_supply/AC");
        std::fs::create_dir_all(&bat).unwrap();
        std::fs::create_dir_all(&ac).unwrap();
        std::fs::write(ac.join("type"), "Mains\n").unwrap();
        std::fs::write(bat.join("type"), "Battery\n").unwrap();
        std::fs::write(bat.join("status"), "Charging\n").unwrap();
        assert_eq!(check_battery(&root), Ok(()));
        std::fs::write(bat.join("status"), "Discharging\n").unwrap();
        let e = check_battery(&root).unwrap_err();
        assert_eq!(e.phase, "precheck");
        assert!(e.detail.contains("BAT0 is discharging"), "{}", e.detail);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_pending_reboot_refuses_only_jobs_that_may_not_reboot() {
        let d = tree("reboot");
        let root = Root(d.clone());
        assert_eq!(check_pending_reboot(&root, false), Ok(()));
        std::fs::create_dir_all(d.join("var/run")).unwrap();
        std::fs::write(d.join("var/run/reboot-required"), "*** System restart required ***\n").unwrap();
        assert!(check_pending_reboot(&root, false).unwrap_err().detail.contains("reboot is pending"));
        assert_eq!(check_pending_reboot(&root, true), Ok(()));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn free_space_below_the_minimum_refuses() {
        let d = tree("space");
        assert_eq!(check_free_space(&d, 0), Ok(()));
        let e = check_free_space(&d, u64::MAX).unwrap_err();
        assert!(e.detail.contains("MiB free on") && e.detail.contains("free some space"), "{}", e.detail);
        assert!(check_free_space(&d.join("missing"), 1).unwrap_err().detail.contains("cannot read"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_held_dpkg_lock_makes_the_precheck_wait_then_fail() {
        use std::os::fd::AsRawFd;
        let d = tree("lock");
        let root = Root(d.clone());
        std::fs::create_dir_all(d.join("var/lib/dpkg")).unwrap();
        let lock = d.join("var/lib/dpkg/lock-frontend");
        assert_eq!(wait_for_locks(&root, Duration::ZERO), Ok(()), "no lock file: nothing holds it");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock)
            .unwrap();
        assert_eq!(lock_holder(&lock), None);
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        assert_eq!(unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLK, &fl) }, 0);
        assert!(lock_holder(&lock).is_some());
        let started = Instant::now();
        let e = wait_for_locks(&root, Duration::from_millis(500)).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(500));
        assert!(e.detail.starts_with("the package manager is busy"), "{}", e.detail);
        drop(f);
        assert_eq!(wait_for_locks(&root, Duration::ZERO), Ok(()));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    #[cfg(unix)] // runs /bin/sh
    fn commands_are_killed_on_timeout_and_their_output_is_kept_in_order() {
        let sh = |s: &str| vec!["/bin/sh".to_string(), "-c".to_string(), s.to_string()];
        let r = run_command(
            &sh("echo out; echo err >&2; echo \"$X\"; exit 3"),
            &[("X", "x".into())],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!((r.code, r.output.as_str(), r.timed_out), (Some(3), "out\nerr\nx\n", false));
        let started = Instant::now();
        let r = run_command(&sh("sleep 30 & sleep 30"), &[], Duration::from_millis(300)).unwrap();
        assert!(r.timed_out && r.code.is_none());
        assert!(started.elapsed() < Duration::from_secs(5), "the group was killed, the pipe closed");
        assert!(
            run_command(&["/no/such/program".to_string()], &[], Duration::from_secs(1))
                .unwrap_err()
                .contains("cannot run")
        );
    }

    #[test]
    fn logs_keep_their_end_on_a_character_boundary() {
        assert_eq!(keep_end("abcdef", 3), "def");
        assert_eq!(keep_end("aé", 1), "");
        assert_eq!(keep_end("aé", 2), "é");
        let mut log = String::new();
        for _ in 0..(3 * MAX_LOG / 10) {
            append_log(&mut log, "123456789");
        }
        assert!(log.len() <= 2 * MAX_LOG);
        assert!(log.ends_with("123456789\n"));
    }

    #[test]
    fn a_version_mismatch_names_the_package() {
        let p =
            |n: &str, v: &str| PackageVersion { manager: "dpkg".into(), name: n.into(), version: v.into() };
        assert_eq!(version_mismatch(&[p("a", "1")], &[p("a", "1")]), None);
        assert_eq!(
            version_mismatch(&[p("a", "1")], &[p("a", "0.9")]).unwrap(),
            "a is at 0.9 after the run, not the target 1"
        );
        assert!(version_mismatch(&[p("a", "1")], &[p("a", "")]).unwrap().contains("not installed"));
    }
}
