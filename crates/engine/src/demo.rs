//! The demo MSP: a partner with three very different clients, their sites in several time
//! zones, device groups, about sixty devices and a user for each role.
//!
//! Everything is created through the same use cases as real data (validation, evidence
//! events), by the operator `demo-seed`. Later capabilities add their own steps after
//! [`seed_tenancy`] (inventory, findings, approvals, rollouts), each taking the
//! [`DemoSeed`] it returns.

use crate::deploy::DISPATCH_ACTOR;
use crate::{Engine, Result};
use ringfence_inventory::{Inventory, Item, ItemKind, OsInfo};
use ringfence_model::*;
use ringfence_proto as proto;
use ringfence_store::Audit;

pub const PARTNER_NAME: &str = "Demo MSP";
/// The password of every demo login. The demo is for a laptop, never for production.
pub const DEMO_PASSWORD: &str = "ringfence-demo-2026";

/// A demo login, printed when the demo starts.
#[derive(Clone, Debug)]
pub struct DemoLogin {
    pub username: String,
    pub role: Role,
    pub scope: String,
}

/// What the tenancy step created, for the steps that follow.
#[derive(Clone, Debug)]
pub struct DemoSeed {
    pub partner: Partner,
    pub operator: Principal,
    pub organizations: Vec<Organization>,
    pub sites: Vec<Site>,
    pub devices: Vec<Device>,
    pub logins: Vec<DemoLogin>,
}

struct OrgSpec {
    name: &'static str,
    notes: &'static str,
    sites: &'static [(&'static str, &'static str, &'static str)],
    groups: &'static [(&'static str, &'static str)],
    /// (site index, host name prefix, count, role, criticality, internet facing, sensitive,
    /// operating system, group indices)
    devices: &'static [DeviceSpec],
}

struct DeviceSpec(
    usize,
    &'static str,
    usize,
    DeviceRole,
    Criticality,
    bool,
    bool,
    &'static str,
    &'static [usize],
);

const ORGS: &[OrgSpec] = &[
    OrgSpec {
        name: "Hartley & Moss LLP",
        notes: "Law firm. Office hours Monday to Friday 08:00-17:00 local time; the office closes at 17:00, so patching and reboots happen after hours. Client files are privileged: treat the file server as sensitive.",
        sites: &[
            ("Manhattan Office", "America/New_York", "350 Fifth Avenue, New York, NY"),
            ("Chicago Office", "America/Chicago", "233 S Wacker Dr, Chicago, IL"),
        ],
        groups: &[
            ("Attorney laptops", "Laptops of partners and associates; they travel."),
            ("Servers", "Domain controller and document management."),
            ("Front desk", "Reception and shared workstations."),
        ],
        devices: &[
            DeviceSpec(
                0,
                "hm-nyc-lt",
                8,
                DeviceRole::Laptop,
                Criticality::Medium,
                false,
                true,
                "Windows 11 Pro 23H2",
                &[0],
            ),
            DeviceSpec(
                0,
                "hm-nyc-ws",
                3,
                DeviceRole::Workstation,
                Criticality::Low,
                false,
                false,
                "Windows 11 Pro 23H2",
                &[2],
            ),
            DeviceSpec(
                0,
                "hm-nyc-dc",
                1,
                DeviceRole::DomainController,
                Criticality::Critical,
                false,
                true,
                "Windows Server 2022",
                &[1],
            ),
            DeviceSpec(
                0,
                "hm-nyc-dms",
                1,
                DeviceRole::Server,
                Criticality::High,
                false,
                true,
                "Windows Server 2019",
                &[1],
            ),
            DeviceSpec(
                0,
                "hm-nyc-fw",
                1,
                DeviceRole::NetworkAppliance,
                Criticality::High,
                true,
                false,
                "FortiOS 7.2.5",
                &[],
            ),
            DeviceSpec(
                1,
                "hm-chi-lt",
                4,
                DeviceRole::Laptop,
                Criticality::Medium,
                false,
                true,
                "Windows 11 Pro 23H2",
                &[0],
            ),
            DeviceSpec(
                1,
                "hm-chi-ws",
                1,
                DeviceRole::Workstation,
                Criticality::Low,
                false,
                false,
                "Windows 10 Pro 22H2",
                &[2],
            ),
        ],
    },
    OrgSpec {
        name: "Riverside Family Clinic",
        notes: "Medical clinic; patient records are protected health information (HIPAA). Open Monday to Saturday 07:00-19:00. The EHR server must never reboot during clinic hours; exam-room PCs may patch overnight.",
        sites: &[
            ("Main Clinic", "America/Denver", "1200 Riverside Dr, Boise, ID"),
            ("Eastside Annex", "America/Boise", "88 Parkcenter Blvd, Boise, ID"),
        ],
        groups: &[
            ("Exam rooms", "Shared PCs in exam rooms, signed in with badges."),
            ("EHR servers", "Electronic health record application and database."),
            ("Reception", "Check-in desks and printers' hosts."),
        ],
        devices: &[
            DeviceSpec(
                0,
                "rfc-exam",
                8,
                DeviceRole::Kiosk,
                Criticality::Medium,
                false,
                true,
                "Windows 11 Enterprise 23H2",
                &[0],
            ),
            DeviceSpec(
                0,
                "rfc-front",
                3,
                DeviceRole::Workstation,
                Criticality::Medium,
                false,
                true,
                "Windows 11 Pro 23H2",
                &[2],
            ),
            DeviceSpec(
                0,
                "rfc-ehr",
                2,
                DeviceRole::Server,
                Criticality::Critical,
                false,
                true,
                "Ubuntu 22.04 LTS",
                &[1],
            ),
            DeviceSpec(
                0,
                "rfc-dc",
                1,
                DeviceRole::DomainController,
                Criticality::Critical,
                false,
                true,
                "Windows Server 2022",
                &[1],
            ),
            DeviceSpec(
                0,
                "rfc-vpn",
                1,
                DeviceRole::NetworkAppliance,
                Criticality::High,
                true,
                false,
                "Ivanti Connect Secure 22.7",
                &[],
            ),
            DeviceSpec(
                1,
                "rfc-annex-ws",
                3,
                DeviceRole::Workstation,
                Criticality::Medium,
                false,
                true,
                "Windows 11 Pro 23H2",
                &[2],
            ),
        ],
    },
    OrgSpec {
        name: "Northwind Call Center",
        notes: "Contact center open 24/7 in three shifts across three floors. There is no quiet hour: patch a third of the agent desktops at a time and keep a standby telephony server up.",
        sites: &[
            ("Phoenix Floor", "America/Phoenix", "2 N Central Ave, Phoenix, AZ"),
            ("Dublin Floor", "Europe/Dublin", "1 Grand Canal Sq, Dublin"),
            ("Manila Floor", "Asia/Manila", "6750 Ayala Ave, Makati City"),
        ],
        groups: &[
            ("Agent desktops", "Desktops of call agents, all shifts."),
            ("Telephony", "Contact-center and SIP servers, active and standby."),
            ("Supervisors", "Supervisor workstations."),
        ],
        devices: &[
            DeviceSpec(
                0,
                "nw-phx-agent",
                6,
                DeviceRole::Workstation,
                Criticality::Medium,
                false,
                false,
                "Windows 11 Enterprise 23H2",
                &[0],
            ),
            DeviceSpec(
                0,
                "nw-phx-sup",
                1,
                DeviceRole::Workstation,
                Criticality::Medium,
                false,
                false,
                "Windows 11 Enterprise 23H2",
                &[2],
            ),
            DeviceSpec(
                0,
                "nw-phx-pbx",
                2,
                DeviceRole::Server,
                Criticality::Critical,
                true,
                false,
                "Debian 12",
                &[1],
            ),
            DeviceSpec(
                1,
                "nw-dub-agent",
                5,
                DeviceRole::Workstation,
                Criticality::Medium,
                false,
                false,
                "Windows 11 Enterprise 23H2",
                &[0],
            ),
            DeviceSpec(
                1,
                "nw-dub-sup",
                1,
                DeviceRole::Workstation,
                Criticality::Medium,
                false,
                false,
                "Windows 11 Enterprise 23H2",
                &[2],
            ),
            DeviceSpec(
                2,
                "nw-mnl-agent",
                7,
                DeviceRole::Workstation,
                Criticality::Medium,
                false,
                false,
                "Windows 11 Enterprise 23H2",
                &[0],
            ),
            DeviceSpec(
                2,
                "nw-mnl-hv",
                1,
                DeviceRole::Hypervisor,
                Criticality::High,
                false,
                false,
                "VMware ESXi 8.0",
                &[1],
            ),
        ],
    },
];

