//! The dnf executor (manager `rpm`): `dnf install -y name-version`, a rollback as
//! `dnf downgrade` then `dnf versionlock add` (the hold), and the versions read back with
//! `rpm -q`. Under a private root dnf gets `--installroot`.
//!
//! Not exercised on this machine (the build and test machines are Debian): the command
//! lines and the parsers are tested on recorded dnf 4 / rpm 4.16 output only.

use super::{ExecOptions, Failure, PackageRun, append_log, run_command};
use crate::Root;
use ringfence_proto::jobs::PackageVersion;
use std::collections::BTreeMap;
use std::time::Duration;

fn root_options(root: &Root) -> Vec<String> {
    if root.0 == std::path::Path::new("/") {
        Vec::new()
    } else {
        vec![format!("--installroot={}", root.0.display())]
    }
}

/// `name-version` is how dnf spells an exact version (the version may carry an epoch).
fn spec(p: &PackageVersion) -> String {
    format!("{}-{}", p.name, p.version)
}

/// `dnf install` (or `dnf downgrade` for a rollback) of exact versions.
pub fn install_command(root: &Root, packages: &[PackageVersion], rollback: bool) -> Vec<String> {
    let mut c = vec!["dnf".to_string()];
    c.extend(root_options(root));
    c.extend(["-y", "--setopt=install_weak_deps=False"].map(String::from));
    c.push(if rollback { "downgrade" } else { "install" }.to_string());
    c.extend(packages.iter().map(spec));
    c
}

/// `dnf versionlock add`: needs the versionlock plugin (`python3-dnf-plugin-versionlock`).
pub fn hold_command(root: &Root, packages: &[PackageVersion]) -> Vec<String> {
    let mut c = vec!["dnf".to_string()];
    c.extend(root_options(root));
    c.extend(["-y", "versionlock", "add"].map(String::from));
    c.extend(packages.iter().map(spec));
    c
}

pub fn query_command(root: &Root, names: &[&str]) -> Vec<String> {
    let mut c = vec!["rpm".to_string()];
    if root.0 != std::path::Path::new("/") {
        c.push(format!("--root={}", root.0.display()));
    }
    c.extend(["-q", "--qf", "%{NAME}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\n"].map(String::from));
    c.extend(names.iter().map(|n| n.to_string()));
    c
}

/// Reads `rpm -q --qf '%{NAME}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\n'`; epoch 0 is left out,
/// as the inventory writes it. "package X is not installed" lines are skipped.
pub fn parse_rpm_query(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((name, evr)) = line.split_once('\t') else { continue };
        let evr = evr.trim();
        let evr = evr.strip_prefix("0:").unwrap_or(evr);
        if !name.is_empty() && !evr.is_empty() && !name.contains(' ') {
            out.insert(name.to_string(), evr.to_string());
        }
    }
    out
}

/// One line that says what failed, from dnf's output.
pub fn failure_detail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    if let Some(l) = lines.iter().find(|l| l.contains("scriptlet failed")) {
        // "error: %post(foo-1.2-1.x86_64) scriptlet failed, exit status 1"
        let pkg = l.split_once('(').and_then(|(_, r)| r.split_once(')')).map(|(p, _)| p).unwrap_or("?");
        return format!("rpm failed on package {pkg}: {}", l.trim_start_matches("error: "));
    }
    if let Some(l) = lines.iter().find(|l| l.starts_with("No match for argument:")) {
        return format!("{l}: the repositories configured on the device do not offer this version");
    }
    if let Some(l) = lines.iter().find(|l| l.starts_with("Error: Unable to find a match:")) {
        return format!(
            "{}: the repositories configured on the device do not offer this version",
            l.trim_start_matches("Error: ")
        );
    }
    if let Some(l) = lines.iter().find(|l| l.contains("Waiting for process with pid")) {
        return format!("the package manager is busy: {l}");
    }
    match lines.iter().find(|l| l.starts_with("Error:")) {
        Some(l) => format!("dnf failed: {}", l.trim_start_matches("Error:").trim()),
        None => "dnf failed without an error line: see the log".to_string(),
    }
}

