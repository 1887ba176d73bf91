use super::{chassis, obs};
use crate::{EntityRow, Identification, Mapping, Observation, VersionSource, identify};

fn fortigate_100f() -> Observation {
    Observation {
        sys_descr: "FortiGate-100F".into(),
        sys_object_id: "1.3.6.1.4.1.12356.101.1.1041".into(),
        sys_name: "fw-hq".into(),
        entities: vec![EntityRow {
            index: 1,
            class: Some(3),
            descr: "FortiGate-100F".into(),
            model_name: "FGT_100F".into(),
            software_rev: "FortiGate-100F v7.0.11,build0489,230314 (GA.F)".into(),
            serial: "FG100FTK22000001".into(),
            ..Default::default()
        }],
    }
}

fn pa_3220() -> Observation {
    Observation {
        sys_descr: "Palo Alto Networks PA-3200 series firewall".into(),
        sys_object_id: "1.3.6.1.4.1.25461.2.3.38".into(),
        sys_name: "pa-edge".into(),
        entities: vec![EntityRow {
            index: 1,
            class: Some(3),
            descr: "Palo Alto Networks PA-3200 series firewall".into(),
            model_name: "PA-3220".into(),
            software_rev: "10.2.9".into(),
            serial: "013201001234".into(),
            ..Default::default()
        }],
    }
}

fn catalyst_9300() -> Observation {
    Observation {
        sys_descr: "Cisco IOS Software [Cupertino], Catalyst L3 Switch Software (CAT9K_IOSXE), Version 17.9.4, RELEASE SOFTWARE (fc5)\r\nTechnical Support: http://www.cisco.com/techsupport\r\nCopyright (c) 1986-2023 by Cisco Systems, Inc.\r\nCompiled Wed 26-Jul-23 10:17 by mcpre".into(),
        sys_object_id: "1.3.6.1.4.1.9.1.2494".into(),
        sys_name: "core-sw1".into(),
        entities: vec![EntityRow {
            index: 1,
            class: Some(3),
            descr: "c93xx Stack".into(),
            model_name: "C9300-48P".into(),
            software_rev: "17.09.04".into(),
            serial: "FOC2233X0AB".into(),
            ..Default::default()
        }],
    }
}

fn unknown() -> Observation {
    Observation {
        sys_descr: "ACME NetBox 3000 firmware 2.4.1".into(),
        sys_object_id: "1.3.6.1.4.1.99999.1.1".into(),
        sys_name: "mystery".into(),
        entities: vec![],
    }
}

pub(crate) fn acme_mapping() -> Mapping {
    Mapping {
        id: "acme-netbox".into(),
        sys_object_id_prefix: Some("1.3.6.1.4.1.99999".into()),
        descr_contains: None,
        vendor: "ACME".into(),
        product: "NetBox OS".into(),
        model: None,
        cpe_vendor: "acme".into(),
        cpe_product: "netbox_os".into(),
        cpe_part: "o".into(),
        hardware_cpe_product: None,
        version: VersionSource::DescrRegex { pattern: "firmware ([0-9.]+)".into() },
    }
}

#[allow(clippy::too_many_arguments)]
fn ident(
    vendor: &str,
    product: &str,
    model: Option<&str>,
    firmware: Option<&str>,
    serial: Option<&str>,
    os_cpe: Option<&str>,
    hardware_cpe: Option<&str>,
    rule: &str,
) -> Identification {
    let s = |v: Option<&str>| v.map(str::to_owned);
    Identification {
        vendor: vendor.into(),
        product: product.into(),
        model: s(model),
        firmware: s(firmware),
        serial: s(serial),
        os_cpe: s(os_cpe),
        hardware_cpe: s(hardware_cpe),
        rule: rule.into(),
    }
}

#[test]
fn reference_fortigate_100f() {
    assert_eq!(
        identify(&fortigate_100f(), &[]),
        Some(ident(
            "Fortinet",
            "FortiOS",
            Some("FortiGate 100F"),
            Some("7.0.11"),
            Some("FG100FTK22000001"),
            Some("cpe:2.3:o:fortinet:fortios:7.0.11:*:*:*:*:*:*:*"),
            Some("cpe:2.3:h:fortinet:fortigate-100f:-:*:*:*:*:*:*:*"),
            "table: fortinet-fortigate",
        ))
    );
}