/// Creates the demo partner and its tenancy tree. Fails if a partner named "Demo MSP" exists.
pub async fn seed_tenancy(engine: &Engine) -> Result<DemoSeed> {
    let name = Name::parse("name", PARTNER_NAME)?;
    let partner = engine.store().create_partner(&Audit::new("cli:demo-seed", engine.now()), &name).await?;
    let operator = engine.operator("demo-seed", PARTNER_NAME).await?;
    let mut seed = DemoSeed {
        partner,
        operator: operator.clone(),
        organizations: Vec::new(),
        sites: Vec::new(),
        devices: Vec::new(),
        logins: Vec::new(),
    };
    for spec in ORGS {
        let org = engine
            .create_organization(
                &operator,
                &proto::CreateOrganization { name: spec.name.into(), notes: spec.notes.into() },
            )
            .await?;
        let mut sites = Vec::new();
        for (name, tz, address) in spec.sites {
            let req = proto::CreateSite {
                organization_id: org.id.to_string(),
                name: (*name).into(),
                time_zone: (*tz).into(),
                address: (*address).into(),
            };
            sites.push(engine.create_site(&operator, &req).await?);
        }
        let mut groups = Vec::new();
        for (name, description) in spec.groups {
            let req = proto::CreateDeviceGroup {
                organization_id: org.id.to_string(),
                name: (*name).into(),
                description: (*description).into(),
            };
            groups.push(engine.create_group(&operator, &req).await?);
        }
        for DeviceSpec(site, prefix, count, role, criticality, internet, sensitive, os, group_idx) in
            spec.devices
        {
            for n in 1..=*count {
                let hostname = if *count == 1 { (*prefix).to_owned() } else { format!("{prefix}{n:02}") };
                let req = proto::CreateDevice {
                    site_id: sites[*site].id.to_string(),
                    hostname,
                    role: role.as_str().into(),
                    os: (*os).into(),
                    internet_facing: *internet,
                    holds_sensitive_data: *sensitive,
                    criticality: Some(criticality.as_str().into()),
                    time_zone: None,
                    group_ids: group_idx.iter().map(|g| groups[*g].id.to_string()).collect(),
                };
                seed.devices.push(engine.create_device(&operator, &req).await?);
            }
        }
        seed.sites.extend(sites);
        seed.organizations.push(org);
    }
    let law_firm = seed.organizations[0].id.to_string();
    let users = [
        ("admin@demo-msp.example", "Dana Admin", Role::PartnerAdmin, None),
        ("tech@demo-msp.example", "Toby Technician", Role::Technician, None),
        ("auditor@demo-msp.example", "Avery Auditor", Role::Auditor, None),
        ("viewer@hartleymoss.example", "Vic Viewer (Hartley & Moss)", Role::ClientViewer, Some(law_firm)),
    ];
    for (username, display_name, role, org) in users {
        let req = proto::CreateUser {
            username: username.into(),
            display_name: display_name.into(),
            role: role.as_str().into(),
            organization_id: org.clone(),
            password: DEMO_PASSWORD.into(),
        };
        engine.create_user(&operator, &req).await?;
        seed.logins.push(DemoLogin {
            username: username.into(),
            role,
            scope: if org.is_some() { seed.organizations[0].name.clone() } else { "all clients".into() },
        });
    }
    Ok(seed)
}

/// What the vulnerability step did.
#[derive(Clone, Debug)]
pub struct DemoIntel {
    pub inventories: usize,
    pub report: crate::findings::CorrelationReport,
}

fn program(name: &str, version: &str, vendor: &str) -> Item {
    let mut i = Item::new(ItemKind::Application, name, version);
    i.manager = Some("msi".into());
    i.vendor = Some(vendor.into());
    i
}

fn deb(name: &str, version: &str, source: Option<&str>) -> Item {
    let mut i = Item::new(ItemKind::Package, name, version);
    i.manager = Some("dpkg".into());
    i.arch = Some("amd64".into());
    i.source_name = source.map(str::to_string);
    i
}

fn with_cpe(kind: ItemKind, name: &str, version: &str, cpe: &str) -> Item {
    let mut i = Item::new(kind, name, version);
    i.cpe = Some(cpe.into());
    i
}

/// The demo's Debian 12 packages (some of them with known vulnerabilities in the demo
/// data); also the base of the demo's simulated agents when the machine has no dpkg status.
pub fn debian_packages() -> Vec<Item> {
    vec![
        deb("base-files", "12.4+deb12u11", None),
        deb("openssh-server", "1:9.2p1-2+deb12u6", Some("openssh")),
        deb("openssh-client", "1:9.2p1-2+deb12u6", Some("openssh")),
        deb("libc6", "2.36-9+deb12u14", Some("glibc")),
        deb("libexpat1", "2.5.0-1+deb12u1", Some("expat")),
        deb("xz-utils", "5.4.1-1", None),
        deb("liblzma5", "5.4.1-1", Some("xz-utils")),
        deb("jq", "1.6-2.1+deb12u1", None),
        deb("libjq1", "1.6-2.1+deb12u1", Some("jq")),
        deb("unzip", "6.0-28", None),
        deb("openssl", "3.0.19-1~deb12u2", None),
        deb("libssl3", "3.0.19-1~deb12u2", Some("openssl")),
        deb("curl", "7.88.1-10+deb12u15", None),
        deb("libcurl4", "7.88.1-10+deb12u15", Some("curl")),
        deb("sudo", "1.9.13p3-1+deb12u1", None),
    ]
}

