//! The collectors' parsers on real and recorded output, and the agent binary on a prepared
//! system tree (a private dpkg status and os-release).

use ringfence_agent::collectors::*;
use ringfence_agent::platforms::{macos, windows};
use ringfence_inventory::ItemKind;
use std::path::PathBuf;

fn shared() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: the shared test data is not at {} (see README.md)", dir.display());
        None
    }
}

#[test]
fn apt_upgradable_list_from_a_real_debian_12() {
    let Some(data) = shared() else { return };
    let text = std::fs::read_to_string(data.join("inventory/debian12-apt-upgradable.txt")).unwrap();
    let (pending, errors) = parse_apt_upgradable(&text);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(pending.len(), 132);
    assert_eq!(pending.iter().filter(|p| p.security).count(), 81);
    let xz = pending.iter().find(|p| p.name == "xz-utils").unwrap();
    assert_eq!((xz.installed.as_str(), xz.candidate.as_str()), ("5.4.1-1", "5.4.1-1+deb12u2"));
    assert_eq!(xz.origin, "oldstable-security");
    let (_, errors) = parse_apt_upgradable("Listing...\nthis is not an entry\n");
    assert_eq!(errors, ["line 2: not an 'apt list --upgradable' entry"]);
}

#[test]
fn os_release_rpm_apk_snap_flatpak_and_fwupd_output() {
    let os = parse_os_release(
        "PRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\nNAME=\"Rocky Linux\"\nID=\"rocky\"\nVERSION_ID=\"9.4\"\n",
    );
    assert_eq!((os.id.as_str(), os.version.as_str()), ("rocky", "9.4"));
    assert_eq!(os.name, "Rocky Linux 9.4 (Blue Onyx)");

    let (items, errors) = parse_rpm_qa(
        "openssl-libs\t1:3.0.7-27.el9\tx86_64\topenssl-3.0.7-27.el9.src.rpm\n\
         bash\t0:5.1.8-9.el9\tx86_64\tbash-5.1.8-9.el9.src.rpm\n\
         gpg-pubkey\t0:fd431d51-4ae0493b\t(none)\t(none)\n\
         broken line\n",
    );
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].version, "1:3.0.7-27.el9");
    assert_eq!(items[0].source(), "openssl");
    assert_eq!(items[1].version, "5.1.8-9.el9", "epoch 0 is left out");
    assert_eq!(items[1].source_name, None);
    assert_eq!(errors, ["line 4: expected NAME, EPOCH:VERSION-RELEASE, ARCH and SOURCERPM"]);

    let apk = parse_apk_installed(
        "C:Q1abc=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\n\nC:Q1def=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\no:musl\n",
    );
    assert_eq!(apk.len(), 2);
    assert_eq!(apk[0].source(), "openssl");
    assert_eq!(apk[1].source_name, None);

    let snaps = parse_snap_list(
        "Name      Version          Rev    Tracking       Publisher   Notes\n\
         core22    20240408         1380   latest/stable  canonical✓  base\n\
         firefox   125.0.2-1        4173   latest/stable  mozilla✓    -\n",
    );
    assert_eq!(snaps.len(), 2);
    assert_eq!((snaps[1].name.as_str(), snaps[1].version.as_str()), ("firefox", "125.0.2-1"));
    assert_eq!(snaps[1].vendor.as_deref(), Some("mozilla"));

    let flatpaks = parse_flatpak_list("org.videolan.VLC\t3.0.20\tflathub\norg.gimp.GIMP\t2.10.38\tflathub\n");
    assert_eq!(flatpaks.len(), 2);
    assert_eq!(flatpaks[0].kind, ItemKind::Application);

    let fw = parse_fwupd_devices(
        r#"{"Devices": [{"Name": "System Firmware", "Vendor": "LENOVO", "Version": "0.1.52"},
                        {"Name": "Thunderbolt host", "Version": "20.00"}, {"Name": "No version"}]}"#,
    )
    .unwrap();
    assert_eq!(fw.len(), 2);
    assert_eq!(fw[0].vendor.as_deref(), Some("LENOVO"));
    assert!(parse_fwupd_devices("[]").unwrap_err().contains("Devices"));

    let mods = parse_proc_modules(
        "nvme 61440 3 - Live 0x0000000000000000\ne1000e 352256 0 - Live 0x0000000000000000\n",
        &|m| (m == "e1000e").then(|| "3.8.7-NAPI".to_string()),
        "6.1.0-21-amd64",
    );
    assert_eq!(mods[0].version, "6.1.0-21-amd64");
    assert_eq!(mods[1].version, "3.8.7-NAPI");
}

#[test]
fn dnf_updateinfo_names_advisories_and_cves() {
    let advisories = "RLSA-2024:4312 Important/Sec.  openssh-8.7p1-38.el9_4.1.x86_64\n\
RLSA-2024:4312 Important/Sec.  openssh-clients-8.7p1-38.el9_4.1.x86_64\n\
RLBA-2024:4400 bugfix          tzdata-2024a-2.el9.noarch\n";
    let cves = "CVE-2024-6387 Important/Sec. openssh-8.7p1-38.el9_4.1.x86_64\n\
CVE-2024-6409 Moderate/Sec.  openssh-8.7p1-38.el9_4.1.x86_64\n";
    let pending = parse_dnf_updateinfo(advisories, cves);
    assert_eq!(pending.len(), 3);
    let ssh = pending.iter().find(|p| p.name == "openssh").unwrap();
    assert_eq!(ssh.candidate, "8.7p1-38.el9_4.1");
    assert!(ssh.security);
    assert_eq!(ssh.advisories, ["RLSA-2024:4312"]);
    assert_eq!(ssh.cves, ["CVE-2024-6387", "CVE-2024-6409"]);
    let tz = pending.iter().find(|p| p.name == "tzdata").unwrap();
    assert!(!tz.security);
    assert_eq!(
        split_nevra("openssh-clients-8.7p1-38.el9_4.1.x86_64"),
        Some(("openssh-clients".into(), "8.7p1-38.el9_4.1".into()))
    );
}