#[test]
fn reference_pa_3220() {
    assert_eq!(
        identify(&pa_3220(), &[]),
        Some(ident(
            "Palo Alto Networks",
            "PAN-OS",
            Some("PA-3220"),
            Some("10.2.9"),
            Some("013201001234"),
            Some("cpe:2.3:o:paloaltonetworks:pan-os:10.2.9:-:*:*:*:*:*:*"),
            Some("cpe:2.3:h:paloaltonetworks:pa-3220:-:*:*:*:*:*:*:*"),
            "table: paloalto-panos",
        ))
    );
}

#[test]
fn reference_catalyst_9300() {
    assert_eq!(
        identify(&catalyst_9300(), &[]),
        Some(ident(
            "Cisco",
            "IOS XE",
            Some("Catalyst 9300-48P"),
            Some("17.9.4"),
            Some("FOC2233X0AB"),
            Some("cpe:2.3:o:cisco:ios_xe:17.9.4:*:*:*:*:*:*:*"),
            Some("cpe:2.3:h:cisco:catalyst_9300-48p:-:*:*:*:*:*:*:*"),
            "table: cisco-ios-xe",
        ))
    );
}

#[test]
fn reference_unknown_is_unidentified_until_mapped() {
    assert_eq!(identify(&unknown(), &[]), None);
    assert_eq!(
        identify(&unknown(), &[acme_mapping()]),
        Some(ident(
            "ACME",
            "NetBox OS",
            None,
            Some("2.4.1"),
            None,
            Some("cpe:2.3:o:acme:netbox_os:2.4.1:*:*:*:*:*:*:*"),
            None,
            "mapping: acme-netbox",
        ))
    );
}

#[test]
fn pan_os_hotfix_goes_to_the_update_attribute() {
    let mut o = pa_3220();
    o.entities[0].software_rev = "10.2.9-h1".into();
    let got = identify(&o, &[]).unwrap();
    assert_eq!(got.firmware.as_deref(), Some("10.2.9-h1"));
    assert_eq!(got.os_cpe.as_deref(), Some("cpe:2.3:o:paloaltonetworks:pan-os:10.2.9:h1:*:*:*:*:*:*"));
}

/// (sysDescr, sysObjectID, chassis model, chassis software) →
/// (rule, model, firmware, os_cpe, hardware_cpe)
#[track_caller]
fn check(
    (descr, oid, entity): (&str, &str, Option<(&str, &str)>),
    expect: (&str, Option<&str>, Option<&str>, Option<&str>, Option<&str>),
) {
    let o = obs(descr, oid, entity.map(|(m, s)| chassis(m, s)));
    let got = identify(&o, &[]).unwrap_or_else(|| panic!("{descr:?} is not identified"));
    assert_eq!(
        (
            got.rule.as_str(),
            got.model.as_deref(),
            got.firmware.as_deref(),
            got.os_cpe.as_deref(),
            got.hardware_cpe.as_deref()
        ),
        expect,
        "{descr:?}"
    );
}