/// A plausible inventory for a demo device, varied by its position so the fleet has both
/// patched and unpatched machines.
fn demo_inventory(n: usize, d: &Device) -> Option<Inventory> {
    let os = d.os.as_str();
    let windows = |build: &str| OsInfo {
        family: "windows".into(),
        id: "windows".into(),
        version: build.into(),
        codename: None,
        name: os.into(),
    };
    if os.starts_with("Windows") {
        let build = match (os.contains("Server"), os) {
            (true, o) if o.contains("2019") => "10.0.17763.5696",
            (true, _) => {
                if n.is_multiple_of(2) {
                    "10.0.20348.2402"
                } else {
                    "10.0.20348.2966"
                }
            }
            (false, o) if o.contains("Windows 10") => "10.0.19045.4291",
            _ => {
                if n.is_multiple_of(3) {
                    "10.0.22631.3447"
                } else {
                    "10.0.22631.4602"
                }
            }
        };
        let mut items = vec![
            program(
                if n.is_multiple_of(3) { "7-Zip 23.01 (x64)" } else { "7-Zip 24.09 (x64)" },
                if n.is_multiple_of(3) { "23.01" } else { "24.09" },
                "Igor Pavlov",
            ),
            program(
                "Google Chrome",
                if n.is_multiple_of(2) { "126.0.6478.127" } else { "131.0.6778.86" },
                "Google LLC",
            ),
        ];
        if !os.contains("Server") {
            items.push(program(
                "Notepad++ (64-bit x64)",
                if n.is_multiple_of(4) { "8.5.6" } else { "8.6.9" },
                "Notepad++ Team",
            ));
            items.push(program(
                "Adobe Acrobat Reader DC",
                if n % 3 == 1 { "23.003.20215" } else { "24.002.20933" },
                "Adobe Inc.",
            ));
            if n.is_multiple_of(5) {
                items.push(program("WinRAR 6.22 (64-bit)", "6.22.0", "win.rar GmbH"));
            }
            items.push(program(
                "Mozilla Firefox (x64 en-US)",
                if n.is_multiple_of(6) { "128.0" } else { "133.0" },
                "Mozilla",
            ));
        }
        if d.hostname.ends_with("-dms") {
            items.push(program("Veeam Backup & Replication", "12.1.1.56", "Veeam Software Group GmbH"));
            // An on-premises ScreenConnect server (vulnerable: CVE-2024-1709), and the client every
            // supported machine carries (not the server, never matched as it).
            items.push(program("ScreenConnect", "23.9.7.8804", "ConnectWise"));
            items.push(program("ScreenConnect Client (5f3c1a)", "23.9.7.8804", "ConnectWise"));
        }
        return Some(Inventory { os: windows(build), items });
    }
    if os.starts_with("Debian") {
        return Some(Inventory { os: OsInfo::debian("12"), items: debian_packages() });
    }
    if os.starts_with("Ubuntu") {
        let items = vec![
            deb("openssh-server", "1:8.9p1-3ubuntu0.10", Some("openssh")),
            deb("libc6", "2.35-0ubuntu3.8", Some("glibc")),
            deb("xz-utils", "5.2.5-2ubuntu1", None),
        ];
        let os = OsInfo {
            family: "linux".into(),
            id: "ubuntu".into(),
            version: "22.04".into(),
            codename: Some("jammy".into()),
            name: os.into(),
        };
        return Some(Inventory { os, items });
    }
    if os.starts_with("FortiOS") {
        let items = vec![
            with_cpe(
                ItemKind::Firmware,
                "FortiOS",
                "7.2.5",
                "cpe:2.3:o:fortinet:fortios:7.2.5:*:*:*:*:*:*:*",
            ),
            with_cpe(
                ItemKind::Hardware,
                "FortiGate 60F",
                "-",
                "cpe:2.3:h:fortinet:fortigate_60f:-:*:*:*:*:*:*:*",
            ),
        ];
        return Some(Inventory {
            os: OsInfo { family: "".into(), name: os.into(), ..OsInfo::default() },
            items,
        });
    }
    if os.contains("ESXi") {
        let items = vec![with_cpe(
            ItemKind::Firmware,
            "VMware ESXi",
            "8.0",
            "cpe:2.3:o:vmware:esxi:8.0:-:*:*:*:*:*:*",
        )];
        return Some(Inventory {
            os: OsInfo { family: "".into(), name: os.into(), ..OsInfo::default() },
            items,
        });
    }
    None
}

/// Gives every demo device an inventory, then imports the demo vulnerability dataset so
/// correlation runs as it would after a real feed import (with alerts for the fleet).
pub async fn seed_intel(engine: &Engine, seed: &DemoSeed) -> Result<DemoIntel> {
    let mut inventories = 0;
    for (n, d) in seed.devices.iter().enumerate() {
        if let Some(inv) = demo_inventory(n, d) {
            engine.submit_inventory(&seed.operator, d.id.as_str(), inv).await?;
            inventories += 1;
        }
    }
    let summary = crate::intel::import_demo(engine.store().as_ref(), engine.now())
        .await
        .map_err(crate::EngineError::Conflict)?;
    let report = engine.correlate_after_import(&[summary]).await?;
    Ok(DemoIntel { inventories, report })
}

/// What the remediation seed created.
#[derive(Debug)]
pub struct DemoRemediation {
    pub policies: usize,
    pub catalogs: usize,
    pub rule_approvals: usize,
}

/// Pending updates a Debian 12 demo device reports: fixes for its findings plus a kernel,
/// firmware and a backported feature update, so every classification appears.
fn demo_pending_updates() -> Vec<proto::AgentPendingUpdate> {
    let u = |name: &str, installed: &str, candidate: &str, origin: &str, security: bool| {
        proto::AgentPendingUpdate {
            manager: "dpkg".into(),
            name: name.into(),
            installed: installed.into(),
            candidate: candidate.into(),
            origin: origin.into(),
            security,
            advisories: Vec::new(),
            cves: Vec::new(),
        }
    };
    vec![
        u("jq", "1.6-2.1+deb12u1", "1.6-2.1+deb12u2", "bookworm-security", true),
        u("libjq1", "1.6-2.1+deb12u1", "1.6-2.1+deb12u2", "bookworm-security", true),
        u("unzip", "6.0-28", "6.0-28+deb12u1", "bookworm-security", true),
        u("xz-utils", "5.4.1-1", "5.4.1-1+deb12u1", "bookworm", false),
        u("liblzma5", "5.4.1-1", "5.4.1-1+deb12u1", "bookworm", false),
        u("linux-image-amd64", "6.1.129-1", "6.1.135-1", "bookworm-security", true),
        u("firmware-misc-nonfree", "20230210-5", "20230210-5+deb12u1", "bookworm", false),
        u("podman", "4.3.1+ds1-8", "4.9.4+ds1-1~bpo12+1", "bookworm-backports", false),
    ]
}

