//! The apt/dpkg executor (manager `dpkg`): exact versions with `apt-get install name=version`,
//! a rollback as a downgrade followed by `apt-mark hold`, and the versions read back from
//! dpkg's database. Only the packages the signed job names are touched; the server decides,
//! so held packages may change (`--allow-change-held-packages`) and downgrades are allowed.
//!
//! Under a private root (`ExecOptions::root` other than `/`) apt reads its configuration,
//! lists, cache and dpkg status under that root (`-o Dir=ROOT`), and dpkg installs there
//! (`--root`), running maintainer scripts on the host with `DPKG_ROOT` set
//! (`--force-script-chrootless`); found on Debian 12 (apt 2.6, dpkg 1.21). Locking stays on:
//! the locks are the root's own.
//!
//! Not here: deciding which versions to install (the server), the pre-checks (`exec`).

use super::{ExecOptions, Failure, PackageRun, append_log, run_command};
use crate::Root;
use ringfence_proto::jobs::PackageVersion;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long apt-get may run before it is killed: large downloads on slow links are normal.
const APT_TIMEOUT: Duration = Duration::from_secs(3600);

/// The options that point apt (and the dpkg it runs) at a private root; none for `/`.
pub fn root_options(root: &Root) -> Vec<String> {
    if root.0 == std::path::Path::new("/") {
        return Vec::new();
    }
    let r = root.0.display().to_string();
    [
        format!("Dir={r}"),
        format!("Dir::State::status={r}/var/lib/dpkg/status"),
        format!("DPkg::Options::=--root={r}"),
        format!("DPkg::Options::=--admindir={r}/var/lib/dpkg"),
        "DPkg::Options::=--force-script-chrootless".to_string(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect()
}

/// `apt-get update`, so the exact versions of the job can be found.
pub fn update_command(root: &Root) -> Vec<String> {
    let mut c = vec!["apt-get".to_string()];
    c.extend(root_options(root));
    c.extend(["-q".to_string(), "update".to_string()]);
    c
}

/// `apt-get install` of exact versions, without questions: conffiles keep the local version
/// (`--force-confold`; the new one lands beside it as `.dpkg-dist`).
pub fn install_command(root: &Root, packages: &[PackageVersion], lock_wait: Duration) -> Vec<String> {
    let mut c = vec!["apt-get".to_string()];
    c.extend(root_options(root));
    for o in [
        "Dpkg::Options::=--force-confdef".to_string(),
        "Dpkg::Options::=--force-confold".to_string(),
        format!("DPkg::Lock::Timeout={}", lock_wait.as_secs()),
    ] {
        c.extend(["-o".to_string(), o]);
    }
    c.extend(
        [
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "--allow-downgrades",
            "--allow-change-held-packages",
        ]
        .map(String::from),
    );
    c.extend(packages.iter().map(|p| format!("{}={}", p.name, p.version)));
    c
}

/// `apt-mark hold`: a plain upgrade leaves these versions alone.
pub fn hold_command(root: &Root, names: &[&str]) -> Vec<String> {
    let mut c = vec!["apt-mark".to_string()];
    c.extend(root_options(root));
    c.push("hold".to_string());
    c.extend(names.iter().map(|n| n.to_string()));
    c
}

/// `dpkg-query -W` of the named packages: name, version, status abbreviation per line.
pub fn query_command(root: &Root, names: &[&str]) -> Vec<String> {
    let mut c = vec!["dpkg-query".to_string()];
    if root.0 != std::path::Path::new("/") {
        c.push(format!("--admindir={}", root.path("/var/lib/dpkg").display()));
    }
    c.extend(["-W".to_string(), "-f=${Package}\t${Version}\t${db:Status-Abbrev}\n".to_string()]);
    c.extend(names.iter().map(|n| n.to_string()));
    c
}

/// Reads `dpkg-query -W -f='${Package}\t${Version}\t${db:Status-Abbrev}\n'`: package →
/// version, for packages dpkg holds as installed (`ii`, `hi`). Half-installed or
/// half-configured packages (`iF`, `iU`) map to their version too, with the status kept, so
/// the caller can tell "1.2, but broken".
pub fn parse_dpkg_query(text: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split('\t');
        let (Some(name), Some(version), Some(status)) = (f.next(), f.next(), f.next()) else { continue };
        let status = status.trim();
        // "un", "pn", "rc": known but not installed; a multiarch name comes as "name:arch".
        // The second letter is the state: installed, or on disk but unfinished (H, U, F, W, t).
        let installed = matches!(status.as_bytes().get(1), Some(b'i' | b'H' | b'U' | b'F' | b'W' | b't'));
        let name = name.split(':').next().unwrap_or(name).trim();
        if name.is_empty() || !installed {
            continue;
        }
        out.insert(name.to_string(), (version.trim().to_string(), status.to_string()));
    }
    out
}

/// What apt-get and dpkg said went wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AptErrors {
    /// `dpkg: error processing package NAME (--configure):` with the line that follows
    /// (why), or an archive that could not be unpacked.
    pub packages: Vec<(String, String)>,
    /// `E: …` lines, without the prefix.
    pub errors: Vec<String>,
}

