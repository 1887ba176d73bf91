//! Test fixtures for the agent's executors, shared by this crate's tests and the server's
//! end-to-end rollout tests: small `.deb` packages of a made-up service `ringdemo` built with
//! `dpkg-deb`, a flat `file:` apt repository of them with a hand-written `Packages` index, and
//! a private dpkg/apt root to install them into. Nothing here is used by the agent itself.
//!
//! ringdemo 1.0 and 1.1 are good; 1.2's postinst exits 1 on client machines (it passes
//! where `/etc/ringdemo/lab` exists, the MSP's own lab, as a bad update does); 1.3 installs but its
//! `ringdemo --health` exits 1; 1.4 is good and asks for a reboot (its postinst writes
//! `$DPKG_ROOT/run/reboot-required`, as kernel packages do).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether apt and dpkg are here; without them the test is skipped, except in CI.
pub fn tools_present() -> bool {
    let missing: Vec<&str> = ["dpkg-deb", "dpkg-query", "apt-get", "apt-mark"]
        .into_iter()
        .filter(|t| Command::new(t).arg("--version").output().is_err())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{} missing: CI must run the apt tests (install apt and dpkg)", missing.join(", "));
    }
    eprintln!("SKIPPED: {} missing (the apt tests need Debian's apt and dpkg)", missing.join(", "));
    false
}

pub fn write(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Builds `ringdemo_VERSION_all.deb` into `repo`.
pub fn build_deb(work: &Path, repo: &Path, version: &str, postinst: &str, health_exit: u8) {
    let d = work.join(format!("build-{version}"));
    write(
        &d.join("DEBIAN/control"),
        &format!(
            "Package: ringdemo\nVersion: {version}\nArchitecture: all\nMaintainer: Ringfence Tests <tests@ringfence.example>\nDescription: a made-up service for the agent tests\n"
        ),
        0o644,
    );
    write(&d.join("DEBIAN/postinst"), &format!("#!/bin/sh\n{postinst}\n"), 0o755);
    write(
        &d.join("usr/bin/ringdemo"),
        &format!("#!/bin/sh\n# ringdemo {version}\n[ \"$1\" = --health ] && exit {health_exit}\nexit 0\n"),
        0o755,
    );
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&d)
        .arg(repo.join(format!("ringdemo_{version}_all.deb")))
        .output()
        .unwrap();
    assert!(out.status.success(), "dpkg-deb: {}", String::from_utf8_lossy(&out.stderr));
}

/// The flat repository's `Packages` index, written by hand from the built files.
pub fn write_packages_index(repo: &Path) {
    publish(repo, &[]);
}

/// Writes the repository's `Packages` index with only these versions (all when empty): a
/// vendor publishing a new version is a new index.
pub fn publish(repo: &Path, versions: &[&str]) {
    let mut index = String::new();
    let mut debs: Vec<PathBuf> = std::fs::read_dir(repo)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort();
    for deb in debs {
        let name = deb.file_name().unwrap().to_string_lossy().to_string();
        let version = name.trim_start_matches("ringdemo_").trim_end_matches("_all.deb");
        if !versions.is_empty() && !versions.contains(&version) {
            continue;
        }
        let bytes = std::fs::read(&deb).unwrap();
        let sha = Command::new("sha256sum").arg(&deb).output().unwrap();
        let sha = String::from_utf8_lossy(&sha.stdout).split_whitespace().next().unwrap().to_string();
        index.push_str(&format!(
            "Package: ringdemo\nVersion: {version}\nArchitecture: all\nMaintainer: Ringfence Tests <tests@ringfence.example>\nFilename: ./{name}\nSize: {}\nSHA256: {sha}\nDescription: a made-up service for the agent tests\n\n",
            bytes.len()
        ));
    }
    std::fs::write(repo.join("Packages"), index).unwrap();
}

/// Builds ringdemo 1.0 to 1.4 into `dir/repo` and indexes them; returns the repository.
pub fn demo_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    build_deb(dir, &repo, "1.0", "exit 0", 0);
    build_deb(dir, &repo, "1.1", "exit 0", 0);
    build_deb(
        dir,
        &repo,
        "1.2",
        "[ -e \"$DPKG_ROOT/etc/ringdemo/lab\" ] && exit 0\necho 'ringdemo: cannot create its state folder' >&2\nexit 1",
        0,
    );
    build_deb(dir, &repo, "1.3", "exit 0", 1);
    build_deb(
        dir,
        &repo,
        "1.4",
        "mkdir -p \"$DPKG_ROOT/run\"\necho '*** System restart required ***' > \"$DPKG_ROOT/run/reboot-required\"",
        0,
    );
    write_packages_index(&repo);
    repo
}

/// An empty private dpkg/apt root in `dir/root` whose apt source is `repo`, with a boot id.
pub fn private_root(dir: &Path, repo: &Path) -> PathBuf {
    let root = dir.join("root");
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "etc/apt/trusted.gpg.d",
        "etc/apt/sources.list.d",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "var/log/apt",
        "proc/sys/kernel/random",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    std::fs::write(root.join("var/lib/dpkg/available"), "").unwrap();
    std::fs::write(
        root.join("etc/apt/sources.list"),
        format!("deb [trusted=yes] file:{} ./\n", repo.display()),
    )
    .unwrap();
    std::fs::write(root.join("proc/sys/kernel/random/boot_id"), "boot-1\n").unwrap();
    root
}

/// Runs `apt-get` with the private root's options (`args` as one shell word list) and returns
/// what it printed.
pub fn apt(root: &Path, args: &str) -> String {
    let r = root.display();
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "LC_ALL=C DEBIAN_FRONTEND=noninteractive apt-get -o Dir={r} -o Dir::State::status={r}/var/lib/dpkg/status -o DPkg::Options::=--root={r} -o DPkg::Options::=--force-script-chrootless {args} 2>&1"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `VERSION STATUS` of ringdemo in the root (`1.1 ii`, `1.1 hi` when held), or "".
pub fn ringdemo_version(root: &Path) -> String {
    let out = Command::new("dpkg-query")
        .arg(format!("--admindir={}", root.join("var/lib/dpkg").display()))
        .args(["-W", "-f=${Version} ${db:Status-Abbrev}", "ringdemo"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