/// A demo policy; `settings` is a JSON object.
fn demo_policy(
    name: String,
    level: &str,
    target_id: Option<String>,
    priority: i64,
    settings: serde_json::Value,
    locked: &[&str],
) -> proto::PolicyInput {
    proto::PolicyInput {
        name,
        level: level.into(),
        target_id,
        priority,
        settings: settings.as_object().cloned().unwrap_or_default(),
        locked: locked.iter().map(|l| l.to_string()).collect(),
    }
}

/// A technician's decision on one queue entry for every organization of the partner.
async fn decide_partner_wide(
    engine: &Engine,
    op: &Principal,
    item: &crate::remediation::QueueItem,
    decision: &str,
    reason: &str,
    defer_until: Option<String>,
) -> Result<()> {
    let req = proto::DecisionRequest {
        updates: vec![proto::UpdateRef {
            product: item.product.clone(),
            version: item.version.clone().unwrap_or_default(),
        }],
        decision: decision.into(),
        reason: reason.into(),
        organization_id: None,
        defer_until,
        emergency: false,
    };
    engine.decide(op, &req).await?;
    Ok(())
}

/// Seeds policies at several levels, the Debian devices' update catalogs, a client
/// exception and a deferral, then runs the approval rules, so the queue shows every state.
pub async fn seed_remediation(engine: &Engine, seed: &DemoSeed) -> Result<DemoRemediation> {
    let op = &seed.operator;
    let window = |dtstart: &str, rrule: &str, duration: &str| serde_json::json!({"dtstart": dtstart, "rrule": rrule, "duration": duration});
    let mut policies = vec![demo_policy(
        "MSP baseline".into(),
        "partner",
        None,
        0,
        serde_json::json!({
            "ring": 2,
            "reboot": "allowed",
            "validation_hours": {"security": 24, "feature": 72},
            "maintenance_windows": [window("2026-01-04T02:00", "FREQ=WEEKLY;BYDAY=SU", "PT3H")],
            "business_hours": {"days": "MO,TU,WE,TH,FR", "start": "08:00", "end": "18:00"},
            "approval": {"auto_approve": {"classifications": ["security", "critical"], "kev": true, "cvss_at_least": 8.0, "ssvc_act": true},
                         "review": ["driver", "firmware"], "wait_days": {"feature": 14}, "emergency_second_approver": true},
        }),
        &["approval"],
    )];
    if let Some(org) = seed.organizations.first() {
        policies.push(demo_policy(
            format!("{} patch nights", org.name),
            "organization",
            Some(org.id.to_string()),
            0,
            serde_json::json!({
                "maintenance_windows": [window("2026-01-13T22:00", "FREQ=MONTHLY;BYDAY=2TU", "PT4H")],
                "max_concurrent": 10,
            }),
            &[],
        ));
    }
    if let Some(org) = seed.organizations.get(1) {
        // A client's year-end close: nothing is deployed there from 28 December to 4 January.
        let year = engine.now().strftime("%Y").to_string();
        let next: i32 = year.parse::<i32>().unwrap_or(2026) + 1;
        policies.push(demo_policy(
            format!("{} year-end close", org.name),
            "organization",
            Some(org.id.to_string()),
            0,
            serde_json::json!({"blackouts": [{"name": "year-end close", "start": format!("{year}-12-28T00:00:00Z"), "end": format!("{next}-01-04T00:00:00Z")}]}),
            &[],
        ));
    }
    if let Some(site) = seed.sites.first() {
        policies.push(demo_policy(
            format!("{} canaries", site.name),
            "site",
            Some(site.id.to_string()),
            0,
            serde_json::json!({"ring": 1}),
            &[],
        ));
    }
    let groups = engine.groups(op, None).await?;
    if let Some(g) =
        groups.iter().find(|g| g.name.as_str().to_lowercase().contains("server")).or(groups.first())
    {
        policies.push(demo_policy(
            format!("{} stay last", g.name),
            "group",
            Some(g.id.to_string()),
            10,
            serde_json::json!({
                "ring": 3,
                "reboot": "ask",
                "health_checks": [{"check": "systemd_unit", "unit": "ssh.service"}],
                // The baseline locks approval rules: this setting is shown as overridden.
                "approval": {"auto_approve": {"kev": true, "cvss_at_least": 9.5}},
            }),
            &[],
        ));
    }
    if let Some(d) = seed.devices.first() {
        policies.push(demo_policy(
            format!("{} is the internal test machine", d.hostname),
            "device",
            Some(d.id.to_string()),
            0,
            serde_json::json!({"ring": 0, "auto_rollback": true}),
            &[],
        ));
    }
    for p in &policies {
        engine.create_policy(op, p).await?;
    }
    let mut catalogs = 0;
    for d in seed.devices.iter().filter(|d| d.os.starts_with("Debian")) {
        let agent = ringfence_store::AgentIdentity {
            device_id: d.id.clone(),
            partner_id: d.partner_id.clone(),
            organization_id: d.organization_id.clone(),
            inventory_seq: 0,
        };
        engine.agent_updates(&agent, proto::AgentPendingUpdates { updates: demo_pending_updates() }).await?;
        catalogs += 1;
    }
    // The Windows devices are offered the month's cumulative update; the approval rules
    // approve it (a security update), so the schedule shows it landing ring by ring.
    for d in seed.devices.iter().filter(|d| d.os.starts_with("Windows")) {
        let agent = ringfence_store::AgentIdentity {
            device_id: d.id.clone(),
            partner_id: d.partner_id.clone(),
            organization_id: d.organization_id.clone(),
            inventory_seq: 0,
        };
        let cumulative = proto::AgentPendingUpdate {
            manager: "windows_update".into(),
            name: "Cumulative Update for Windows (KB5046617)".into(),
            installed: "".into(),
            candidate: "KB5046617".into(),
            origin: "Security Updates".into(),
            security: true,
            advisories: Vec::new(),
            cves: Vec::new(),
        };
        engine.agent_updates(&agent, proto::AgentPendingUpdates { updates: vec![cumulative] }).await?;
        catalogs += 1;
    }
    // A client exception: one organization keeps jq at its current version for a while.
    let debian_orgs: Vec<&OrganizationId> =
        seed.devices.iter().filter(|d| d.os.starts_with("Debian")).map(|d| &d.organization_id).collect();
    let expires = (engine.now() + jiff::SignedDuration::from_hours(24 * 21)).to_string();
    if let Some(org) = debian_orgs.first() {
        engine
            .create_exception(
                op,
                &proto::CreateException {
                    organization_id: org.to_string(),
                    kind: "pin".into(),
                    software: "jq".into(),
                    version_range: "=1.6-2.1+deb12u1".into(),
                    owner: "ops lead at the client".into(),
                    reason: "the billing export parses jq 1.6-2.1+deb12u1's exact output; vendor fix due this month".into(),
                    expires,
                },
            )
            .await?;
    }
    let rule_approvals = engine.run_approval_rules(op).await?.len();
    // A person's deferral, partner-wide.
    let until = (engine.now() + jiff::SignedDuration::from_hours(24 * 7)).to_string();
    let queue = engine.remediation_queue(op, &proto::QueueQuery::default()).await?;
    if let Some(item) = queue.iter().find(|i| i.product == "unzip" && i.version.is_some()) {
        decide_partner_wide(engine, op, item, "defer", "wait for the clients' month-end close", Some(until))
            .await?;
    }
    // A technician approves the month's Windows cumulative update for every client: the
    // schedule then shows it landing ring by ring in each device's windows.
    if let Some(item) = queue.iter().find(|i| i.product.starts_with("Cumulative Update for Windows")) {
        let reason = "Patch Tuesday cumulative update; passed the lab machines";
        decide_partner_wide(engine, op, item, "approve", reason, None).await?;
    }
    Ok(DemoRemediation { policies: policies.len(), catalogs, rule_approvals })
}

