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

/// SNMP fixtures: appliance profiles, a real net-snmp `snmpd` serving one, and a fleet of
/// simulated appliances for timing a collector.
pub mod snmp {
    use ringfence_appliance::{EntityRow, Observation};
    use ringfence_proto::collector::{
        AuthProtocol, CollectorJob, CollectorWork, CredentialRef, PollTarget, PrivProtocol, SnmpCredential,
    };
    use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// The community the fixtures answer for SNMPv2c.
    pub const COMMUNITY: &str = "rf-test-community";
    /// The SNMPv3 user the fixtures know (SHA-256 authentication, AES-128 privacy).
    pub const V3_USER: &str = "rfcollector";
    pub const V3_AUTH_PASSWORD: &str = "auth-secret-1";
    pub const V3_PRIV_PASSWORD: &str = "priv-secret-1";

    pub fn v2c_credential() -> SnmpCredential {
        SnmpCredential::V2c { community: COMMUNITY.into() }
    }

    pub fn v3_credential() -> SnmpCredential {
        SnmpCredential::V3 {
            user: V3_USER.into(),
            auth_protocol: AuthProtocol::Sha256,
            auth_password: V3_AUTH_PASSWORD.into(),
            priv_protocol: PrivProtocol::Aes128,
            priv_password: V3_PRIV_PASSWORD.into(),
        }
    }

