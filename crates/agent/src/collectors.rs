//! Linux collectors, each reading the system directly (files under [`Root`]) or running the
//! platform's own command when one exists, with a parser for its output that is tested on
//! recorded output.

use crate::{Outcome, PendingUpdate, Report, Root, record};
use ringfence_inventory::{Item, ItemKind, OsInfo, dpkg};
use std::process::Command;

/// Runs a command if it is installed; `None` when it is not.
pub fn run(cmd: &str, args: &[&str]) -> Option<Result<String, String>> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false);
    if !found {
        return None;
    }
    Some(match Command::new(cmd).args(args).env("LC_ALL", "C").output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(format!(
            "{cmd} exited with {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).lines().next().unwrap_or("")
        )),
        Err(e) => Err(format!("cannot run {cmd}: {e}")),
    })
}

/// `/etc/os-release` (or `/usr/lib/os-release`) plus the kernel release.
pub fn parse_os_release(text: &str) -> OsInfo {
    let mut os = OsInfo { family: "linux".into(), ..OsInfo::default() };
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
        match k.trim() {
            "ID" => os.id = v,
            "VERSION_ID" => os.version = v,
            "VERSION_CODENAME" if !v.is_empty() => os.codename = Some(v),
            "PRETTY_NAME" => os.name = v,
            _ => {}
        }
    }
    os
}

/// `rpm -qa --queryformat '%{NAME}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n'`.
pub const RPM_QUERYFORMAT: &str = "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n";

pub fn parse_rpm_qa(text: &str) -> (Vec<Item>, Vec<String>) {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with("gpg-pubkey\t") {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 4 || f[0].is_empty() || f[1].is_empty() {
            errors.push(format!("line {}: expected NAME, EPOCH:VERSION-RELEASE, ARCH and SOURCERPM", n + 1));
            continue;
        }
        let version = f[1].strip_prefix("0:").unwrap_or(f[1]);
        let mut item = Item::new(ItemKind::Package, f[0], version);
        item.manager = Some("rpm".into());
        item.arch = Some(f[2].to_string()).filter(|a| a != "(none)");
        // The source package name: foo-1.2-3.el9.src.rpm → foo.
        if let Some(src) = f[3].strip_suffix(".src.rpm") {
            let mut parts = src.rsplitn(3, '-');
            let (_release, _version, name) = (parts.next(), parts.next(), parts.next());
            if let Some(name) = name.filter(|n| *n != f[0]) {
                item.source_name = Some(name.to_string());
            }
        }
        items.push(item);
    }
    (items, errors)
}

/// `/lib/apk/db/installed`: stanzas of `X:value` lines (P name, V version, A arch, o origin).
pub fn parse_apk_installed(text: &str) -> Vec<Item> {
    let mut items = Vec::new();
    for stanza in text.split("\n\n") {
        let mut name = None;
        let mut version = None;
        let mut arch = None;
        let mut origin = None;
        for line in stanza.lines() {
            match line.split_once(':') {
                Some(("P", v)) => name = Some(v),
                Some(("V", v)) => version = Some(v),
                Some(("A", v)) => arch = Some(v),
                Some(("o", v)) => origin = Some(v),
                _ => {}
            }
        }
        if let (Some(n), Some(v)) = (name, version) {
            let mut item = Item::new(ItemKind::Package, n, v);
            item.manager = Some("apk".into());
            item.arch = arch.map(str::to_string);
            item.source_name = origin.filter(|o| *o != n).map(str::to_string);
            items.push(item);
        }
    }
    items
}

/// `snap list`: `Name Version Rev Tracking Publisher Notes`.
pub fn parse_snap_list(text: &str) -> Vec<Item> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 5).then(|| {
                let mut i = Item::new(ItemKind::Application, f[0], f[1]);
                i.manager = Some("snap".into());
                i.vendor = Some(f[4].trim_end_matches('✓').trim_end_matches('*').to_string());
                i
            })
        })
        .collect()
}

/// `flatpak list --app --columns=application,version,origin` (tab-separated).
pub fn parse_flatpak_list(text: &str) -> Vec<Item> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 2 && !f[0].is_empty() && !f[1].is_empty()).then(|| {
                let mut i = Item::new(ItemKind::Application, f[0], f[1]);
                i.manager = Some("flatpak".into());
                i
            })
        })
        .collect()
}

/// `/proc/modules`: the loaded kernel modules; versions from `/sys/module/NAME/version` when
/// the module declares one, else the kernel release.
pub fn parse_proc_modules(
    text: &str,
    version_of: &dyn Fn(&str) -> Option<String>,
    kernel: &str,
) -> Vec<Item> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|name| {
            let mut i =
                Item::new(ItemKind::Driver, name, version_of(name).unwrap_or_else(|| kernel.to_string()));
            i.manager = Some("kmod".into());
            i
        })
        .collect()
}