#[test]
fn windows_powershell_output() {
    let hotfixes = windows::parse_hotfixes(
        r#"[{"HotFixID":"KB5034441","Description":"Security Update","InstalledOn":{"value":"/Date(1705363200000)/"}},
            {"HotFixID":"KB5036892","Description":"Security Update"}]"#,
    )
    .unwrap();
    assert_eq!(hotfixes.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["KB5034441", "KB5036892"]);
    // PowerShell prints a single object without brackets.
    let bios = windows::parse_bios(
        r#"{"Manufacturer":"Dell Inc.","SMBIOSBIOSVersion":"1.21.0","ReleaseDate":"/Date(1700000000000)/"}"#,
    )
    .unwrap();
    assert_eq!((bios[0].name.as_str(), bios[0].version.as_str()), ("Dell Inc.", "1.21.0"));
    assert!(windows::parse_hotfixes("not json").unwrap_err().contains("not JSON"));
}

#[test]
fn macos_system_profiler_and_softwareupdate_output() {
    let apps = macos::parse_applications(
        r#"{"SPApplicationsDataType": [
            {"_name": "Google Chrome", "version": "124.0.6367.119", "signed_by": ["Developer ID Application: Google LLC (EQHXZ8M8AV)", "Developer ID Certification Authority"]},
            {"_name": "Safari", "version": "17.5"}, {"version": "1.0"}]}"#,
    )
    .unwrap();
    assert_eq!(apps.len(), 2);
    assert_eq!(apps[0].vendor.as_deref(), Some("Google LLC (EQHXZ8M8AV)"));
    let os = macos::parse_software(r#"{"SPSoftwareDataType": [{"os_version": "macOS 14.5 (23F79)", "kernel_version": "Darwin 23.5.0"}]}"#).unwrap();
    assert_eq!(os.version, "14.5");
    let updates = macos::parse_softwareupdate(
        "Software Update Tool\n\nFinding available software\nSoftware Update found the following new or updated software:\n\
         * Label: macOS Sonoma 14.6-23G80\n\tTitle: macOS Sonoma 14.6, Version: 14.6, Size: 1554108KiB, Recommended: YES, Action: restart, \n\
         * Label: Safari17.6SonomaAuto-17.6\n\tTitle: Safari, Version: 17.6, Size: 166520KiB, Recommended: YES, \n",
    );
    assert_eq!(updates.len(), 2);
    assert_eq!((updates[0].name.as_str(), updates[0].candidate.as_str()), ("macOS Sonoma 14.6", "14.6"));
}

#[test]
#[cfg(target_os = "linux")] // the Linux collectors read the prepared tree
fn the_agent_binary_reports_a_prepared_system_and_survives_a_corrupt_dpkg_status() {
    let Some(data) = shared() else { return };
    let root = std::env::temp_dir().join(format!("ringfence-agent-root-{}", std::process::id()));
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::write(root.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").unwrap();
    let mut status = std::fs::read_to_string(data.join("inventory/debian12-dpkg-status")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), &status).unwrap();
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringfence-agent"))
            .args(["inventory", "--format", "json", "--root", root.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let report = run();
    assert_eq!(report["inventory"]["os"]["codename"], "bookworm");
    let dpkg =
        report["collectors"].as_array().unwrap().iter().find(|c| c["collector"] == "dpkg").unwrap().clone();
    assert_eq!(dpkg["outcome"], "ok");
    assert_eq!(dpkg["items"], 720);
    let rpm =
        report["collectors"].as_array().unwrap().iter().find(|c| c["collector"] == "rpm").unwrap().clone();
    assert_eq!(rpm["outcome"], "nothing found", "a collector with nothing to find is not an error");

    // A corrupt stanza: that collector reports the line, the rest still goes through.
    let lines = status.lines().count();
    status.push_str("\nPackage: broken\nthis line is garbage\nStatus: install ok installed\nVersion: 1\n");
    std::fs::write(root.join("var/lib/dpkg/status"), &status).unwrap();
    let report = run();
    let dpkg =
        report["collectors"].as_array().unwrap().iter().find(|c| c["collector"] == "dpkg").unwrap().clone();
    assert_eq!(dpkg["outcome"], "error");
    assert_eq!(dpkg["items"], 720);
    let detail = dpkg["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("line {}", lines + 3)) && detail.contains("garbage"), "{detail}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn malformed_output_is_refused_or_yields_nothing_never_a_guess() {
    assert!(macos::parse_applications("[]").unwrap_err().contains("SPApplicationsDataType"));
    assert!(macos::parse_applications("not json").unwrap_err().contains("not JSON"));
    assert!(macos::parse_software(r#"{"SPSoftwareDataType": [{}]}"#).unwrap_err().contains("os_version"));
    assert!(macos::parse_softwareupdate("No new software available.\n").is_empty());
    assert!(parse_apk_installed("garbage\nwithout fields\n").is_empty());
    assert!(parse_snap_list("Name Version Rev Tracking Publisher Notes\nbroken\n").is_empty());
    assert!(parse_flatpak_list("onlyonecolumn\n").is_empty());
    assert!(windows::parse_bios("42").unwrap_err().contains("neither an object nor an array"));
}
