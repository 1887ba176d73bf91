//! The risk score, the SSVC decision and the remediation queue.

use ringfence_policy::*;

fn cvss(version: &str, score: f64, vector: &str) -> Cvss {
    Cvss { version: version.into(), score, vector: Some(vector.into()) }
}

#[test]
fn ssvc_follows_cisas_table() {
    use Exploitation::*;
    use MissionImpact::*;
    use TechnicalImpact::*;
    // Rows of CISA's published table.
    assert_eq!(decide(None, false, Partial, High), Decision::Track);
    assert_eq!(decide(None, false, Total, High), Decision::TrackStar);
    assert_eq!(decide(None, true, Partial, High), Decision::Attend);
    assert_eq!(decide(Poc, false, Total, Medium), Decision::TrackStar);
    assert_eq!(decide(Poc, true, Total, High), Decision::Attend);
    assert_eq!(decide(Active, false, Partial, High), Decision::Attend);
    assert_eq!(decide(Active, false, Total, Medium), Decision::Attend);
    assert_eq!(decide(Active, false, Total, High), Decision::Act);
    assert_eq!(decide(Active, true, Partial, Low), Decision::Attend);
    assert_eq!(decide(Active, true, Total, Medium), Decision::Act);
    // And the tree never gets less urgent when any one input gets worse.
    let es = [None, Poc, Active];
    let ts = [Partial, Total];
    let ms = [Low, Medium, High];
    for (ei, e) in es.iter().enumerate() {
        for a in [false, true] {
            for (ti, t) in ts.iter().enumerate() {
                for (mi, m) in ms.iter().enumerate() {
                    let d = decide(*e, a, *t, *m);
                    if ei + 1 < es.len() {
                        assert!(decide(es[ei + 1], a, *t, *m) >= d);
                    }
                    if !a {
                        assert!(decide(*e, true, *t, *m) >= d);
                    }
                    if ti + 1 < ts.len() {
                        assert!(decide(*e, a, ts[ti + 1], *m) >= d);
                    }
                    if mi + 1 < ms.len() {
                        assert!(decide(*e, a, *t, ms[mi + 1]) >= d);
                    }
                }
            }
        }
    }
}