/// The versions of `packages` rpm has now ("" = not installed).
pub fn installed(packages: &[PackageVersion], root: &Root) -> Vec<PackageVersion> {
    let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    // rpm -q exits 1 when one name is not installed, and still prints the others.
    let found =
        run_command(&query_command(root, &names), &[("LC_ALL", "C".to_string())], Duration::from_secs(60))
            .map(|r| parse_rpm_query(&r.output))
            .unwrap_or_default();
    packages
        .iter()
        .map(|p| PackageVersion { version: found.get(&p.name).cloned().unwrap_or_default(), ..p.clone() })
        .collect()
}

/// Installs, or downgrades to and locks, the exact versions.
pub fn apply(packages: &[PackageVersion], rollback: bool, opts: &ExecOptions) -> PackageRun {
    let mut log = String::new();
    let env = [("LC_ALL", "C".to_string())];
    let step = |argv: Vec<String>, log: &mut String| -> Result<String, Failure> {
        append_log(log, &format!("$ {}", argv.join(" ")));
        let r =
            run_command(&argv, &env, Duration::from_secs(3600)).map_err(|e| Failure::new("install", e))?;
        append_log(log, &r.output);
        if r.success() { Ok(r.output) } else { Err(Failure::new("install", failure_detail(&r.output))) }
    };
    let mut failure = step(install_command(&opts.root, packages, rollback), &mut log).err();
    if failure.is_none() && rollback {
        failure = step(hold_command(&opts.root, packages), &mut log).err();
    }
    let installed = installed(packages, &opts.root);
    let failure =
        failure.or_else(|| super::version_mismatch(packages, &installed).map(|d| Failure::new("install", d)));
    PackageRun { installed, log, failure }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnf_failures_become_one_line() {
        let check = |out: &str, expect: &str| assert_eq!(failure_detail(out), expect);
        check(
            "Running transaction\n  Running scriptlet: foo-1.2-1.el9.x86_64\nerror: %post(foo-1.2-1.el9.x86_64) scriptlet failed, exit status 1\n\nError in POSTIN scriptlet in rpm package foo\n",
            "rpm failed on package foo-1.2-1.el9.x86_64: %post(foo-1.2-1.el9.x86_64) scriptlet failed, exit status 1",
        );
        check(
            "Last metadata expiration check: 0:12:01 ago on Sat 06 Dec 2026.\nNo match for argument: foo-9.9\nError: Unable to find a match: foo-9.9\n",
            "No match for argument: foo-9.9: the repositories configured on the device do not offer this version",
        );
        check(
            "Error: Unable to find a match: foo-9.9\n",
            "Unable to find a match: foo-9.9: the repositories configured on the device do not offer this version",
        );
        check(
            "Waiting for process with pid 1234 to finish.\n",
            "the package manager is busy: Waiting for process with pid 1234 to finish.",
        );
        check("Error: Transaction test error:\n  file /x conflicts\n", "dnf failed: Transaction test error:");
        check("", "dnf failed without an error line: see the log");
    }

    #[test]
    fn rpm_query_reads_versions_and_drops_epoch_zero() {
        let got = parse_rpm_query(
            "openssl-libs\t1:3.0.7-27.el9\nbash\t0:5.1.8-9.el9\npackage nope is not installed\n",
        );
        assert_eq!(got.get("openssl-libs").map(String::as_str), Some("1:3.0.7-27.el9"));
        assert_eq!(got.get("bash").map(String::as_str), Some("5.1.8-9.el9"));
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn commands_name_exact_versions() {
        let p = vec![PackageVersion {
            manager: "rpm".into(),
            name: "bash".into(),
            version: "5.1.8-9.el9".into(),
        }];
        assert_eq!(
            install_command(&Root("/".into()), &p, false),
            ["dnf", "-y", "--setopt=install_weak_deps=False", "install", "bash-5.1.8-9.el9"]
        );
        assert_eq!(install_command(&Root("/r".into()), &p, true)[1], "--installroot=/r");
        assert_eq!(install_command(&Root("/r".into()), &p, true)[4], "downgrade");
        assert_eq!(
            hold_command(&Root("/".into()), &p),
            ["dnf", "-y", "versionlock", "add", "bash-5.1.8-9.el9"]
        );
    }
}