/// Reads the errors from apt-get's combined output.
pub fn parse_apt_errors(text: &str) -> AptErrors {
    let mut out = AptErrors::default();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("E: ") {
            out.errors.push(rest.trim().to_string());
        } else if let Some(rest) = line
            .strip_prefix("dpkg: error processing package ")
            .or_else(|| line.strip_prefix("dpkg: error processing archive "))
        {
            let name = rest.split(" (").next().unwrap_or(rest).trim();
            // An archive is a path: ".../ringdemo_1.2_all.deb" names the package before "_".
            let name = name.rsplit('/').next().unwrap_or(name);
            let name = name.strip_suffix(".deb").map(|n| n.split('_').next().unwrap_or(n)).unwrap_or(name);
            let why = match lines.peek() {
                Some(next) if next.starts_with(' ') => next.trim().to_string(),
                _ => String::new(),
            };
            if !out.packages.iter().any(|(n, _)| n == name) {
                out.packages.push((name.to_string(), why));
            }
        }
    }
    out
}

/// One line that says what failed and what to do, from apt-get's output.
pub fn failure_detail(text: &str) -> String {
    let e = parse_apt_errors(text);
    if let Some((name, why)) = e.packages.first() {
        let why = if why.is_empty() { "see the log".to_string() } else { why.clone() };
        let more = if e.packages.len() > 1 {
            format!(" (and {} more)", e.packages.len() - 1)
        } else {
            String::new()
        };
        return format!("dpkg failed on package {name}{more}: {why}");
    }
    if let Some(not_found) =
        e.errors.iter().find(|l| l.starts_with("Version '") && l.ends_with("was not found"))
    {
        return format!("{not_found}: the repositories configured on the device do not offer this version");
    }
    if let Some(l) = e.errors.iter().find(|l| l.starts_with("Unable to locate package")) {
        return format!("{l}: no configured repository offers it");
    }
    if let Some(l) =
        e.errors.iter().find(|l| l.contains("Could not get lock") || l.contains("Unable to acquire"))
    {
        return format!("the package manager is busy: {l}");
    }
    match e.errors.iter().find(|l| !l.starts_with("Sub-process")).or(e.errors.first()) {
        Some(l) => format!("apt-get failed: {l}"),
        None => "apt-get failed without an error line: see the log".to_string(),
    }
}

fn env() -> Vec<(&'static str, String)> {
    vec![("DEBIAN_FRONTEND", "noninteractive".into()), ("LC_ALL", "C".into())]
}