/// `fwupdmgr get-devices --json`: devices with a firmware version.
pub fn parse_fwupd_devices(json: &str) -> Result<Vec<Item>, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("fwupd output is not JSON: {e}"))?;
    let devices =
        v.get("Devices").and_then(|d| d.as_array()).ok_or("fwupd output has no \"Devices\" array")?;
    Ok(devices
        .iter()
        .filter_map(|d| {
            let name = d.get("Name")?.as_str()?;
            let version = d.get("Version")?.as_str()?;
            let mut i = Item::new(ItemKind::Firmware, name, version);
            i.manager = Some("fwupd".into());
            i.vendor = d.get("Vendor").and_then(|v| v.as_str()).map(str::to_string);
            Some(i)
        })
        .collect())
}

/// `apt list --upgradable`: `name/suite,suite2 candidate arch [upgradable from: installed]`.
pub fn parse_apt_upgradable(text: &str) -> (Vec<PendingUpdate>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("Listing") || line.starts_with("WARNING") {
            continue;
        }
        let parsed = (|| {
            let (name, rest) = line.split_once('/')?;
            let mut f = rest.split_whitespace();
            let suites = f.next()?;
            let candidate = f.next()?;
            let _arch = f.next()?;
            let installed = line.split("[upgradable from: ").nth(1)?.trim_end_matches(']').trim();
            Some(PendingUpdate {
                manager: "dpkg".into(),
                name: name.to_string(),
                installed: installed.to_string(),
                candidate: candidate.to_string(),
                origin: suites.to_string(),
                security: suites.split(',').any(|s| s.ends_with("-security")),
                advisories: Vec::new(),
                cves: Vec::new(),
            })
        })();
        match parsed {
            Some(p) => out.push(p),
            None => errors.push(format!("line {}: not an 'apt list --upgradable' entry", n + 1)),
        }
    }
    (out, errors)
}

/// Splits an rpm NEVRA (`openssh-8.7p1-38.el9_4.1.x86_64`) into name and version-release.
pub fn split_nevra(nevra: &str) -> Option<(String, String)> {
    let without_arch = nevra.rsplit_once('.').map(|(a, _)| a).unwrap_or(nevra);
    let (rest, release) = without_arch.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    Some((name.to_string(), format!("{version}-{release}")))
}

/// `dnf updateinfo list --updates` (advisory ids) and `… --with-cve` (CVE ids): lines of
/// `ID TYPE/SEVERITY PACKAGE-NEVRA`. One pending update per package, with every advisory and
/// CVE that names it.
pub fn parse_dnf_updateinfo(advisories: &str, cves: &str) -> Vec<PendingUpdate> {
    let mut by_package: std::collections::BTreeMap<String, PendingUpdate> = Default::default();
    for (text, is_cve) in [(advisories, false), (cves, true)] {
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() != 3 || f[0].starts_with("Last") || f[0].contains("metadata") {
                continue;
            }
            let Some((name, candidate)) = split_nevra(f[2]) else { continue };
            let p = by_package.entry(f[2].to_string()).or_insert_with(|| PendingUpdate {
                manager: "rpm".into(),
                name,
                installed: String::new(),
                candidate,
                origin: "dnf".into(),
                security: false,
                advisories: Vec::new(),
                cves: Vec::new(),
            });
            p.security |= f[1].contains("Sec.") || f[1].eq_ignore_ascii_case("security");
            let list = if is_cve { &mut p.cves } else { &mut p.advisories };
            if !list.iter().any(|x| x == f[0]) {
                list.push(f[0].to_string());
            }
        }
    }
    by_package.into_values().collect()
}

fn dmi(root: &Root) -> Outcome {
    let read = |f: &str| {
        root.read(&format!("/sys/class/dmi/id/{f}")).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    };
    let mut items = Vec::new();
    if let Some(version) = read("bios_version") {
        let mut bios =
            Item::new(ItemKind::Bios, read("bios_vendor").unwrap_or_else(|| "BIOS".into()), version);
        bios.vendor = read("bios_vendor");
        bios.manager = Some("dmi".into());
        items.push(bios);
    }
    if let Some(product) = read("product_name") {
        let mut hw =
            Item::new(ItemKind::Hardware, product, read("product_version").unwrap_or_else(|| "-".into()));
        hw.vendor = read("sys_vendor");
        hw.manager = Some("dmi".into());
        items.push(hw);
    }
    if items.is_empty() {
        Outcome::Nothing("no /sys/class/dmi/id (a container or no DMI tables)".into())
    } else {
        Outcome::Found(items)
    }
}