/// What `seed_rollouts` put in place.
pub struct DemoRollouts {
    pub deployments: usize,
    pub halted: Vec<String>,
}

/// Deployments as agents would have reported them: the Windows cumulative update in
/// progress (internal and canary rings verified, the general ring installing, the critical
/// ring waiting), and a Debian xz-utils update whose postinst failed on both canaries, so the
/// canary gate halted it for every client. Every move goes through the store's transitions,
/// so the evidence log holds each one.
pub async fn seed_rollouts(engine: &Engine, seed: &DemoSeed) -> Result<DemoRollouts> {
    use ringfence_store::DeployedPackage;
    let op = &seed.operator;
    let store = engine.store();
    let scope = op.scope();
    let now = engine.now();
    let (secret, _) = engine.job_key().await?;
    let queue = engine.remediation_queue(op, &proto::QueueQuery::default()).await?;
    if let Some(item) = queue.iter().find(|i| i.product == "xz-utils" && i.version.is_some()) {
        decide_partner_wide(engine, op, item, "approve", "fixes the xz archive truncation bug", None).await?;
    }
    let hours = jiff::SignedDuration::from_hours;
    // (device, ring, packages, window start, the moves after `scheduled`, the agent's log)
    type Plan<'a> = (&'a Device, u8, Vec<DeployedPackage>, Timestamp, &'static [&'static str], String);
    let mut plans: Vec<Plan> = Vec::new();
    let windows: Vec<&Device> = seed.devices.iter().filter(|d| d.os.starts_with("Windows")).collect();
    let kb = || DeployedPackage {
        product: "Cumulative Update for Windows (KB5046617)".into(),
        version: "KB5046617".into(),
        manager: "windows_update".into(),
        name: "Cumulative Update for Windows (KB5046617)".into(),
        from_version: String::new(),
        to_version: "KB5046617".into(),
    };
    for (i, d) in windows.iter().enumerate() {
        let (ring, start, path, log): (u8, Timestamp, &'static [&'static str], &str) = match i % 5 {
            0 => (
                0,
                now - hours(72),
                &["dispatched", "running", "rebooting", "installed", "verified"],
                "Searching for updates: KB5046617 found\nDownloading 1 update (612 MB)\nInstalling KB5046617: Result 2 (Succeeded), RebootRequired True\nRebooting inside the window\nAfter reboot: KB5046617 installed; health checks passed\n",
            ),
            1 | 2 => (
                1,
                now - hours(40),
                &["dispatched", "running", "rebooting", "installed", "verified"],
                "Installing KB5046617: Result 2 (Succeeded), RebootRequired True\nRebooting inside the window\nAfter reboot: KB5046617 installed; health checks passed\n",
            ),
            3 => (
                2,
                now - hours(1),
                &["dispatched", "running"],
                "Downloading 1 update (612 MB)\nInstalling KB5046617 …\n",
            ),
            _ => (2, now + hours(20), &[], ""),
        };
        plans.push((d, ring, vec![kb()], start, path, log.to_string()));
    }
    let debian: Vec<&Device> = seed.devices.iter().filter(|d| d.os.starts_with("Debian")).collect();
    let xz = || {
        ["xz-utils", "liblzma5"]
            .iter()
            .map(|name| DeployedPackage {
                product: "xz-utils".into(),
                version: "5.4.1-1+deb12u1".into(),
                manager: "dpkg".into(),
                name: name.to_string(),
                from_version: "5.4.1-1".into(),
                to_version: "5.4.1-1+deb12u1".into(),
            })
            .collect::<Vec<_>>()
    };
    for (i, d) in debian.iter().take(3).enumerate() {
        let (ring, path, log): (u8, &'static [&'static str], String) = if i == 0 {
            (0, &["dispatched", "running", "installed", "verified"], "Get:1 bookworm/main amd64 liblzma5 5.4.1-1+deb12u1\nSetting up liblzma5:amd64 (5.4.1-1+deb12u1) ...\nSetting up xz-utils (5.4.1-1+deb12u1) ...\nhealth: systemd unit ssh.service active\n".into())
        } else {
            (1, &["dispatched", "running", "failed"], "Setting up liblzma5:amd64 (5.4.1-1+deb12u1) ...\nSetting up xz-utils (5.4.1-1+deb12u1) ...\nupdate-alternatives: error: alternative path /usr/bin/xz doesn't exist\ndpkg: error processing package xz-utils (--configure):\n installed xz-utils package post-installation script subprocess returned error exit status 2\nErrors were encountered while processing:\n xz-utils\nE: Sub-process /usr/bin/dpkg returned an error code (1)\n".into())
        };
        plans.push((d, ring, xz(), now - hours(30 - 10 * i as i64), path, log));
    }
    let mut made = 0;
    for (d, ring, packages, start, path, log) in plans {
        // Installs under way sit in a long weekend window, so a demo left running shows them
        // under way for the day (the dispatcher fails a start that never reports back).
        let end = start + if path.last() == Some(&"running") { hours(14) } else { hours(3) };
        let moves: Vec<(&str, Timestamp)> = path.iter().map(|m| (*m, now)).collect();
        if replay_deployment(
            store.as_ref(),
            &secret,
            &scope,
            d,
            ring,
            packages,
            (start, end),
            now,
            &moves,
            &log,
        )
        .await?
        .is_some()
        {
            made += 1;
        }
    }
    // The dispatcher judges the rings: the canary gate fails for xz-utils.
    let run = engine.dispatch_partner(&seed.partner.id).await?;
    Ok(DemoRollouts { deployments: made, halted: run.halted })
}

