use crate::identify_manual;

/// (vendor, model, firmware) → (rule, model, firmware, os_cpe, hardware_cpe)
#[track_caller]
fn check(input: (&str, &str, &str), expect: (&str, Option<&str>, Option<&str>, Option<&str>, Option<&str>)) {
    let got =
        identify_manual(input.0, input.1, input.2).unwrap_or_else(|| panic!("{input:?} is not identified"));
    assert_eq!(
        (
            got.rule.as_str(),
            got.model.as_deref(),
            got.firmware.as_deref(),
            got.os_cpe.as_deref(),
            got.hardware_cpe.as_deref()
        ),
        expect,
        "{input:?}"
    );
    assert_eq!(got.serial, None);
}

#[test]
fn manual_reports_are_identified_by_vendor_and_hints() {
    check(
        ("Fortinet", "FortiGate 100F", "v7.0.11,build0489,230314 (GA.F)"),
        (
            "table: fortinet-fortigate (manual)",
            Some("FortiGate 100F"),
            Some("7.0.11"),
            Some("cpe:2.3:o:fortinet:fortios:7.0.11:*:*:*:*:*:*:*"),
            Some("cpe:2.3:h:fortinet:fortigate-100f:-:*:*:*:*:*:*:*"),
        ),
    );
    check(
        ("fortigate", "FG-60F", "7.2.8"),
        (
            "table: fortinet-fortigate (manual)",
            Some("FortiGate 60F"),
            Some("7.2.8"),
            Some("cpe:2.3:o:fortinet:fortios:7.2.8:*:*:*:*:*:*:*"),
            Some("cpe:2.3:h:fortinet:fortigate-60f:-:*:*:*:*:*:*:*"),
        ),
    );
    check(
        ("Palo Alto Networks, Inc.", "PA-3220", "10.2.9-h1"),
        (
            "table: paloalto-panos (manual)",
            Some("PA-3220"),
            Some("10.2.9-h1"),
            Some("cpe:2.3:o:paloaltonetworks:pan-os:10.2.9:h1:*:*:*:*:*:*"),
            Some("cpe:2.3:h:paloaltonetworks:pa-3220:-:*:*:*:*:*:*:*"),
        ),
    );
    check(
        ("Cisco", "C9300-48P", "17.09.04a"),
        (
            "table: cisco-ios-xe (manual)",
            Some("Catalyst 9300-48P"),
            Some("17.9.4a"),
            Some("cpe:2.3:o:cisco:ios_xe:17.9.4a:*:*:*:*:*:*:*"),
            Some("cpe:2.3:h:cisco:catalyst_9300-48p:-:*:*:*:*:*:*:*"),
        ),
    );
    check(
        ("Cisco Systems", "ASA 5516-X", "9.16(4)19"),
        (
            "table: cisco-asa (manual)",
            Some("ASA 5516-X"),
            Some("9.16.4.19"),
            Some("cpe:2.3:a:cisco:adaptive_security_appliance_software:9.16.4.19:*:*:*:*:*:*:*"),
            Some("cpe:2.3:h:cisco:asa_5516-x:-:*:*:*:*:*:*:*"),
        ),
    );
    // The firmware alone tells IOS XE from classic IOS.
    check(
        ("Cisco", "Catalyst 3850", "16.12.10a"),
        (
            "table: cisco-ios-xe (manual)",
            Some("Catalyst 3850"),
            Some("16.12.10a"),
            Some("cpe:2.3:o:cisco:ios_xe:16.12.10a:*:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("Cisco", "Catalyst 2960X", "15.2(7)E4"),
        (
            "table: cisco-ios (manual)",
            Some("Catalyst 2960X"),
            Some("15.2(7)E4"),
            Some("cpe:2.3:o:cisco:ios:15.2\\(7\\)e4:*:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("Ivanti", "PSA-3000", "22.7R2.3"),
        (
            "table: ivanti-connect-secure (manual)",
            Some("PSA-3000"),
            Some("22.7R2.3"),
            Some("cpe:2.3:a:ivanti:connect_secure:22.7:r2.3:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("Citrix", "NetScaler Gateway VPX", "14.1-8.50"),
        (
            "table: citrix-netscaler-gateway (manual)",
            Some("NetScaler Gateway VPX"),
            Some("14.1-8.50"),
            Some("cpe:2.3:a:citrix:netscaler_gateway:14.1-8.50:*:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("Citrix", "MPX 8900", "13.1 build 49.13"),
        (
            "table: citrix-netscaler-adc (manual)",
            Some("MPX 8900"),
            Some("13.1-49.13"),
            Some("cpe:2.3:a:citrix:netscaler_application_delivery_controller:13.1-49.13:*:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("SonicWall", "TZ 370", "7.0.1-5035"),
        (
            "table: sonicwall-sonicos (manual)",
            Some("TZ 370"),
            Some("7.0.1-5035"),
            Some("cpe:2.3:o:sonicwall:sonicos:7.0.1-5035:*:*:*:*:*:*:*"),
            Some("cpe:2.3:h:sonicwall:tz370:-:*:*:*:*:*:*:*"),
        ),
    );
    check(
        ("Ubiquiti", "EdgeRouter X", "v2.0.9-hotfix.7"),
        (
            "table: ubiquiti-edgeos (manual)",
            Some("EdgeRouter X"),
            Some("2.0.9-hotfix.7"),
            Some("cpe:2.3:o:ui:edgeos:2.0.9-hotfix.7:*:*:*:*:*:*:*"),
            Some("cpe:2.3:h:ui:edgerouter_x:-:*:*:*:*:*:*:*"),
        ),
    );
    check(
        ("MikroTik", "RB4011iGS+RM", "7.14.2 (stable)"),
        (
            "table: mikrotik-routeros (manual)",
            Some("RB4011iGS+RM"),
            Some("7.14.2"),
            Some("cpe:2.3:o:mikrotik:routeros:7.14.2:*:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("HPE Aruba Networking", "CX 6300M", "FL.10.13.1000"),
        (
            "table: aruba-aoscx (manual)",
            Some("CX 6300M"),
            Some("10.13.1000"),
            Some("cpe:2.3:o:arubanetworks:arubaos-cx:10.13.1000:*:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("Aruba", "7210", "8.10.0.7"),
        (
            "table: aruba-arubaos (manual)",
            Some("7210"),
            Some("8.10.0.7"),
            Some("cpe:2.3:o:arubanetworks:arubaos:8.10.0.7:*:*:*:*:*:*:*"),
            None,
        ),
    );
    check(
        ("Synology", "DS920+", "DSM 7.2.1-69057 Update 5"),
        (
            "table: synology-dsm (manual)",
            Some("DS920+"),
            Some("7.2.1-69057"),
            Some("cpe:2.3:a:synology:diskstation_manager:7.2.1-69057:*:*:*:*:*:*:*"),
            None,
        ),
    );
}

#[test]
fn unknown_vendors_and_unclear_reports_are_none() {
    assert_eq!(identify_manual("ACME", "NetBox 3000", "2.4.1"), None);
    assert_eq!(identify_manual("", "", ""), None);
    assert_eq!(identify_manual("  ,. ", "x", "1.0"), None);
    // Ubiquiti makes several product lines; without a hint which one, no guess.
    assert_eq!(identify_manual("Ubiquiti", "Dream Machine", "4.0.6"), None);
}

#[test]
fn an_unreadable_firmware_leaves_the_firmware_cpe_out() {
    let got = identify_manual("Fortinet", "FortiGate 100F", "latest").unwrap();
    assert_eq!((got.firmware, got.os_cpe), (None, None));
    assert!(got.hardware_cpe.is_some());
}