    /// What a simulated appliance answers: its system group and its entity rows.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Profile {
        pub sys_descr: String,
        /// Dotted, no leading dot.
        pub sys_object_id: String,
        pub sys_name: String,
        pub entities: Vec<EntityRow>,
    }

    fn chassis(descr: &str, model: &str, software_rev: &str, serial: &str) -> EntityRow {
        EntityRow {
            index: 1,
            class: Some(3),
            descr: descr.into(),
            model_name: model.into(),
            software_rev: software_rev.into(),
            serial: serial.into(),
            ..EntityRow::default()
        }
    }

    impl Profile {
        /// A FortiGate 100F on FortiOS 7.0.11.
        pub fn fortigate_100f() -> Profile {
            Profile {
                sys_descr: "FortiGate-100F".into(),
                sys_object_id: "1.3.6.1.4.1.12356.101.1.1041".into(),
                sys_name: "fw-hq".into(),
                entities: vec![chassis(
                    "FortiGate-100F",
                    "FGT_100F",
                    "FortiGate-100F v7.0.11,build0489,230314 (GA.F)",
                    "FG100FTK22000001",
                )],
            }
        }

        /// The same FortiGate after its upgrade to FortiOS 7.0.14.
        pub fn fortigate_100f_upgraded() -> Profile {
            Profile::fortigate_100f().with_software_rev("FortiGate-100F v7.0.14,build0601,240208 (GA.F)")
        }

        /// A Palo Alto PA-3220 on PAN-OS 10.2.9.
        pub fn pa_3220() -> Profile {
            let descr = "Palo Alto Networks PA-3200 series firewall";
            Profile {
                sys_descr: descr.into(),
                sys_object_id: "1.3.6.1.4.1.25461.2.3.38".into(),
                sys_name: "pa-edge".into(),
                entities: vec![chassis(descr, "PA-3220", "10.2.9", "013201001234")],
            }
        }

        /// A Cisco Catalyst 9300 on IOS XE 17.9.4; its sysDescr spans lines (CR LF).
        pub fn catalyst_9300() -> Profile {
            Profile {
                sys_descr: "Cisco IOS Software [Cupertino], Catalyst L3 Switch Software (CAT9K_IOSXE), Version 17.9.4, RELEASE SOFTWARE (fc5)\r\nTechnical Support: http://www.cisco.com/techsupport\r\nCopyright (c) 1986-2023 by Cisco Systems, Inc.\r\nCompiled Wed 26-Jul-23 10:17 by mcpre".into(),
                sys_object_id: "1.3.6.1.4.1.9.1.2494".into(),
                sys_name: "core-sw1".into(),
                entities: vec![chassis("c93xx Stack", "C9300-48P", "17.09.04", "FOC2233X0AB")],
            }
        }

        /// A device nothing knows, without ENTITY-MIB.
        pub fn unknown_device() -> Profile {
            Profile {
                sys_descr: "ACME NetBox 3000 firmware 2.4.1".into(),
                sys_object_id: "1.3.6.1.4.1.99999.1.1".into(),
                sys_name: "mystery".into(),
                entities: Vec::new(),
            }
        }

        /// The four profiles, by name.
        pub fn all() -> Vec<(&'static str, Profile)> {
            vec![
                ("fortigate-100f", Profile::fortigate_100f()),
                ("pa-3220", Profile::pa_3220()),
                ("catalyst-9300", Profile::catalyst_9300()),
                ("unknown", Profile::unknown_device()),
            ]
        }

        /// The same device with another firmware: the first entity row's software revision
        /// (FortiOS 7.0.14: `FortiGate-100F v7.0.14,build0601,240208 (GA.F)`).
        pub fn with_software_rev(mut self, rev: &str) -> Profile {
            if let Some(row) = self.entities.first_mut() {
                row.software_rev = rev.into();
            }
            self
        }

        /// What a poll of this profile must observe.
        pub fn observation(&self) -> Observation {
            Observation {
                sys_descr: self.sys_descr.clone(),
                sys_object_id: self.sys_object_id.clone(),
                sys_name: self.sys_name.clone(),
                entities: self.entities.clone(),
            }
        }

        /// Every value as (OID arcs, value), in OID order.
        fn values(&self) -> Vec<(Vec<u32>, Served)> {
            let oid = |s: &str| s.split('.').filter_map(|a| a.parse().ok()).collect::<Vec<u32>>();
            let mut v = vec![
                (vec![1, 3, 6, 1, 2, 1, 1, 1, 0], Served::Text(self.sys_descr.clone())),
                (vec![1, 3, 6, 1, 2, 1, 1, 2, 0], Served::Oid(oid(&self.sys_object_id))),
                (vec![1, 3, 6, 1, 2, 1, 1, 5, 0], Served::Text(self.sys_name.clone())),
            ];
            for e in &self.entities {
                let cell = |column: u32| {
                    let mut o = ringfence_agent::snmp::ENT_PHYSICAL_ENTRY.to_vec();
                    o.extend([column, e.index]);
                    o
                };
                v.push((cell(2), Served::Text(e.descr.clone())));
                if let Some(class) = e.class {
                    v.push((cell(5), Served::Integer(class)));
                }
                v.push((cell(8), Served::Text(e.hardware_rev.clone())));
                v.push((cell(9), Served::Text(e.firmware_rev.clone())));
                v.push((cell(10), Served::Text(e.software_rev.clone())));
                v.push((cell(11), Served::Text(e.serial.clone())));
                v.push((cell(13), Served::Text(e.model_name.clone())));
            }
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        }
    }

    #[derive(Clone, Debug)]
    enum Served {
        Text(String),
        Integer(i32),
        Oid(Vec<u32>),
    }

    fn dotted(arcs: &[u32]) -> String {
        arcs.iter().map(|a| format!(".{a}")).collect()
    }

    /// The pass_persist script's data lines: `.OID|type|value`, strings as hex octets so any character
    /// (the Catalyst's CR LF) survives the line-based protocol.
    fn pass_data(profile: &Profile) -> String {
        let mut out = String::new();
        for (oid, value) in profile.values() {
            let (ty, text) = match value {
                Served::Text(s) => {
                    ("octet", s.bytes().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" "))
                }
                Served::Integer(i) => ("integer", i.to_string()),
                Served::Oid(o) => ("objectid", dotted(&o)),
            };
            out.push_str(&format!("{}|{ty}|{text}\n", dotted(&oid)));
        }
        out
    }

    /// Answers snmpd's `pass_persist` protocol (`PING`, `get`, `getnext`) from the data file
    /// beside it, read again for every request; OIDs are compared arc by arc. Its argument is
    /// the subtree it is registered for (a get-next never leaves it). Only shell builtins run
    /// per request, so an answer takes well under a millisecond.
    const PASS_SCRIPT: &str = r#"#!/bin/sh
root=$1
data="$(dirname "$0")/profile.data"
gt() {
  a=${1#.}; b=${2#.}
  while :; do
    [ -z "$a" ] && return 1
    [ -z "$b" ] && return 0
    x=${a%%.*}; y=${b%%.*}
    [ "$x" -gt "$y" ] && return 0
    [ "$x" -lt "$y" ] && return 1
    case $a in *.*) a=${a#*.};; *) a="";; esac
    case $b in *.*) b=${b#*.};; *) b="";; esac
  done
}
under() { case "$1" in "$root"|"$root".*) return 0;; esac; return 1; }
lookup() {
  while IFS='|' read -r oid type value; do
    case $1 in
      get) [ "$oid" = "$2" ] && { printf '%s\n%s\n%s\n' "$oid" "$type" "$value"; return; } ;;
      getnext) gt "$oid" "$2" && under "$oid" && { printf '%s\n%s\n%s\n' "$oid" "$type" "$value"; return; } ;;
    esac
  done < "$data"
  echo NONE
}
while read -r cmd; do
  case $cmd in
    PING) echo PONG ;;
    get|getnext) read -r oid; lookup "$cmd" "$oid" ;;
    set) read -r oid; read -r value; echo not-writable ;;
    *) exit 0 ;;
  esac