fn run_logged(argv: &[String], log: &mut String, timeout: Duration) -> Result<super::CommandRun, Failure> {
    append_log(log, &format!("$ {}", argv.join(" ")));
    let r = run_command(argv, &env(), timeout).map_err(|e| Failure::new("install", e))?;
    append_log(log, &r.output);
    if r.timed_out {
        append_log(log, &format!("(killed after {} s)", timeout.as_secs()));
    }
    Ok(r)
}

/// The versions of `packages` dpkg has now ("" = not installed).
pub fn installed(packages: &[PackageVersion], root: &Root, log: &mut String) -> Vec<PackageVersion> {
    let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    // dpkg-query exits 1 when a name is unknown, but still prints the others.
    let found = run_command(&query_command(root, &names), &env(), Duration::from_secs(60))
        .map(|r| parse_dpkg_query(&r.output))
        .unwrap_or_else(|e| {
            append_log(log, &e);
            BTreeMap::new()
        });
    packages
        .iter()
        .map(|p| PackageVersion {
            version: found.get(&p.name).map(|(v, _)| v.clone()).unwrap_or_default(),
            ..p.clone()
        })
        .collect()
}

/// Installs (or, for a rollback, downgrades to and holds) the exact versions.
pub fn apply(packages: &[PackageVersion], rollback: bool, opts: &ExecOptions) -> PackageRun {
    let mut log = String::new();
    let failure = (|| -> Result<(), Failure> {
        let update = run_logged(&update_command(&opts.root), &mut log, APT_TIMEOUT)?;
        if !update.success() {
            // Stale lists may still hold the versions; if not, the install says so.
            append_log(&mut log, "warning: apt-get update failed; installing from the lists already present");
        }
        let install = install_command(&opts.root, packages, opts.lock_wait);
        let mut r = run_logged(&install, &mut log, APT_TIMEOUT)?;
        if !r.success()
            && parse_apt_errors(&r.output).errors.iter().any(|e| e.contains("dpkg --configure -a"))
        {
            // An earlier run was interrupted (power cut, killed agent): finish it once, then
            // retry; a second failure is reported as it is.
            let mut fix = vec!["dpkg".to_string()];
            if !opts.is_system_root() {
                fix.push(format!("--root={}", opts.root.0.display()));
                fix.push("--force-script-chrootless".into());
            }
            fix.extend(["--force-confdef", "--force-confold", "--configure", "-a"].map(String::from));
            run_logged(&fix, &mut log, APT_TIMEOUT)?;
            r = run_logged(&install, &mut log, APT_TIMEOUT)?;
        }
        if r.timed_out {
            return Err(Failure::new(
                "install",
                format!("apt-get ran for over {} s and was killed", APT_TIMEOUT.as_secs()),
            ));
        }
        if !r.success() {
            return Err(Failure::new("install", failure_detail(&r.output)));
        }
        if rollback {
            let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
            let hold = run_logged(&hold_command(&opts.root, &names), &mut log, Duration::from_secs(120))?;
            if !hold.success() {
                return Err(Failure::new(
                    "install",
                    format!(
                        "the rollback installed but apt-mark could not hold {}: {}",
                        names.join(", "),
                        hold.output.lines().last().unwrap_or("")
                    ),
                ));
            }
        }
        Ok(())
    })()
    .err();
    let installed = installed(packages, &opts.root, &mut log);
    let failure =
        failure.or_else(|| super::version_mismatch(packages, &installed).map(|d| Failure::new("install", d)));
    PackageRun { installed, log, failure }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded on Debian 12 (apt 2.6.1): a postinst that exits 1.
    const POSTINST_FAILS: &str = "\
Reading package lists...
Building dependency tree...
The following packages will be upgraded:
  ringdemo
Get:1 file:/tmp/repo ./ ringdemo 1.2 [752 B]
Preparing to unpack .../repo/./ringdemo_1.2_all.deb ...
Unpacking ringdemo (1.2) over (1.0) ...
Setting up ringdemo (1.2) ...
dpkg: error processing package ringdemo (--configure):
 installed ringdemo package post-installation script subprocess returned error exit status 1
Errors were encountered while processing:
 ringdemo
E: Sub-process /usr/bin/dpkg returned an error code (1)
";

    fn check(output: &str, expect: &str) {
        assert_eq!(failure_detail(output), expect);
    }

    #[test]
    fn apt_failures_become_one_line_that_names_the_package_or_the_version() {
        check(
            POSTINST_FAILS,
            "dpkg failed on package ringdemo: installed ringdemo package post-installation script subprocess returned error exit status 1",
        );
        check(
            "Reading package lists...\nE: Version '9.9' for 'ringdemo' was not found\n",
            "Version '9.9' for 'ringdemo' was not found: the repositories configured on the device do not offer this version",
        );
        check(
            "E: Unable to locate package nosuchpkg\n",
            "Unable to locate package nosuchpkg: no configured repository offers it",
        );
        check(
            "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 812 (unattended-upgr)\n",
            "the package manager is busy: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 812 (unattended-upgr)",
        );
        check(
            "Unpacking libfoo (2) ...\ndpkg: error processing archive /var/cache/apt/archives/libfoo_2_amd64.deb (--unpack):\n trying to overwrite '/usr/lib/x', which is also in package libbar 1\nE: Sub-process /usr/bin/dpkg returned an error code (1)\n",
            "dpkg failed on package libfoo: trying to overwrite '/usr/lib/x', which is also in package libbar 1",
        );
        check(
            "The following packages have unmet dependencies:\n a : Depends: b (>= 2) but 1 is to be installed\nE: Unable to correct problems, you have held broken packages.\n",
            "apt-get failed: Unable to correct problems, you have held broken packages.",
        );
        check(
            "E: Sub-process /usr/bin/dpkg returned an error code (1)\n",
            "apt-get failed: Sub-process /usr/bin/dpkg returned an error code (1)",
        );
        check("", "apt-get failed without an error line: see the log");
    }

    #[test]
    fn dpkg_query_lines_give_installed_versions_and_skip_removed_ones() {
        let got = parse_dpkg_query(
            "ringdemo\t1.2\tiF \nlibc6:amd64\t2.36-9+deb12u4\tii \ngone\t\tun \nold\t1\trc \nbad line\nodd\t1\té\n",
        );
        assert_eq!(got.get("ringdemo"), Some(&("1.2".to_string(), "iF".to_string())));
        assert_eq!(got.get("libc6").map(|v| v.0.as_str()), Some("2.36-9+deb12u4"));
        assert_eq!(got.len(), 2, "{got:?}");
    }

    #[test]
    #[cfg(unix)] // runs /bin/sh
    fn commands_point_apt_and_dpkg_at_a_private_root_only_when_asked() {
        let p = vec![PackageVersion {
            manager: "dpkg".into(),
            name: "nginx".into(),
            version: "1.22.1-9+deb12u1".into(),
        }];
        let sys = install_command(&Root("/".into()), &p, Duration::from_secs(60));
        assert_eq!(sys[0], "apt-get");
        assert!(!sys.iter().any(|a| a.starts_with("Dir=")));
        assert!(sys.contains(&"DPkg::Lock::Timeout=60".to_string()));
        assert_eq!(sys.last().unwrap(), "nginx=1.22.1-9+deb12u1");
        let private = install_command(&Root("/srv/r".into()), &p, Duration::from_secs(60));
        for o in ["Dir=/srv/r", "DPkg::Options::=--root=/srv/r", "DPkg::Options::=--force-script-chrootless"]
        {
            assert!(private.contains(&o.to_string()), "{o} missing in {private:?}");
        }
        assert_eq!(hold_command(&Root("/".into()), &["a", "b"]), ["apt-mark", "hold", "a", "b"]);
        assert_eq!(query_command(&Root("/srv/r".into()), &["a"])[1], "--admindir=/srv/r/var/lib/dpkg");
    }
}