/// Records one deployment as the dispatcher and an agent would have: created (with its signed
/// job) at `created`, then each move at its time, the last one carrying the agent's `log`.
/// Returns its id, or `None` when the device already had a deployment at work.
#[allow(clippy::too_many_arguments)]
async fn replay_deployment(
    store: &dyn ringfence_store::Store,
    secret: &str,
    scope: &Scope,
    d: &Device,
    ring: u8,
    packages: Vec<ringfence_store::DeployedPackage>,
    (start, end): (Timestamp, Timestamp),
    created: Timestamp,
    moves: &[(&str, Timestamp)],
    log: &str,
) -> Result<Option<String>> {
    use ringfence_store::{DeploymentChange, NewDeployment, NewJob};
    let id = uuid::Uuid::now_v7().to_string();
    let job = proto::jobs::Job {
        id: uuid::Uuid::now_v7().to_string(),
        idempotency_key: format!("{id}-install"),
        device_id: d.id.to_string(),
        deployment_id: Some(id.clone()),
        work: proto::jobs::JobKind::Install {
            packages: packages.iter().map(crate::deploy::job_package).collect(),
            reboot_allowed: true,
            health_checks: Vec::new(),
        },
        window_start: start,
        window_end: end,
        issued_at: start,
    };
    let signed = proto::jobs::sign(&job, secret).map_err(|e| ValueError::new("job", e))?;
    let new = NewDeployment {
        id: id.clone(),
        organization_id: d.organization_id.clone(),
        device_id: d.id.clone(),
        kind: "install".into(),
        ring,
        updates: packages,
        window_start: start,
        window_end: end,
        reboot_required: ring < 3 && d.os.starts_with("Windows"),
        previous_id: None,
        detail: format!("ring {ring}; window {} UTC", start.strftime("%Y-%m-%d %H:%M")),
        action: "deployment.scheduled".into(),
        job: Some(NewJob {
            id: job.id.clone(),
            idempotency_key: job.idempotency_key.clone(),
            kind: "install".into(),
            payload: signed.payload,
            signature: signed.signature,
        }),
    };
    let audit = ringfence_store::Audit::new(DISPATCH_ACTOR, created);
    if store.create_deployments(&audit, &scope.partner_id, &[new]).await?.is_empty() {
        return Ok(None);
    }
    let mut from = "scheduled";
    for (k, (to, at)) in moves.iter().enumerate() {
        let last = k + 1 == moves.len();
        let change = DeploymentChange {
            status: to.to_string(),
            detail: match *to {
                "failed" => Some(format!(
                    "install: {}",
                    log.lines()
                        .find(|l| l.starts_with("dpkg: error") || l.starts_with("Installation failed"))
                        .or_else(|| log.lines().find(|l| l.contains("error")))
                        .unwrap_or("the install failed")
                )),
                "verified" => {
                    Some("the device's inventory shows every version the deployment installed".into())
                }
                _ => None,
            },
            log: last.then(|| log.to_owned()),
            boot_id: None,
            evidence: serde_json::Value::Null,
            task: None,
        };
        let agent = ringfence_store::Audit::new(format!("agent:{}", d.id), *at);
        store.transition_deployment(&agent, scope, &id, &[from], &change).await?;
        from = to;
    }
    Ok(Some(id))
}

/// How far back the demo's history goes.
pub const HISTORY_DAYS: i64 = 120;

/// The clock the demo seed moves: the tenancy is created `HISTORY_DAYS` ago and the history
/// replayed week by week, so every record and evidence event carries its own time and the
/// chain stays in time order. After the seed it reads the real time again.
#[derive(Clone, Default)]
pub struct DemoClock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl DemoClock {
    pub fn clock(&self) -> crate::Clock {
        let offset = self.0.clone();
        crate::Clock::from_fn(move || {
            let us = offset.load(std::sync::atomic::Ordering::SeqCst);
            Timestamp::now()
                .checked_add(jiff::SignedDuration::from_micros(us))
                .unwrap_or_else(|_| Timestamp::now())
        })
    }