/// Runs every Linux collector under `root`.
pub fn linux(root: &Root) -> Report {
    let mut report = Report::default();
    let os_text = root.read("/etc/os-release").or_else(|| root.read("/usr/lib/os-release"));
    let kernel = root.read("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default();
    match os_text {
        Some(t) => {
            report.inventory.os = parse_os_release(&t);
            let mut k =
                Item::new(ItemKind::Os, "linux-kernel", if kernel.is_empty() { "unknown" } else { &kernel });
            k.manager = Some("kernel".into());
            record(&mut report, "os", Outcome::Found(vec![k]));
        }
        None => {
            record(&mut report, "os", Outcome::Failed("no /etc/os-release or /usr/lib/os-release".into()))
        }
    }

    let status = root.path("/var/lib/dpkg/status");
    let outcome = match std::fs::read_to_string(&status) {
        Ok(text) => {
            let parsed = dpkg::parse_status(&text);
            if parsed.errors.is_empty() {
                Outcome::Found(parsed.items)
            } else {
                let first = parsed.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
                Outcome::Partial(parsed.items, format!("{}: {first}", status.display()))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Outcome::Nothing("dpkg is not used here".into())
        }
        Err(e) => Outcome::Failed(format!("cannot read {}: {e}", status.display())),
    };
    record(&mut report, "dpkg", outcome);

    let rpm_db = ["/var/lib/rpm", "/usr/lib/sysimage/rpm"].iter().any(|p| root.path(p).is_dir());
    let outcome = if !rpm_db || root.0 != std::path::Path::new("/") {
        Outcome::Nothing("no rpm database".into())
    } else {
        match run("rpm", &["-qa", "--queryformat", RPM_QUERYFORMAT]) {
            None => Outcome::Nothing("rpm is not installed".into()),
            Some(Err(e)) => Outcome::Failed(e),
            Some(Ok(out)) => {
                let (items, errors) = parse_rpm_qa(&out);
                if errors.is_empty() {
                    Outcome::Found(items)
                } else {
                    Outcome::Partial(items, errors.join("; "))
                }
            }
        }
    };
    record(&mut report, "rpm", outcome);

    let outcome = match root.read("/lib/apk/db/installed") {
        Some(t) => Outcome::Found(parse_apk_installed(&t)),
        None => Outcome::Nothing("apk is not used here".into()),
    };
    record(&mut report, "apk", outcome);

    let live = root.0 == std::path::Path::new("/");
    for (name, cmd, args, parse) in [
        ("snap", "snap", &["list"][..], parse_snap_list as fn(&str) -> Vec<Item>),
        (
            "flatpak",
            "flatpak",
            &["list", "--app", "--columns=application,version,origin"][..],
            parse_flatpak_list,
        ),
    ] {
        let outcome = match live.then(|| run(cmd, args)).flatten() {
            None => Outcome::Nothing(format!("{cmd} is not installed")),
            Some(Err(e)) => Outcome::Failed(e),
            Some(Ok(out)) => Outcome::Found(parse(&out)),
        };
        record(&mut report, name, outcome);
    }

    record(&mut report, "dmi", dmi(root));

    let outcome = match root.read("/proc/modules") {
        Some(t) => {
            let version_of =
                |m: &str| root.read(&format!("/sys/module/{m}/version")).map(|v| v.trim().to_string());
            Outcome::Found(parse_proc_modules(&t, &version_of, &kernel))
        }
        None => Outcome::Nothing("no /proc/modules (no loadable modules visible)".into()),
    };
    record(&mut report, "kernel modules", outcome);

    let outcome = match live.then(|| run("fwupdmgr", &["get-devices", "--json"])).flatten() {
        None => Outcome::Nothing("fwupd is not installed".into()),
        Some(Err(e)) => Outcome::Failed(e),
        Some(Ok(out)) => match parse_fwupd_devices(&out) {
            Ok(items) => Outcome::Found(items),
            Err(e) => Outcome::Failed(e),
        },
    };
    record(&mut report, "fwupd", outcome);

    // A private package root (a mounted image, a test root) is asked through apt's own
    // directory options, as the executor installs into it.
    let apt_args: Vec<String> = if live || root.path("/var/lib/apt/lists").is_dir() {
        let mut a = crate::exec::apt::root_options(root);
        a.extend(["list".to_string(), "--upgradable".to_string()]);
        a
    } else {
        Vec::new()
    };
    let apt_args: Vec<&str> = apt_args.iter().map(String::as_str).collect();
    if !apt_args.is_empty()
        && let Some(Ok(out)) = run("apt", &apt_args)
    {
        let (pending, _) = parse_apt_upgradable(&out);
        report.pending_updates = pending;
    } else if live && let Some(Ok(advisories)) = run("dnf", &["-q", "updateinfo", "list", "--updates"]) {
        let cves = run("dnf", &["-q", "updateinfo", "list", "--updates", "--with-cve"])
            .and_then(Result::ok)
            .unwrap_or_default();
        let mut pending = parse_dnf_updateinfo(&advisories, &cves);
        for p in &mut pending {
            if let Some(i) = report
                .inventory
                .items
                .iter()
                .find(|i| i.manager.as_deref() == Some("rpm") && i.name == p.name)
            {
                p.installed.clone_from(&i.version);
            }
        }
        report.pending_updates = pending;
    }
    report.reboot_required =
        root.path("/var/run/reboot-required").exists() || root.path("/run/reboot-required").exists();
    crate::collect_extensions(&mut report, &crate::extensions::homes(root, false), false);
    report
}