done
"#;

    /// A real net-snmp `snmpd` serving one [`Profile`] on a free UDP port of some loopback
    /// addresses, with the [`COMMUNITY`] for SNMPv2c and the SNMPv3 user [`V3_USER`]
    /// (authPriv only). Its configuration, persistent state and logs live in a private
    /// folder; it reads no system configuration or MIB files. Killed on drop.
    pub struct Snmpd {
        child: Child,
        dir: PathBuf,
        pub port: u16,
        pub addresses: Vec<Ipv4Addr>,
    }

    const SNMPD: &str = "/usr/sbin/snmpd";

    impl Snmpd {
        /// Starts snmpd on `bind` (127.0.0.1 when empty) and waits until it answers. `Ok(None)`
        /// when snmpd is not installed (a skip message is printed; in CI that is a failure).
        pub fn start(profile: &Profile, bind: &[Ipv4Addr]) -> Result<Option<Snmpd>, String> {
            let Some((dir, addresses)) = prepare(bind)? else { return Ok(None) };
            let mut last_error = String::new();
            // The port is found free and then handed to snmpd; another process may take it in
            // between, so a failed start is tried again on another port.
            for _ in 0..5 {
                let port = free_udp_port(&addresses)?;
                match Snmpd::spawn(&dir, profile, &addresses, port) {
                    Ok(s) => return Ok(Some(s)),
                    Err(e) => last_error = e,
                }
            }
            Err(last_error)
        }

        /// Like [`Snmpd::start`] on a port the caller chose (see [`free_udp_port`]).
        pub fn start_on_port(
            profile: &Profile,
            bind: &[Ipv4Addr],
            port: u16,
        ) -> Result<Option<Snmpd>, String> {
            let Some((dir, addresses)) = prepare(bind)? else { return Ok(None) };
            Snmpd::spawn(&dir, profile, &addresses, port).map(Some)
        }

        fn spawn(dir: &Path, profile: &Profile, addresses: &[Ipv4Addr], port: u16) -> Result<Snmpd, String> {
            use std::os::unix::fs::PermissionsExt;
            let script = dir.join("pass.sh");
            std::fs::write(&script, PASS_SCRIPT).map_err(|e| e.to_string())?;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
            write_atomically(&dir.join("profile.data"), &pass_data(profile))?;
            let listen: Vec<String> = addresses.iter().map(|a| format!("udp:{a}:{port}")).collect();
            let first_line = profile.sys_descr.lines().next().unwrap_or("");
            // sysDescr, sysObjectID and sysName come from the pass script, ahead of snmpd's
            // own (priority 1), so a profile can change while snmpd runs and a sysDescr may
            // hold line breaks; the directives are snmpd's fallback.
            let conf = format!(
                "agentaddress {listen}\n\
                 rocommunity {COMMUNITY} 127.0.0.0/8\n\
                 createUser {V3_USER} SHA-256 {V3_AUTH_PASSWORD} AES {V3_PRIV_PASSWORD}\n\
                 rouser {V3_USER} priv\n\
                 sysdescr {first_line}\n\
                 sysobjectid .{oid}\n\
                 sysname {name}\n\
                 pass_persist -p 1 .1.3.6.1.2.1.1.1 {script} .1.3.6.1.2.1.1.1\n\
                 pass_persist -p 1 .1.3.6.1.2.1.1.2 {script} .1.3.6.1.2.1.1.2\n\
                 pass_persist -p 1 .1.3.6.1.2.1.1.5 {script} .1.3.6.1.2.1.1.5\n\
                 {entity}",
                listen = listen.join(","),
                oid = profile.sys_object_id,
                name = profile.sys_name,
                script = script.display(),
                entity = if profile.entities.is_empty() {
                    String::new()
                } else {
                    format!(
                        "pass_persist .1.3.6.1.2.1.47.1.1.1.1 {} .1.3.6.1.2.1.47.1.1.1.1\n",
                        script.display()
                    )
                },
            );
            let conf_path = dir.join("snmpd.conf");
            std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_dir_all(dir.join("persist"));
            std::fs::create_dir_all(dir.join("persist")).map_err(|e| e.to_string())?;
            let log = std::fs::File::create(dir.join("snmpd.log")).map_err(|e| e.to_string())?;
            let child = Command::new(SNMPD)
                .args(["-f", "-Lo", "-C", "-c"])
                .arg(&conf_path)
                .arg("-M")
                .arg(dir.join("persist"))
                .args(["-m", ""])
                .arg("-p")
                .arg(dir.join("snmpd.pid"))
                .env("SNMP_PERSISTENT_DIR", dir.join("persist"))
                .env("SNMPCONFPATH", dir)
                .env("MIBS", "")
                .env("MIBDIRS", dir.join("persist"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start {SNMPD}: {e}"))?;
            let mut s = Snmpd { child, dir: dir.to_path_buf(), port, addresses: addresses.to_vec() };
            s.wait_ready()?;
            Ok(s)
        }

        fn wait_ready(&mut self) -> Result<(), String> {
            let deadline = Instant::now() + Duration::from_secs(15);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(format!("snmpd exited ({status}): {}", self.log()));
                }
                let all = self.addresses.iter().all(|a| {
                    let addr = SocketAddr::from((*a, self.port));
                    let outcome = rt.block_on(ringfence_agent::snmp::poll(
                        addr,
                        &v2c_credential(),
                        Duration::from_millis(300),
                        0,
                    ));
                    outcome.name() == "ok"
                });
                if all {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(format!("snmpd did not answer within 15 s: {}", self.log()))
        }

        /// The first bound address with the port.
        pub fn addr(&self) -> SocketAddr {
            SocketAddr::from((self.addresses[0], self.port))
        }

        /// Serves another profile from now on, as a device does after a firmware upgrade
        /// (the data file is replaced at once; snmpd keeps running).
        pub fn set_profile(&self, profile: &Profile) -> Result<(), String> {
            write_atomically(&self.dir.join("profile.data"), &pass_data(profile))
        }

        /// What snmpd logged.
        pub fn log(&self) -> String {
            std::fs::read_to_string(self.dir.join("snmpd.log")).unwrap_or_default()
        }
    }

    impl Drop for Snmpd {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A fresh private folder and the addresses to bind, or `None` without snmpd.
    fn prepare(bind: &[Ipv4Addr]) -> Result<Option<(PathBuf, Vec<Ipv4Addr>)>, String> {
        if !Path::new(SNMPD).exists() {
            if std::env::var_os("CI").is_some() {
                return Err(format!("{SNMPD} missing: CI must run the SNMP tests (apt-get install snmpd)"));
            }
            eprintln!("SKIPPED: {SNMPD} missing (the SNMP tests need Debian's snmpd: apt-get install snmpd)");
            return Ok(None);
        }
        let addresses = if bind.is_empty() { vec![Ipv4Addr::LOCALHOST] } else { bind.to_vec() };
        let dir = std::env::temp_dir().join(format!(
            "ringfence-snmpd-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("persist")).map_err(|e| e.to_string())?;
        Ok(Some((dir, addresses)))
    }

    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, text).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, path).map_err(|e| e.to_string())
    }

    /// A UDP port free on every address.
    pub fn free_udp_port(addresses: &[Ipv4Addr]) -> Result<u16, String> {
        for _ in 0..100 {
            let first = UdpSocket::bind((addresses[0], 0))
                .map_err(|e| format!("cannot bind {}: {e}", addresses[0]))?;
            let port = first.local_addr().map_err(|e| e.to_string())?.port();
            if addresses[1..].iter().all(|a| UdpSocket::bind((*a, port)).is_ok()) {
                return Ok(port);
            }
        }
        Err("no UDP port is free on all the addresses".into())
    }

    /// A poll job for `targets`, all with one credential (id `cred-1`), as the server would
    /// lease it, valid for an hour.
    pub fn poll_job(
        targets: &[SocketAddr],
        credential: SnmpCredential,
        concurrency: u32,
        timeout_ms: u32,
    ) -> CollectorJob {
        let now = jiff::Timestamp::now();
        CollectorJob {
            id: "bench-poll".into(),
            collector_device_id: "collector-1".into(),
            credentials: vec![CredentialRef { id: "cred-1".into(), credential }],
            work: CollectorWork::Poll {
                targets: targets
                    .iter()
                    .enumerate()
                    .map(|(i, a)| PollTarget {
                        appliance_id: format!("appliance-{i}"),
                        address: a.ip().to_string(),
                        port: a.port(),
                        credential_id: "cred-1".into(),
                    })
                    .collect(),
            },
            timeout_ms,
            retries: 1,
            concurrency,
            issued_at: now,
            expires_at: now + jiff::SignedDuration::from_hours(1),
        }
    }

    /// Raises the limit of open files to the hard limit (a fleet needs a socket per
    /// appliance); returns the new soft limit.
    pub fn raise_open_files_limit() -> u64 {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return 0;
            }
            if lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim = raised;
                }
            }
        }
        // rlim_t is u64 on Linux but not on every unix.
        #[allow(clippy::unnecessary_cast)]
        let limit = lim.rlim_cur as u64;
        limit
    }

    /// `n` simulated appliances answering SNMPv2c with [`COMMUNITY`] (the system group and
    /// the entity table of one profile, GET, GETNEXT and GETBULK) on distinct ports of
    /// 127.0.0.1, served by one thread. Stopped on drop.
    pub struct SimulatedFleet {
        addresses: Vec<SocketAddr>,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    struct ProfileHandler {
        table: async_snmp::OidTable<async_snmp::Value>,
    }

    impl async_snmp::MibHandler for ProfileHandler {
        fn get<'a>(
            &'a self,
            _ctx: &'a async_snmp::RequestContext,
            oid: &'a async_snmp::Oid,
        ) -> async_snmp::BoxFuture<'a, async_snmp::HandlerResult<async_snmp::GetResult>> {
            Box::pin(async move {
                Ok(match self.table.get(oid) {
                    Some(v) => async_snmp::GetResult::Value(v.clone()),
                    None => async_snmp::GetResult::NoSuchObject,
                })
            })
        }

        fn get_next<'a>(
            &'a self,
            _ctx: &'a async_snmp::RequestContext,
            oid: &'a async_snmp::Oid,
        ) -> async_snmp::BoxFuture<'a, async_snmp::HandlerResult<async_snmp::GetNextResult>> {
            Box::pin(async move {
                Ok(match self.table.get_next(oid) {
                    Some((o, v)) => {
                        async_snmp::GetNextResult::Value(async_snmp::VarBind::new(o.clone(), v.clone()))
                    }
                    None => async_snmp::GetNextResult::EndOfMibView,
                })
            })
        }
    }

    impl SimulatedFleet {
        /// Starts `n` appliances serving `profile`, raising the open-files limit as needed.
        pub fn start(n: usize, profile: &Profile) -> Result<SimulatedFleet, String> {
            let needed = n as u64 + 256;
            if raise_open_files_limit() < needed {
                return Err(format!(
                    "{n} simulated appliances need {needed} open files; raise the hard limit (ulimit -Hn)"
                ));
            }
            let mut table = async_snmp::OidTable::new();
            for (oid, value) in profile.values() {
                let value = match value {
                    Served::Text(s) => async_snmp::Value::OctetString(s.into_bytes().into()),
                    Served::Integer(i) => async_snmp::Value::Integer(i),
                    Served::Oid(o) => async_snmp::Value::ObjectIdentifier(async_snmp::Oid::from_slice(&o)),
                };
                table.insert(async_snmp::Oid::from_slice(&oid), value);
            }
            let handler = std::sync::Arc::new(ProfileHandler { table });
            let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<Vec<SocketAddr>, String>>();
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let thread = std::thread::spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut addresses = Vec::with_capacity(n);
                    for _ in 0..n {
                        let agent = async_snmp::Agent::builder()
                            .bind("127.0.0.1:0")
                            .community(COMMUNITY.as_bytes())
                            .handler(async_snmp::Oid::from_slice(&[1, 3, 6, 1, 2, 1]), handler.clone())
                            .allow_all_access()
                            .build()
                            .await;
                        let agent = match agent {
                            Ok(a) => a,
                            Err(e) => {
                                let _ =
                                    ready_tx.send(Err(format!("cannot start a simulated appliance: {e}")));
                                return;
                            }
                        };
                        addresses.push(agent.local_addr());
                        tokio::spawn(async move {
                            let _ = agent.run().await;
                        });
                    }
                    let _ = ready_tx.send(Ok(addresses));
                    let _ = stop_rx.await;
                });
            });
            let addresses =
                ready_rx.recv().map_err(|_| "the simulated fleet's thread ended".to_string())??;
            Ok(SimulatedFleet { addresses, stop: Some(stop_tx), thread: Some(thread) })
        }

        pub fn addresses(&self) -> &[SocketAddr] {
            &self.addresses
        }

        /// A poll job of every appliance of the fleet with the fleet's community.
        pub fn poll_job(&self, concurrency: u32, timeout_ms: u32) -> CollectorJob {
            poll_job(&self.addresses, v2c_credential(), concurrency, timeout_ms)
        }
    }

    impl Drop for SimulatedFleet {
        fn drop(&mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}