    /// Makes the clock read `at` (it keeps running from there).
    pub fn set(&self, at: Timestamp) {
        let us = at.as_microsecond() - Timestamp::now().as_microsecond();
        self.0.store(us, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn reset(&self) {
        self.0.store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A CVE the history patches, one per week and none twice (a finding is one per device,
/// CVE and product): (id, product, fixed version, severity, CVSS, in KEV, for Windows
/// devices, title).
type HistoricCve = (&'static str, &'static str, &'static str, &'static str, f64, bool, bool, &'static str);

const HISTORY_CVES: &[HistoricCve] = &[
    (
        "CVE-2024-30078",
        "Windows",
        "KB5039212",
        "high",
        8.8,
        false,
        true,
        "Windows Wi-Fi Driver remote code execution",
    ),
    (
        "CVE-2023-38545",
        "curl",
        "7.88.1-10+deb12u4",
        "critical",
        9.8,
        false,
        false,
        "curl SOCKS5 heap buffer overflow",
    ),
    (
        "CVE-2023-36884",
        "Microsoft Office",
        "16.0.16731.20316",
        "high",
        8.8,
        true,
        true,
        "Office and Windows HTML remote code execution",
    ),
    (
        "CVE-2023-4863",
        "libwebp",
        "1.2.4-0.2+deb12u1",
        "high",
        8.8,
        true,
        false,
        "libwebp heap buffer overflow",
    ),
    (
        "CVE-2024-43491",
        "Windows Servicing Stack",
        "KB5043083",
        "critical",
        9.8,
        true,
        true,
        "Windows Update servicing stack rollback of fixes",
    ),
    (
        "CVE-2024-2961",
        "glibc",
        "2.36-9+deb12u7",
        "high",
        7.3,
        false,
        false,
        "glibc iconv ISO-2022-CN-EXT out-of-bounds write",
    ),
    (
        "CVE-2024-38178",
        "Windows Scripting Engine",
        "KB5041585",
        "high",
        7.5,
        true,
        true,
        "Scripting Engine memory corruption",
    ),
    (
        "CVE-2023-48795",
        "openssh",
        "1:9.2p1-2+deb12u2",
        "medium",
        5.9,
        false,
        false,
        "SSH prefix truncation (Terrapin)",
    ),
    (
        "CVE-2024-21338",
        "Windows Kernel",
        "KB5034763",
        "high",
        7.8,
        true,
        true,
        "Windows kernel elevation of privilege",
    ),
    ("CVE-2024-4577", "php", "8.2.20-1~deb12u1", "critical", 9.8, true, false, "PHP-CGI argument injection"),
    (
        "CVE-2024-38112",
        "Windows MSHTML",
        "KB5040442",
        "high",
        7.5,
        true,
        true,
        "Windows MSHTML platform spoofing",
    ),
    ("CVE-2024-1086", "linux", "6.1.76-1", "high", 7.8, true, false, "Linux kernel nf_tables use-after-free"),
    (
        "CVE-2023-21716",
        "Microsoft Word",
        "16.0.16130.20218",
        "critical",
        9.8,
        false,
        true,
        "Word RTF remote code execution",
    ),
    (
        "CVE-2024-0727",
        "openssl",
        "3.0.13-1~deb12u1",
        "medium",
        5.5,
        false,
        false,
        "OpenSSL PKCS12 NULL dereference",
    ),
    (
        "CVE-2024-26169",
        "Windows Error Reporting",
        "KB5035845",
        "high",
        7.8,
        true,
        true,
        "Windows Error Reporting elevation of privilege",
    ),
    (
        "CVE-2024-45492",
        "expat",
        "2.5.0-1+deb12u1",
        "critical",
        9.8,
        false,
        false,
        "libexpat nextScaffoldPart integer overflow",
    ),
];

/// One step of the history, at its time.
enum Step<'a> {
    Find(&'a Device, &'static HistoricCve),
    Approve(&'static HistoricCve),
    Deploy(&'a Device, u8, &'static HistoricCve, bool),
    Checkpoint,
}

/// What `seed_history` replayed.
#[derive(Debug, Default)]
pub struct DemoHistory {
    pub weeks: usize,
    pub findings: usize,
    pub deployments: usize,
    pub checkpoints: u64,
    pub reports: usize,
}

/// Replays `HISTORY_DAYS` of patching on the demo fleet, a week at a time on the demo clock:
/// each week one CVE is found on the devices it touches, approved (by rule for KEV and
/// critical CVEs, by a technician otherwise), deployed ring by ring inside the devices'
/// windows, verified, and resolved by the next inventory; the server's checkpoints are made
/// as it goes. One week goes wrong: the canary fails and the fix reaches the fleet only
/// three weeks later, past its deadline. Ends with last month's report for every client.
pub async fn seed_history(engine: &Engine, seed: &DemoSeed, clock: &DemoClock) -> Result<DemoHistory> {
    use ringfence_store::{CveRow, KevRow, NewFinding, TimedEvent};
    let store = engine.store().clone();
    let scope = seed.operator.scope();
    let (secret, _) = engine.job_key().await?;
    let now = Timestamp::now();
    let start = now - jiff::SignedDuration::from_hours(24 * HISTORY_DAYS);
    let day = |d: f64| jiff::SignedDuration::from_secs((d * 86_400.0) as i64);
    clock.set(start);
    store
        .upsert_cves(
            &HISTORY_CVES
                .iter()
                .map(|c| CveRow {
                    id: c.0.into(),
                    status: "Analyzed".into(),
                    published: start.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
                    last_modified: start.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
                    description: c.7.into(),
                    cvss_score: Some(c.4),
                    cvss_version: Some("3.1".into()),
                    cvss_vector: None,
                    severity: Some(c.3.to_uppercase()),
                    cwes: "[]".into(),
                    configurations: "[]".into(),
                    match_keys: Vec::new(),
                })
                .collect::<Vec<_>>(),
            start,
        )
        .await?;
    let weeks = (HISTORY_DAYS / 7 - 1) as usize;
    let mut out = DemoHistory { weeks, ..Default::default() };
    // Every step of every week, put in time order before any is written, so the evidence
    // chain runs forward in time like a live server's.
    let mut steps: Vec<(Timestamp, Step)> = Vec::new();
    for w in 0..weeks {
        let c: &'static HistoricCve = &HISTORY_CVES[w % HISTORY_CVES.len()];
        let found = start + day(7.0 * w as f64 + 2.0);
        let devices: Vec<&Device> = seed
            .devices
            .iter()
            .enumerate()
            .filter(|(i, d)| d.os.starts_with("Windows") == c.6 && (i + w) % 4 != 0)
            .map(|(_, d)| d)
            .collect();
        if devices.is_empty() {
            continue;
        }
        for (k, d) in devices.iter().enumerate() {
            steps.push((found + jiff::SignedDuration::from_mins(k as i64), Step::Find(d, c)));
        }
        steps.push((found + day(0.8), Step::Approve(c)));
        // Ring by ring: the first device on day 1, the next two on day 2, the rest from day
        // 4, an hour and a half apart; in the bad week the canary fails and the rest waits three weeks
        // for a fixed package.
        let bad = w == 4;
        for (k, d) in devices.iter().enumerate() {
            let (ring, at) = match k {
                0 => (0u8, found + day(1.0)),
                1 | 2 => (1, found + day(2.0) + jiff::SignedDuration::from_mins(90 * k as i64)),
                _ => (2, found + day(4.0) + jiff::SignedDuration::from_mins(90 * k as i64)),
            };
            if bad && ring > 0 {
                if ring == 1 {
                    steps.push((at, Step::Deploy(d, ring, c, false)));
                }
                steps.push((
                    at + day(19.0) + jiff::SignedDuration::from_mins(45),
                    Step::Deploy(d, ring, c, true),
                ));
            } else {
                steps.push((at, Step::Deploy(d, ring, c, true)));
            }
        }
        steps.push((found + day(6.9), Step::Checkpoint));
    }
    // A deployment's records start half an hour before its install.
    steps.sort_by_key(|(at, step)| match step {
        Step::Deploy(..) => *at - jiff::SignedDuration::from_mins(30),
        _ => *at,
    });
    let mut kev = Vec::new();
    // Findings each device has open from the history, kept whole for every sync.
    let mut open: std::collections::HashMap<DeviceId, Vec<&'static HistoricCve>> = Default::default();
    for (at, step) in steps {
        clock.set(at);
        match step {
            Step::Find(d, c) => {
                if c.5 && !kev.iter().any(|k: &KevRow| k.cve_id == c.0) {
                    kev.push(KevRow {
                        cve_id: c.0.into(),
                        vendor: c.1.into(),
                        product: c.1.into(),
                        name: c.7.into(),
                        date_added: at.strftime("%Y-%m-%d").to_string(),
                        due_date: (at + day(21.0)).strftime("%Y-%m-%d").to_string(),
                        ransomware: false,
                        required_action:
                            "Apply mitigations per vendor instructions or discontinue use of the product."
                                .into(),
                        notes: String::new(),
                    });
                    store.upsert_kev(&kev).await?;
                }
                let list = open.entry(d.id.clone()).or_default();
                list.push(c);
                let new: Vec<NewFinding> = list.iter().map(|c| historic_finding(c)).collect();
                store.sync_findings(&scope, &d.id, &new, &[], at).await?;
                out.findings += 1;
            }
            Step::Approve(c) => {
                // By rule when KEV or critical, by a technician otherwise.
                let (actor, rule) = if c.5 || c.3 == "critical" {
                    ("system:approval-rules".to_owned(), Some("kev-or-critical"))
                } else {
                    let tech = seed.logins.iter().find(|l| l.role == Role::Technician);
                    (format!("user:{}", tech.map_or("tech", |l| l.username.as_str())), None)
                };
                let id = uuid::Uuid::now_v7().to_string();
                let event = TimedEvent {
                    at,
                    actor: actor.clone(),
                    action: "approval.approved".into(),
                    object_kind: "approval",
                    object_id: id.clone(),
                    organization_id: None,
                    payload: serde_json::json!({ "after": {
                        "id": id, "organization_id": null, "product": c.1, "version": c.2,
                        "decision": "approved", "decided_by": actor, "rule": rule,
                        "reason": format!("{}: {}", c.0, c.7), "created_at": at,
                    }}),
                };
                store.import_events(&seed.partner.id, &[event]).await?;
            }
            Step::Deploy(d, ring, c, succeeds) => {
                deploy_historic(engine, seed, &secret, &mut open, clock, d, ring, c, at, succeeds).await?;
                out.deployments += 1;
            }
            Step::Checkpoint => out.checkpoints += engine.checkpoint_chains().await?,
        }
    }
    // Last month's report for every client, made on the 1st as a schedule would.
    let first = now.to_zoned(jiff::tz::TimeZone::UTC).date().first_of_month();
    if let Ok(z) = first.at(6, 0, 0, 0).to_zoned(jiff::tz::TimeZone::UTC)
        && z.timestamp() < now
    {
        clock.set(z.timestamp());
        for org in &seed.organizations {
            let req = proto::ReportRequest {
                organization_id: org.id.to_string(),
                period: Some("last_month".into()),
                ..Default::default()
            };
            engine.generate_report(&seed.operator, &req).await?;
            out.reports += 1;
        }
    }
    clock.reset();
    out.checkpoints += engine.checkpoint_chains().await?;
    Ok(out)
}

/// A history finding: recorded against the operating system, so the next inventory that no
/// longer shows it resolves it as updated.
fn historic_finding(c: &HistoricCve) -> ringfence_store::NewFinding {
    ringfence_store::NewFinding {
        cve_id: c.0.into(),
        product: c.1.into(),
        kind: "os".into(),
        items: vec![c.1.into()],
        installed_version: "before the fix".into(),
        fixed_version: Some(c.2.into()),
        source: if c.6 { "windows".into() } else { "debian".into() },
        rule: "demo history".into(),
    }
}

/// One history deployment of `c` on `d` at `at`: verified and followed by the inventory
/// that resolves the finding, or failed.
#[allow(clippy::too_many_arguments)]
async fn deploy_historic(
    engine: &Engine,
    seed: &DemoSeed,
    secret: &str,
    open: &mut std::collections::HashMap<DeviceId, Vec<&'static HistoricCve>>,
    clock: &DemoClock,
    d: &Device,
    ring: u8,
    c: &'static HistoricCve,
    at: Timestamp,
    succeeds: bool,
) -> Result<()> {
    let store = engine.store();
    let scope = seed.operator.scope();
    let min = jiff::SignedDuration::from_mins;
    let package = ringfence_store::DeployedPackage {
        product: c.1.into(),
        version: c.2.into(),
        manager: if c.6 { "windows_update".into() } else { "apt".into() },
        name: c.1.to_lowercase().replace(' ', "-"),
        from_version: String::new(),
        to_version: c.2.into(),
    };
    let (moves, log) = if succeeds {
        (
            vec![
                ("dispatched", at - min(20)),
                ("running", at),
                ("installed", at + min(20)),
                ("verified", at + min(40)),
            ],
            format!("Installing {} {}\nSucceeded\nhealth checks passed\n", c.1, c.2),
        )
    } else {
        (
            vec![("dispatched", at - min(20)), ("running", at), ("failed", at + min(15))],
            if c.6 {
                // As Windows Update reports a servicing-stack failure (and the agent's log
                // carries it): the install rolls itself back at the reboot.
                format!(
                    "Installing {} ({})\nWindows Update: download 100%, install 100%\nInstallation failed: 0x800f0922 \
                     (CBS_E_INSTALLERS_FAILED: the servicing stack could not finish; changes undone at restart)\n",
                    c.1, c.2
                )
            } else {
                format!(
                    "Installing {} {}\ndpkg: error processing package {} (--configure)\n",
                    c.1, c.2, package.name
                )
            },
        )
    };
    clock.set(at - min(30));
    let Some(id) = replay_deployment(
        store.as_ref(),
        secret,
        &scope,
        d,
        ring,
        vec![package],
        (at - min(25), at + min(165)),
        at - min(30),
        &moves,
        &log,
    )
    .await?
    else {
        return Ok(());
    };
    if succeeds {
        // The next inventory no longer shows it.
        let seen = at + min(45);
        clock.set(seen);
        let list = open.entry(d.id.clone()).or_default();
        list.retain(|x| x.0 != c.0);
        let new: Vec<_> = list.iter().map(|c| historic_finding(c)).collect();
        store.sync_findings(&scope, &d.id, &new, &[], seen).await?;
        store.attribute_findings(&scope, &d.id, &id, &[c.1.to_string()], at - min(30)).await?;
    }
    Ok(())
}

/// What the demo's network appliances are.
pub struct DemoAppliances {
    pub appliances: usize,
    pub unidentified: usize,
}

/// The clients' firewalls, switches and NAS, reported by hand (the demo has no SNMP agents
/// to poll): the same FortiOS 7.0.11 at every client, a PAN-OS and an IOS XE in the KEV
/// catalog, a current Synology, and a device the table does not know.
pub async fn seed_appliances(engine: &Engine, seed: &DemoSeed) -> Result<DemoAppliances> {
    const SET: &[(usize, &str, &str, &str, &str)] = &[
        (0, "fw-hartley", "Fortinet", "FortiGate 100F", "7.0.11"),
        (0, "core-sw-hartley", "Cisco", "Catalyst 9300-48P", "17.9.4"),
        (1, "fw-clinic", "Fortinet", "FortiGate 60F", "7.0.11"),
        (1, "pa-clinic", "Palo Alto Networks", "PA-3220", "10.2.9"),
        (1, "nas-clinic", "Synology", "DS920+", "7.2.1-69057"),
        (2, "fw-northwind", "Fortinet", "FortiGate 100F", "7.0.11"),
        (2, "intercom-gw", "ACME", "NetBox 3000", "2.4.1"),
    ];
    let mut out = DemoAppliances { appliances: 0, unidentified: 0 };
    for (org, name, vendor, model, firmware) in SET {
        let Some(o) = seed.organizations.get(*org) else { continue };
        let Some(site) = seed.sites.iter().find(|s| s.organization_id == o.id) else { continue };
        let a = engine
            .add_appliance(
                &seed.operator,
                &ringfence_proto::appliances::CreateAppliance {
                    site_id: site.id.to_string(),
                    name: name.to_string(),
                    source: "manual".into(),
                    vendor: Some(vendor.to_string()),
                    model: Some(model.to_string()),
                    firmware: Some(firmware.to_string()),
                    ..Default::default()
                },
            )
            .await?;
        out.appliances += 1;
        if !a.identity.identified {
            out.unidentified += 1;
        }
    }
    Ok(out)
}