#[test]
fn a_kev_bug_on_an_exposed_critical_server_scores_high_and_says_why() {
    let v = VulnFacts {
        cvss: vec![cvss("3.1", 9.8, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")],
        epss: Some(0.94),
        kev: true,
        kev_ransomware: true,
    };
    let d = DeviceFacts {
        internet_facing: true,
        holds_sensitive_data: false,
        domain_controller: false,
        criticality: 3,
    };
    let s = score(&v, &d, 0.5);
    // 9.8 × 4 + 30 + 5 + 10 + 10 + 0.5 × 5
    assert_eq!(s.score, 96.7);
    assert_eq!(s.ssvc, Decision::Act);
    assert_eq!(s.exploitation, Exploitation::Active);
    assert!(s.automatable);
    assert_eq!(s.technical_impact, TechnicalImpact::Total);
    assert_eq!(s.mission_impact, MissionImpact::High);
    let facts: Vec<&str> = s.factors.iter().map(|f| f.fact.as_str()).collect();
    assert_eq!(
        facts,
        [
            "CVSS 3.1 9.8",
            "in CISA KEV (exploited in the wild)",
            "used in ransomware campaigns",
            "internet-facing",
            "critical criticality",
            "on 50% of the fleet"
        ]
    );
    let sum: f64 = s.factors.iter().map(|f| f.points).sum();
    assert!((sum - s.score).abs() < 0.05, "the factors add up to the score");
}

#[test]
fn cvss_4_is_preferred_and_missing_data_is_said() {
    let v = VulnFacts {
        cvss: vec![
            cvss("3.1", 5.3, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"),
            cvss("4.0", 8.7, "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"),
        ],
        epss: Some(0.5),
        ..Default::default()
    };
    let s = score(&v, &DeviceFacts::default(), 0.0);
    assert_eq!(s.factors[0].fact, "CVSS 4.0 8.7");
    assert_eq!(s.technical_impact, TechnicalImpact::Total);
    assert_eq!(s.exploitation, Exploitation::Poc, "EPSS 0.5 counts as a public exploit");
    assert_eq!(s.score, 8.7 * 4.0 + 12.5);
    assert_eq!(s.ssvc, Decision::Track, "a low-criticality, unexposed device");

    let none = score(&VulnFacts::default(), &DeviceFacts::default(), 0.0);
    assert_eq!(none.score, 20.0);
    assert!(none.factors[0].fact.contains("no CVSS"));
    assert_eq!(none.exploitation, Exploitation::None);
    assert!(!none.automatable, "no vector, no claim");

    // Values from outside are kept in range.
    let wild = VulnFacts { cvss: vec![cvss("3.1", 42.0, "x")], epss: Some(f64::NAN), ..Default::default() };
    assert_eq!(score(&wild, &DeviceFacts::default(), f64::INFINITY).score, 20.0);
}

#[test]
fn the_queue_groups_by_update_and_sorts_by_risk_removed() {
    let f = |product: &str, fixed: Option<&str>, cve: &str, kev: bool, dev: &str, org: &str, score: f64| {
        QueueFinding {
            product: product.into(),
            fixed_version: fixed.map(str::to_string),
            cve_id: cve.into(),
            kev,
            device_id: dev.into(),
            organization_id: org.into(),
            score,
        }
    };
    let fix = Some("3.0.15-1~deb12u1");
    let findings = vec![
        f("openssl", fix, "CVE-2024-5535", false, "d1", "o1", 40.0),
        f("openssl", fix, "CVE-2024-5535", false, "d2", "o2", 40.0),
        f("openssl", fix, "CVE-2024-9143", true, "d1", "o1", 70.0),
        f("sudo", Some("1.9.13p3-1+deb12u2"), "CVE-2025-32463", true, "d3", "o1", 90.0),
        f("unzip", None, "CVE-2022-0529", false, "d1", "o1", 30.0),
        f("unzip", None, "CVE-2022-0530", false, "d2", "o2", 30.0),
    ];
    let q = remediation_queue(&findings);
    assert_eq!(q.len(), 3);
    assert_eq!(q[0].product, "openssl");
    assert_eq!(q[0].risk_removed, 150.0);
    assert_eq!(
        q[0].summary(),
        "openssl → 3.0.15-1~deb12u1: fixes 2 CVEs, 1 in KEV, on 2 devices in 2 organizations"
    );
    assert_eq!(q[1].product, "sudo");
    assert_eq!(q[2].summary(), "unzip → no fix yet: fixes 2 CVEs, 0 in KEV, on 2 devices in 2 organizations");
}

mod quick {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Ranking uses the score without its explanation; it must be the same score.
        #[test]
        fn the_quick_score_is_the_explained_score(
            base in proptest::option::of(0.0f64..=10.0),
            v4 in any::<bool>(),
            vector in prop::sample::select(vec!["AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"]),
            epss in proptest::option::of(0.0f64..=1.0),
            kev in any::<bool>(),
            ransomware in any::<bool>(),
            device in (any::<bool>(), any::<bool>(), any::<bool>(), 0u8..4),
            prevalence in 0.0f64..=1.0,
        ) {
            let v = VulnFacts {
                cvss: base.map(|b| cvss(if v4 { "4.0" } else { "3.1" }, b, vector)).into_iter().collect(),
                epss,
                kev,
                kev_ransomware: ransomware,
            };
            let d = DeviceFacts {
                internet_facing: device.0,
                holds_sensitive_data: device.1,
                domain_controller: device.2,
                criticality: device.3,
            };
            let full = score(&v, &d, prevalence);
            prop_assert_eq!(quick_score(&v, &d, prevalence), (full.score, full.ssvc));
            let sum: f64 = full.factors.iter().map(|f| f.points).sum();
            prop_assert_eq!(full.score, (sum.min(100.0) * 10.0).round() / 10.0);
        }
    }
}