#[test]
fn every_table_entry_identifies_a_realistic_observation() {
    check(
        (
            "FortiWiFi-60F",
            "1.3.6.1.4.1.12356.101.1.60",
            Some(("FWF_60F", "FortiWiFi-60F v7.2.8,build1639,240313 (GA.M)")),
        ),
        (
            "table: fortinet-fortigate",
            Some("FortiWiFi 60F"),
            Some("7.2.8"),
            Some("cpe:2.3:o:fortinet:fortios:7.2.8:*:*:*:*:*:*:*"),
            Some("cpe:2.3:h:fortinet:fortiwifi-60f:-:*:*:*:*:*:*:*"),
        ),
    );
    check(
        ("SonicWALL NSA 2650 (SonicOS Enhanced 6.5.4.4-44n)", "1.3.6.1.4.1.8741.1", None),
        (
            "table: sonicwall-sonicos",
            Some("NSA 2650"),
            Some("6.5.4.4-44n"),
            Some("cpe:2.3:o:sonicwall:sonicos:6.5.4.4-44n:*:*:*:*:*:*:*"),
            Some("cpe:2.3:h:sonicwall:nsa_2650:-:*:*:*:*:*:*:*"),
        ),
    );
    check(
        ("SonicWall TZ 370 (SonicOS 7.0.1-5035-R2007)", "1.3.6.1.4.1.8741.1", None),
        (
            "table: sonicwall-sonicos",
            Some("TZ 370"),
            Some("7.0.1-5035"),
            Some("cpe:2.3:o:sonicwall:sonicos:7.0.1-5035:*:*:*:*:*:*:*"),
            Some("cpe:2.3:h:sonicwall:tz370:-:*:*:*:*:*:*:*"),
        ),
    );
    check(
        (
            "Cisco IOS Software [Dublin], ISR Software (X86_64_LINUX_IOSD-UNIVERSALK9-M), Version 17.12.2, RELEASE SOFTWARE (fc2)",
            "1.3.6.1.4.1.9.1.2068",
            Some(("ISR4331/K9", "17.12.02")),
        ),
        (
            "table: cisco-ios-xe",
            Some("ISR 4331"),
            Some("17.12.2"),
            Some("cpe:2.3:o:cisco:ios_xe:17.12.2:*:*:*:*:*:*:*"),
            Some("cpe:2.3:h:cisco:4331_integrated_services_router:-:*:*:*:*:*:*:*"),
        ),
    );
    check(
        (
            "Cisco Adaptive Security Appliance Version 9.16(4)19",
            "1.3.6.1.4.1.9.1.2313",
            Some(("ASA5516", "9.16(4)19")),
        ),
        (
            "table: cisco-asa",
            Some("ASA 5516"),
            Some("9.16.4.19"),
            Some("cpe:2.3:a:cisco:adaptive_security_appliance_software:9.16.4.19:*:*:*:*:*:*:*"),
            Some("cpe:2.3:h:cisco:asa_5516:-:*:*:*:*:*:*:*"),
        ),
    );
    check(
        (
            "Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version 15.2(7)E4, RELEASE SOFTWARE (fc2)",
            "1.3.6.1.4.1.9.1.1208",
            Some(("WS-C2960X-48FPD-L", "15.2(7)E4")),
        ),
        (
            "table: cisco-ios",
            Some("WS-C2960X-48FPD-L"),
            Some("15.2(7)E4"),
            Some("cpe:2.3:o:cisco:ios:15.2\\(7\\)e4:*:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("Ivanti Connect Secure,ISA-6000,22.7R2.3 (build 1695)", "1.3.6.1.4.1.12532.254.1.1", None),
        (
            "table: ivanti-connect-secure",
            Some("ISA-6000"),
            Some("22.7R2.3"),
            Some("cpe:2.3:a:ivanti:connect_secure:22.7:r2.3:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("Pulse Secure,LLC,PSA-3000,9.1R18 (build 24467)", "1.3.6.1.4.1.12532.254.1.1", None),
        (
            "table: ivanti-connect-secure",
            Some("PSA-3000"),
            Some("9.1R18"),
            Some("cpe:2.3:a:ivanti:connect_secure:9.1:r18:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("Ivanti Policy Secure,PSA-5000,22.7R1.2 (build 1485)", "1.3.6.1.4.1.12532.254.1.1", None),
        (
            "table: ivanti-policy-secure",
            Some("PSA-5000"),
            Some("22.7R1.2"),
            Some("cpe:2.3:a:ivanti:policy_secure:22.7:r1.2:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        (
            "NetScaler NS13.1: Build 49.13.nc, Date: Jul  9 2023, 16:13:20   (64-bit)",
            "1.3.6.1.4.1.5951.1",
            None,
        ),
        (
            "table: citrix-netscaler-adc",
            None,
            Some("13.1-49.13"),
            Some("cpe:2.3:a:citrix:netscaler_application_delivery_controller:13.1-49.13:*:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("EdgeOS v2.0.9-hotfix.7.5622731.230615.0857", "1.3.6.1.4.1.41112.1.5", None),
        (
            "table: ubiquiti-edgeos",
            None,
            Some("2.0.9-hotfix.7"),
            Some("cpe:2.3:o:ui:edgeos:2.0.9-hotfix.7:*:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("UAP-AC-Pro-Gen2 6.5.28.14491", "1.3.6.1.4.1.41112", None),
        (
            "table: ubiquiti-unifi-ap",
            Some("UAP-AC-Pro-Gen2"),
            Some("6.5.28"),
            Some("cpe:2.3:o:ui:unifi_access_point_firmware:6.5.28:*:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("RouterOS RB4011iGS+", "1.3.6.1.4.1.14988.1", None),
        ("table: mikrotik-routeros", Some("RB4011iGS+"), None, None, None),
    );
    check(
        ("RouterOS CCR2004-1G-12S+2XS", "1.3.6.1.4.1.14988.1", Some(("CCR2004-1G-12S+2XS", "7.14.2"))),
        (
            "table: mikrotik-routeros",
            Some("CCR2004-1G-12S+2XS"),
            Some("7.14.2"),
            Some("cpe:2.3:o:mikrotik:routeros:7.14.2:*:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("ArubaOS (MODEL: 7210), Version 8.10.0.7 (85915)", "1.3.6.1.4.1.14823.1.1.32", None),
        (
            "table: aruba-arubaos",
            Some("Aruba 7210"),
            Some("8.10.0.7"),
            Some("cpe:2.3:o:arubanetworks:arubaos:8.10.0.7:*:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("Aruba JL658A 6300M 24SFP+ 4SFP56 Swch FL.10.10.1010", "1.3.6.1.4.1.47196.4.1.1.1.302", None),
        (
            "table: aruba-aoscx",
            Some("CX 6300M"),
            Some("10.10.1010"),
            Some("cpe:2.3:o:arubanetworks:arubaos-cx:10.10.1010:*:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        (
            "Linux DiskStation 4.4.302+ #69057 SMP Fri Jan 12 17:02:59 CST 2024 x86_64",
            "1.3.6.1.4.1.8072.3.2.10",
            None,
        ),
        ("table: synology-dsm", None, None, None, None),
    );
}

#[test]
fn cisco_enterprise_nine_is_split_by_sysdescr() {
    // A Cisco device that is neither IOS XE, ASA nor IOS (a Nexus switch) stays unidentified.
    let nexus = obs(
        "Cisco NX-OS(tm) n9000, Software (n9000-dk9), Version 10.2(5), RELEASE SOFTWARE",
        "1.3.6.1.4.1.9.12.3.1.3.1812",
        None,
    );
    assert_eq!(identify(&nexus, &[]), None);
}

#[test]
fn a_plain_linux_host_is_not_a_synology() {
    let linux = obs("Linux web01 6.1.0-18-amd64 #1 SMP Debian x86_64", "1.3.6.1.4.1.8072.3.2.10", None);
    assert_eq!(identify(&linux, &[]), None);
}

#[test]
fn table_prefixes_match_on_arc_boundaries() {
    // 1.3.6.1.4.1.99 is not Cisco's 1.3.6.1.4.1.9.
    let o = obs("Cisco IOS Software, IOS-XE Software, Version 17.9.4", "1.3.6.1.4.1.99.1", None);
    assert_eq!(identify(&o, &[]), None);
    let o = obs("FortiGate-100F", "1.3.6.1.4.1.123560.101.1", None);
    assert_eq!(identify(&o, &[]), None);
}

#[test]
fn missing_version_and_model_leave_the_cpes_out() {
    let got = identify(&obs("FortiGate-VM64", "1.3.6.1.4.1.12356.101.1.30", None), &[]).unwrap();
    assert_eq!((got.model, got.firmware, got.os_cpe, got.hardware_cpe), (None, None, None, None));
    assert_eq!(got.rule, "table: fortinet-fortigate");
}

#[test]
fn the_chassis_row_wins_over_earlier_rows() {
    let mut o = catalyst_9300();
    o.entities.insert(
        0,
        EntityRow {
            index: 0,
            class: Some(9),
            model_name: "C9300-NM-8X".into(),
            software_rev: "16.12.01".into(),
            ..Default::default()
        },
    );
    let got = identify(&o, &[]).unwrap();
    assert_eq!(got.model.as_deref(), Some("Catalyst 9300-48P"));
    // Without a class, the first row that has a value is used.
    o.entities.iter_mut().for_each(|e| e.class = None);
    assert_eq!(identify(&o, &[]).unwrap().model.as_deref(), Some("Catalyst 9300-NM-8X"));
}
