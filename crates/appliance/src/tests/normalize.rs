use crate::normalize::{Normalize, Update};

#[track_caller]
fn check(n: Normalize, input: &str, display: &str, version: &str, update: Update) {
    let got = n.apply(input).unwrap_or_else(|| panic!("{n:?} finds no version in {input:?}"));
    assert_eq!(
        (got.display.as_str(), got.version.as_str(), &got.update),
        (display, version, &update),
        "{input:?}"
    );
}

#[test]
fn versions_become_nvd_versions() {
    use Normalize::*;
    let text = |s: &str| Update::Text(s.into());
    check(Dotted, "FortiGate-100F v7.0.11,build0489,230314 (GA.F)", "7.0.11", "7.0.11", Update::Any);
    check(Dotted, "v7.0.11,build0489,230314 (GA.F)", "7.0.11", "7.0.11", Update::Any);
    check(PanOs, "10.2.9-h1", "10.2.9-h1", "10.2.9", text("h1"));
    check(PanOs, "10.2.9", "10.2.9", "10.2.9", Update::Na);
    check(PanOs, "11.1.2-H3", "11.1.2-h3", "11.1.2", text("h3"));
    check(CiscoIosXe, "17.09.04a", "17.9.4a", "17.9.4a", Update::Any);
    check(CiscoIosXe, "17.9.4a", "17.9.4a", "17.9.4a", Update::Any);
    check(CiscoIosXe, "17.09.04", "17.9.4", "17.9.4", Update::Any);
    check(CiscoIosXe, "16.12.10a", "16.12.10a", "16.12.10a", Update::Any);
    check(CiscoIosXe, "03.11.03.E", "3.11.3e", "3.11.3e", Update::Any);
    check(CiscoIosXe, "17.10.01", "17.10.1", "17.10.1", Update::Any);
    check(CiscoAsa, "9.16(4)19", "9.16.4.19", "9.16.4.19", Update::Any);
    check(CiscoAsa, "9.18(3)", "9.18.3", "9.18.3", Update::Any);
    check(CiscoIos, "15.2(7)E4", "15.2(7)E4", "15.2(7)e4", Update::Any);
    check(Ivanti, "22.7R2.3", "22.7R2.3", "22.7", text("r2.3"));
    check(Ivanti, "9.1R18 (build 16215)", "9.1R18", "9.1", text("r18"));
    check(Ivanti, "22.6", "22.6", "22.6", Update::Na);
    check(Sonicos, "7.0.1-5035-R2007", "7.0.1-5035", "7.0.1-5035", Update::Any);
    check(Sonicos, "6.5.4.4-44n", "6.5.4.4-44n", "6.5.4.4-44n", Update::Any);
    check(Sonicos, "6.5.4.15.116n", "6.5.4.15.116n", "6.5.4.15.116n", Update::Any);
    check(Sonicos, "5.9.2.14-13o", "5.9.2.14-13o", "5.9.2.14-13o", Update::Any);
    check(Netscaler, "NS13.1: Build 49.13.nc", "13.1-49.13", "13.1-49.13", Update::Any);
    check(Netscaler, "13.1-49.13", "13.1-49.13", "13.1-49.13", Update::Any);
    check(Netscaler, "14.1 build 8.50", "14.1-8.50", "14.1-8.50", Update::Any);
    check(Edgeos, "v2.0.9-hotfix.7.5622731.230615.0857", "2.0.9-hotfix.7", "2.0.9-hotfix.7", Update::Any);
    check(Edgeos, "2.0.9", "2.0.9", "2.0.9", Update::Any);
    check(AosCx, "FL.10.10.1010", "10.10.1010", "10.10.1010", Update::Any);
    check(AosCx, "10.13.1000", "10.13.1000", "10.13.1000", Update::Any);
    check(Synology, "DSM 7.2.1-69057 Update 5", "7.2.1-69057", "7.2.1-69057", Update::Any);
}

#[test]
fn text_without_a_version_is_none() {
    for n in
        [Normalize::Dotted, Normalize::PanOs, Normalize::CiscoAsa, Normalize::Ivanti, Normalize::Netscaler]
    {
        assert_eq!(n.apply("FortiGate-100F"), None, "{n:?}");
        assert_eq!(n.apply(""), None, "{n:?}");
    }
}
