//! One conformance suite for every `Store` implementation: each case runs against a fresh
//! SQLite database and a fresh PostgreSQL database, and must behave the same on both.

use ringfence_evidence::ChainVerifier;
use ringfence_model::*;
use ringfence_store::*;
use std::sync::Arc;

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let (store, _dir) = ringfence_store::testing::fresh_sqlite().await;
                    super::$case(std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(store) = ringfence_store::testing::fresh_postgres().await else { return };
                    super::$case(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

conformance!(
    tenancy_round_trip,
    scopes_hide_other_tenants,
    conflicts_write_nothing,
    device_list_filters_and_pages,
    groups_must_belong_to_the_device_organization,
    deletes_cascade_and_are_recorded,
    every_write_extends_a_verifiable_chain,
    concurrent_writes_keep_the_chain_whole,
    users_sessions_and_tokens,
    login_failures_are_counted_per_key,
    batched_inventory_writes_stand_alone,
    deployments_jobs_and_holds,
    console_figures_and_device_rows,
);

fn audit() -> Audit {
    Audit::new("test:conformance", Timestamp::now())
}

fn name(s: &str) -> Name {
    Name::parse("name", s).unwrap()
}

fn tz(s: &str) -> TimeZoneName {
    TimeZoneName::parse("time_zone", s).unwrap()
}

struct Tree {
    partner: Partner,
    org: Organization,
    site: Site,
    group: DeviceGroup,
    device: Device,
}

async fn tree(store: &dyn Store, partner: &str, org: &str) -> Tree {
    let partner = match store.find_partner_by_name(partner).await.unwrap() {
        Some(p) => p,
        None => store.create_partner(&audit(), &name(partner)).await.unwrap(),
    };
    let scope = Scope::partner(partner.id.clone());
    let org = store
        .create_organization(&audit(), &scope, &NewOrganization { name: name(org), notes: "n".into() })
        .await
        .unwrap();
    let site = store
        .create_site(
            &audit(),
            &scope,
            &NewSite {
                organization_id: org.id.clone(),
                name: name("HQ"),
                time_zone: tz("America/New_York"),
                address: String::new(),
            },
        )
        .await
        .unwrap();
    let group = store
        .create_group(
            &audit(),
            &scope,
            &NewGroup { organization_id: org.id.clone(), name: name("Servers"), description: String::new() },
        )
        .await
        .unwrap();
    let device = store
        .create_device(&audit(), &scope, &new_device(&site.id, "srv-01", vec![group.id.clone()]))
        .await
        .unwrap();
    Tree { partner, org, site, group, device }
}

fn new_device(site: &SiteId, hostname: &str, group_ids: Vec<DeviceGroupId>) -> NewDevice {
    NewDevice {
        site_id: site.clone(),
        hostname: hostname.into(),
        role: DeviceRole::Server,
        os: "Debian 12".into(),
        internet_facing: false,
        holds_sensitive_data: true,
        criticality: Criticality::High,
        time_zone: None,
        group_ids,
    }
}

async fn verify_all(store: &dyn Store) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for (chain, head_seq, head_hash) in store.chain_heads().await.unwrap() {
        let mut v = ChainVerifier::new(chain.clone());
        let mut after = 0;
        loop {
            let batch = store.list_events(&chain, None, after, 3).await.unwrap();
            if batch.is_empty() {
                break;
            }
            for e in &batch {
                v.push(e).unwrap();
                after = e.seq;
            }
        }
        out.push((chain, v.finish(head_seq, &head_hash).unwrap()));
    }
    out
}

async fn tenancy_round_trip(store: Arc<dyn Store>) {
    let t = tree(&*store, "MSP One", "Law Firm").await;
    let scope = Scope::partner(t.partner.id.clone());
    assert_eq!(store.get_organization(&scope, &t.org.id).await.unwrap(), t.org);
    assert_eq!(store.get_site(&scope, &t.site.id).await.unwrap(), t.site);
    let group = store.get_group(&scope, &t.group.id).await.unwrap();
    assert_eq!(group.device_count, 1);
    let device = store.get_device(&scope, &t.device.id).await.unwrap();
    assert_eq!(device, t.device);
    assert_eq!(device.effective_time_zone, "America/New_York");
    assert_eq!(device.group_ids, vec![t.group.id.clone()]);
    assert_eq!(device.organization_id, t.org.id);

    let org = store
        .update_organization(
            &audit(),
            &scope,
            &t.org.id,
            &OrganizationPatch { name: Some(name("Law Firm LLP")), notes: None },
        )
        .await
        .unwrap();
    assert_eq!(org.name, "Law Firm LLP");
    assert_eq!(org.notes, "n");

    let site = store
        .update_site(
            &audit(),
            &scope,
            &t.site.id,
            &SitePatch { time_zone: Some(tz("Europe/Berlin")), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(site.time_zone, "Europe/Berlin");
    // The device inherits the new zone of its site until it sets its own.
    assert_eq!(store.get_device(&scope, &t.device.id).await.unwrap().effective_time_zone, "Europe/Berlin");
    let d = store
        .update_device(
            &audit(),
            &scope,
            &t.device.id,
            &DevicePatch {
                time_zone: Some(Some(tz("Asia/Tokyo"))),
                internet_facing: Some(true),
                group_ids: Some(vec![]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((d.effective_time_zone.as_str(), d.time_zone.as_deref()), ("Asia/Tokyo", Some("Asia/Tokyo")));
    assert!(d.internet_facing);
    assert!(d.group_ids.is_empty());
    assert_eq!(d.role, DeviceRole::Server);
    let d = store
        .update_device(
            &audit(),
            &scope,
            &t.device.id,
            &DevicePatch {
                time_zone: Some(None),
                group_ids: Some(vec![t.group.id.clone()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(d.effective_time_zone, "Europe/Berlin");
    assert_eq!(d.group_ids, vec![t.group.id.clone()], "memberships are set by an update too");

    let partner = store.rename_partner(&audit(), &scope, &name("MSP Uno")).await.unwrap();
    assert_eq!(store.get_partner(&scope).await.unwrap().name, partner.name);
    assert_eq!(store.list_partners().await.unwrap().len(), 1);
}

async fn scopes_hide_other_tenants(store: Arc<dyn Store>) {
    let a = tree(&*store, "MSP A", "Org A1").await;
    let a2 = tree(&*store, "MSP A", "Org A2").await;
    let b = tree(&*store, "MSP B", "Org B1").await;
    let scope_b = Scope::partner(b.partner.id.clone());
    let scope_a2 = Scope::organization(a.partner.id.clone(), a2.org.id.clone());

    for scope in [&scope_b, &scope_a2] {
        assert!(matches!(store.get_organization(scope, &a.org.id).await, Err(StoreError::NotFound(_))));
        assert!(matches!(store.get_site(scope, &a.site.id).await, Err(StoreError::NotFound(_))));
        assert!(matches!(store.get_group(scope, &a.group.id).await, Err(StoreError::NotFound(_))));
        assert!(matches!(store.get_device(scope, &a.device.id).await, Err(StoreError::NotFound(_))));
        let patch = OrganizationPatch { name: Some(name("stolen")), notes: None };
        assert!(matches!(
            store.update_organization(&audit(), scope, &a.org.id, &patch).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(store.delete_site(&audit(), scope, &a.site.id).await, Err(StoreError::NotFound(_))));
        assert!(matches!(
            store.delete_device(&audit(), scope, &a.device.id).await,
            Err(StoreError::NotFound(_))
        ));
        // A site of another tenant cannot be used to place a device.
        let err = store
            .create_device(&audit(), scope, &new_device(&a.site.id, "intruder", vec![]))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid { field: "site_id", .. }), "{err:?}");
    }
    // Lists contain only what the scope sees.
    let orgs = store.list_organizations(&scope_a2).await.unwrap();
    assert_eq!(orgs.iter().map(|o| &o.id).collect::<Vec<_>>(), vec![&a2.org.id]);
    let all_a = store.list_organizations(&Scope::partner(a.partner.id.clone())).await.unwrap();
    assert_eq!(all_a.len(), 2);
    let devices =
        store.list_devices(&scope_b, &DeviceQuery { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(devices.total, 1);
    assert_eq!(devices.items[0].id, b.device.id);
    let sites = store.list_sites(&scope_a2, Some(&a.org.id)).await.unwrap();
    assert!(sites.is_empty(), "an organization-scoped caller must not list another organization's sites");
    assert!(store.list_groups(&scope_b, None).await.unwrap().iter().all(|g| g.partner_id == b.partner.id));
    // The victim's objects are unchanged.
    let scope_a = Scope::partner(a.partner.id.clone());
    assert_eq!(store.get_organization(&scope_a, &a.org.id).await.unwrap().name, "Org A1");
    assert_eq!(store.get_device(&scope_a, &a.device.id).await.unwrap(), a.device);
}

async fn conflicts_write_nothing(store: Arc<dyn Store>) {
    let t = tree(&*store, "MSP", "Clinic").await;
    let scope = Scope::partner(t.partner.id.clone());
    let heads_before = store.chain_heads().await.unwrap();
    let err = store
        .create_organization(
            &audit(),
            &scope,
            &NewOrganization { name: name("Clinic"), notes: String::new() },
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m.contains("Clinic")), "{err:?}");
    let err =
        store.create_device(&audit(), &scope, &new_device(&t.site.id, "srv-01", vec![])).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .create_site(
            &audit(),
            &scope,
            &NewSite {
                organization_id: t.org.id.clone(),
                name: name("HQ"),
                time_zone: tz("UTC"),
                address: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.chain_heads().await.unwrap(), heads_before, "a refused write must not append evidence");
    assert_eq!(store.list_organizations(&scope).await.unwrap().len(), 1);
}

async fn device_list_filters_and_pages(store: Arc<dyn Store>) {
    let t = tree(&*store, "MSP", "Call Center").await;
    let scope = Scope::partner(t.partner.id.clone());
    for i in 0..25 {
        let groups = if i % 5 == 0 { vec![t.group.id.clone()] } else { vec![] };
        store
            .create_device(&audit(), &scope, &new_device(&t.site.id, &format!("ws-{i:02}"), groups))
            .await
            .unwrap();
    }
    store.create_device(&audit(), &scope, &new_device(&t.site.id, "odd_name", vec![])).await.unwrap();
    let q = |search: Option<&str>, limit, offset| DeviceQuery {
        search: search.map(str::to_owned),
        limit,
        offset,
        ..Default::default()
    };
    let page = store.list_devices(&scope, &q(Some("WS-"), 10, 0)).await.unwrap();
    assert_eq!((page.total, page.items.len()), (25, 10));
    assert_eq!(page.items[0].hostname, "ws-00");
    let last = store.list_devices(&scope, &q(Some("ws-"), 10, 20)).await.unwrap();
    assert_eq!(
        last.items.iter().map(|d| d.hostname.as_str()).collect::<Vec<_>>(),
        ["ws-20", "ws-21", "ws-22", "ws-23", "ws-24"]
    );
    // LIKE wildcards in the search are literal characters.
    let underscore = store.list_devices(&scope, &q(Some("_"), 50, 0)).await.unwrap();
    assert_eq!(underscore.items.iter().map(|d| d.hostname.as_str()).collect::<Vec<_>>(), ["odd_name"]);
    assert_eq!(store.list_devices(&scope, &q(Some("%"), 50, 0)).await.unwrap().total, 0);
    let in_group = DeviceQuery { group_id: Some(t.group.id.clone()), limit: 50, ..Default::default() };
    assert_eq!(store.list_devices(&scope, &in_group).await.unwrap().total, 6);
    let by_site = DeviceQuery { site_id: Some(t.site.id.clone()), limit: 1, ..Default::default() };
    assert_eq!(store.list_devices(&scope, &by_site).await.unwrap().total, 27);
    assert_eq!(store.get_group(&scope, &t.group.id).await.unwrap().device_count, 6);
}

async fn groups_must_belong_to_the_device_organization(store: Arc<dyn Store>) {
    let a = tree(&*store, "MSP", "Org A").await;
    let b = tree(&*store, "MSP", "Org B").await;
    let scope = Scope::partner(a.partner.id.clone());
    let heads_before = store.chain_heads().await.unwrap();
    let err = store
        .create_device(&audit(), &scope, &new_device(&a.site.id, "ws-1", vec![b.group.id.clone()]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { field: "group_ids", .. }), "{err:?}");
    let err = store
        .update_device(
            &audit(),
            &scope,
            &a.device.id,
            &DevicePatch { site_id: Some(b.site.id.clone()), ..Default::default() },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { field: "site_id", .. }), "{err:?}");
    assert_eq!(store.chain_heads().await.unwrap(), heads_before);
    let page = store
        .list_devices(&scope, &DeviceQuery { search: Some("ws-1".into()), limit: 5, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(page.total, 0, "the refused device must not have been half-written");
}

async fn deletes_cascade_and_are_recorded(store: Arc<dyn Store>) {
    let t = tree(&*store, "MSP", "Doomed").await;
    let scope = Scope::partner(t.partner.id.clone());
    store.delete_organization(&audit(), &scope, &t.org.id).await.unwrap();
    assert!(matches!(store.get_device(&scope, &t.device.id).await, Err(StoreError::NotFound("device"))));
    assert!(matches!(store.get_site(&scope, &t.site.id).await, Err(StoreError::NotFound("site"))));
    let heads = store.chain_heads().await.unwrap();
    let (_, seq, _) = heads.iter().find(|(c, ..)| c == t.partner.id.as_str()).unwrap();
    let last = store.list_events(t.partner.id.as_str(), None, seq - 1, 1).await.unwrap().remove(0);
    assert_eq!(last.action, "organization.delete");
    let payload: serde_json::Value = serde_json::from_str(&last.payload).unwrap();
    assert_eq!(payload["removed"]["devices"], 1);
    assert_eq!(payload["before"]["name"], "Doomed");
    assert!(matches!(
        store.delete_organization(&audit(), &scope, &t.org.id).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn every_write_extends_a_verifiable_chain(store: Arc<dyn Store>) {
    let t = tree(&*store, "MSP", "Audited").await;
    let scope = Scope::partner(t.partner.id.clone());
    store
        .update_device(
            &audit(),
            &scope,
            &t.device.id,
            &DevicePatch { os: Some("Debian 13".into()), ..Default::default() },
        )
        .await
        .unwrap();
    let chains = verify_all(&*store).await;
    // partner, org, site, group, device, device update
    assert_eq!(chains, vec![(t.partner.id.to_string(), 6)]);
    let events = store.list_events(t.partner.id.as_str(), None, 0, 100).await.unwrap();
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "partner.create",
            "organization.create",
            "site.create",
            "device_group.create",
            "device.create",
            "device.update"
        ]
    );
    let update: serde_json::Value = serde_json::from_str(&events[5].payload).unwrap();
    assert_eq!(update["before"]["os"], "Debian 12");
    assert_eq!(update["after"]["os"], "Debian 13");
    assert_eq!(events[5].actor, "test:conformance");
    assert_eq!(events[5].organization_id.as_deref(), Some(t.org.id.as_str()));
}

async fn concurrent_writes_keep_the_chain_whole(store: Arc<dyn Store>) {
    let t = tree(&*store, "MSP", "Busy").await;
    let scope = Scope::partner(t.partner.id.clone());
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let scope = scope.clone();
        let site = t.site.id.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_device(&audit(), &scope, &new_device(&site, &format!("c-{i}"), vec![]))
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(verify_all(&*store).await, vec![(t.partner.id.to_string(), 5 + 16)]);
}

async fn users_sessions_and_tokens(store: Arc<dyn Store>) {
    let t = tree(&*store, "MSP", "Clinic").await;
    let scope = Scope::partner(t.partner.id.clone());
    let viewer = store
        .create_user(
            &audit(),
            &scope,
            &NewUser {
                username: "viewer@clinic.example".into(),
                display_name: "Viewer".into(),
                role: Role::ClientViewer,
                organization_id: Some(t.org.id.clone()),
                password_hash: "$argon2id$fake".into(),
            },
        )
        .await
        .unwrap();
    let dup = store
        .create_user(
            &audit(),
            &scope,
            &NewUser {
                username: "viewer@clinic.example".into(),
                display_name: "Again".into(),
                role: Role::Technician,
                organization_id: None,
                password_hash: "x".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Conflict(_)));
    let (found, hash) = store.find_login("viewer@clinic.example").await.unwrap().unwrap();
    assert_eq!((found.id.clone(), hash.as_str()), (viewer.id.clone(), "$argon2id$fake"));
    assert!(store.find_login("nobody").await.unwrap().is_none());
    let org_scope = Scope::organization(t.partner.id.clone(), t.org.id.clone());
    assert_eq!(store.list_users(&org_scope).await.unwrap().len(), 1);

    let now = Timestamp::now();
    let session = SessionRecord {
        id_hash: "h1".into(),
        user_id: viewer.id.clone(),
        csrf_token: "csrf".into(),
        created_at: now,
        expires_at: now + jiff::SignedDuration::from_secs(60),
    };
    store.create_session(&session).await.unwrap();
    let (u, csrf) = store.find_session("h1", now).await.unwrap().unwrap();
    assert_eq!((u.id, csrf.as_str()), (viewer.id.clone(), "csrf"));
    assert!(store.find_session("h1", now + jiff::SignedDuration::from_secs(61)).await.unwrap().is_none());

    let token = store
        .create_token(
            &audit(),
            &scope,
            &NewToken {
                user_id: viewer.id.clone(),
                name: "report script".into(),
                role: Role::ClientViewer,
                organization_id: None,
                token_hash: "th".into(),
                expires_at: None,
            },
        )
        .await
        .unwrap();
    // The owner is limited to one organization, so the token is too.
    assert_eq!(token.organization_id.as_ref(), Some(&t.org.id));
    let live = store.find_token("th", now).await.unwrap().unwrap();
    assert_eq!(live.id, token.id);
    assert!(live.last_used_at.is_none());
    assert!(store.find_token("th", now).await.unwrap().unwrap().last_used_at.is_some());
    store.revoke_token(&audit(), &scope, &token.id).await.unwrap();
    assert!(store.find_token("th", now).await.unwrap().is_none());

    // A token whose role exceeds its owner's current role does not authenticate.
    store
        .create_token(
            &audit(),
            &scope,
            &NewToken {
                user_id: viewer.id.clone(),
                name: "too strong".into(),
                role: Role::PartnerAdmin,
                organization_id: None,
                token_hash: "th-admin".into(),
                expires_at: None,
            },
        )
        .await
        .unwrap();
    assert!(store.find_token("th-admin", now).await.unwrap().is_none());
    // Organization-limited events are filtered in the query, so paging sees them all.
    let other = store
        .create_organization(&audit(), &scope, &NewOrganization { name: name("Other"), notes: String::new() })
        .await
        .unwrap();
    let org_events = store.list_events(t.partner.id.as_str(), Some(t.org.id.as_str()), 0, 2).await.unwrap();
    assert_eq!(org_events.len(), 2);
    assert!(org_events.iter().all(|e| e.organization_id.as_deref() == Some(t.org.id.as_str())));
    let other_events =
        store.list_events(t.partner.id.as_str(), Some(other.id.as_str()), 0, 100).await.unwrap();
    assert_eq!(other_events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["organization.create"]);

    // Disabling a user ends their sessions.
    store
        .update_user(&audit(), &scope, &viewer.id, &UserPatch { disabled: Some(true), ..Default::default() })
        .await
        .unwrap();
    assert!(store.find_session("h1", now).await.unwrap().is_none());
    let events = store.list_events(t.partner.id.as_str(), None, 0, 100).await.unwrap();
    assert!(
        events.iter().all(|e| !e.payload.contains("argon2")),
        "password hashes never reach the evidence log"
    );
    assert!(
        events.iter().all(|e| !e.payload.contains("\"th\"")),
        "token hashes never reach the evidence log"
    );
    verify_all(&*store).await;
}

async fn login_failures_are_counted_per_key(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let minute = jiff::SignedDuration::from_secs(60);
    for i in 0..3 {
        store.record_login_failure("alice|127.0.0.1", now - minute * i).await.unwrap();
    }
    store.record_login_failure("bob|127.0.0.1", now).await.unwrap();
    assert_eq!(store.count_login_failures("alice|127.0.0.1", now - minute * 10).await.unwrap(), 3);
    assert_eq!(store.count_login_failures("alice|127.0.0.1", now - minute - minute / 2).await.unwrap(), 2);
    store.clear_login_failures("alice|127.0.0.1").await.unwrap();
    assert_eq!(store.count_login_failures("alice|127.0.0.1", now - minute * 10).await.unwrap(), 0);
    assert_eq!(store.count_login_failures("bob|127.0.0.1", now - minute).await.unwrap(), 1);
}

fn inventory_write(scope: Scope, device: &DeviceId, names: &[&str]) -> InventoryWrite {
    let titles = names
        .iter()
        .map(|n| TitleInput {
            item: ringfence_inventory::Item::new(ringfence_inventory::ItemKind::Package, *n, "1.0-1"),
            match_key: Some(format!("pkg:{n}")),
        })
        .collect();
    InventoryWrite {
        audit: audit(),
        scope,
        device: device.clone(),
        os: ringfence_inventory::OsInfo::debian("12"),
        titles,
        findings: Vec::new(),
        report: None,
    }
}

/// A batch of inventory reports: each stands or falls alone, inside the caller's scope.
async fn batched_inventory_writes_stand_alone(store: Arc<dyn Store>) {
    let a = tree(store.as_ref(), "Batch MSP A", "Client A").await;
    let b = tree(store.as_ref(), "Batch MSP B", "Client B").await;
    let scope_a = Scope::partner(a.partner.id.clone());
    let scope_b = Scope::partner(b.partner.id.clone());
    let mut first = inventory_write(scope_a.clone(), &a.device.id, &["openssl", "curl"]);
    first.findings.push(NewFinding {
        cve_id: "CVE-2024-0727".into(),
        product: "openssl".into(),
        kind: "package".into(),
        items: vec!["openssl".into()],
        installed_version: "1.0-1".into(),
        fixed_version: Some("3.0.13-1~deb12u1".into()),
        source: "debian".into(),
        rule: "test".into(),
    });
    // Partner A's scope naming partner B's device, and a report number for a device
    // without an agent: both refused, neither undoing the others.
    let foreign = inventory_write(scope_a.clone(), &b.device.id, &["evil"]);
    let mut numbered = inventory_write(scope_a.clone(), &a.device.id, &["sudo"]);
    numbered.report = Some(ReportSeq { seq: 1, delta: false });
    let third = inventory_write(scope_b.clone(), &b.device.id, &["curl"]);
    let outcomes = store.write_inventories(&[first, foreign, numbered, third]).await.unwrap();
    assert_eq!(outcomes.len(), 4);
    match &outcomes[0] {
        Ok(InventoryOutcome::Applied { change, findings }) => {
            assert_eq!(change.installed, 2);
            assert_eq!(findings.new, vec!["CVE-2024-0727".to_string()]);
        }
        other => panic!("first report: {other:?}"),
    }
    assert!(matches!(outcomes[1], Err(StoreError::NotFound("device"))), "{:?}", outcomes[1]);
    assert!(matches!(outcomes[2], Err(StoreError::NotFound("agent"))), "{:?}", outcomes[2]);
    assert!(matches!(outcomes[3], Ok(InventoryOutcome::Applied { .. })), "{:?}", outcomes[3]);

    let names = |inv: StoredInventory| inv.items.into_iter().map(|i| i.name).collect::<Vec<_>>();
    assert_eq!(names(store.device_inventory(&scope_a, &a.device.id).await.unwrap()), ["curl", "openssl"]);
    assert_eq!(names(store.device_inventory(&scope_b, &b.device.id).await.unwrap()), ["curl"]);
    let q = FindingQuery { device_id: Some(a.device.id.clone()), limit: 10, ..Default::default() };
    assert_eq!(store.list_findings(&scope_a, &q).await.unwrap().total, 1);
    // One evidence event per applied report, and one more when it opened findings (A's
    // openssl finding); the refused ones left no trace.
    let heads = verify_all(store.as_ref()).await;
    let events = |p: &Partner| heads.iter().find(|(c, _)| c == p.id.as_str()).map(|(_, n)| *n).unwrap();
    let tree_events = 5; // partner, organization, site, group, device
    assert_eq!(events(&a.partner), tree_events + 2);
    assert_eq!(events(&b.partner), tree_events + 1);
}

fn new_deployment(t: &Tree, device: &DeviceId, n: usize) -> NewDeployment {
    let now = Timestamp::now();
    NewDeployment {
        id: format!("0190c0de-0000-7000-8000-{n:012}"),
        organization_id: t.org.id.clone(),
        device_id: device.clone(),
        kind: "install".into(),
        ring: 1,
        updates: vec![DeployedPackage {
            product: "acme-svc".into(),
            version: "1.1".into(),
            manager: "dpkg".into(),
            name: "acme-svc".into(),
            from_version: "1.0".into(),
            to_version: "1.1".into(),
        }],
        window_start: now - jiff::SignedDuration::from_mins(5),
        window_end: now + jiff::SignedDuration::from_hours(2),
        reboot_required: false,
        previous_id: None,
        detail: "ring 1".into(),
        action: "deployment.scheduled".into(),
        job: Some(NewJob {
            id: format!("0190c0de-0000-7000-9000-{n:012}"),
            idempotency_key: format!("k-{n}"),
            kind: "install".into(),
            payload: format!("{{\"n\": {n}}}"),
            signature: "00".repeat(64),
        }),
    }
}

async fn deployments_jobs_and_holds(store: Arc<dyn Store>) {
    let a = tree(&*store, "Deploy A", "A1").await;
    let b = tree(&*store, "Deploy B", "B1").await;
    let scope = Scope::partner(a.partner.id.clone());
    let second =
        store.create_device(&audit(), &scope, &new_device(&a.site.id, "srv-02", Vec::new())).await.unwrap();
    // One batch: two devices of A, a second deployment for the first (skipped: one active per
    // device) and a device of another partner (never joined).
    let batch = [
        new_deployment(&a, &a.device.id, 1),
        new_deployment(&a, &second.id, 2),
        new_deployment(&a, &a.device.id, 3),
        new_deployment(&a, &b.device.id, 4),
    ];
    let created = store.create_deployments(&audit(), &a.partner.id, &batch).await.unwrap();
    assert_eq!(created, vec![batch[0].id.clone(), batch[1].id.clone()]);
    let all = store.list_deployments(&scope, &DeploymentQuery::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        store
            .list_deployments(&Scope::partner(b.partner.id.clone()), &DeploymentQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.get_deployment(&Scope::partner(b.partner.id.clone()), &batch[0].id).await,
        Err(StoreError::NotFound(_))
    ));

    // Leasing: once until the lease ends, then again with the same job.
    let until = Timestamp::now() + jiff::SignedDuration::from_mins(10);
    let leased = store.lease_jobs(&audit(), &a.partner.id, &a.device.id, until).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].deployment_id.as_deref(), Some(batch[0].id.as_str()));
    assert!(store.lease_jobs(&audit(), &a.partner.id, &a.device.id, until).await.unwrap().is_empty());
    assert!(
        store.lease_jobs(&audit(), &b.partner.id, &a.device.id, until).await.unwrap().is_empty(),
        "another partner's agent gets nothing"
    );
    let later = Audit::new("agent", until + jiff::SignedDuration::from_secs(1));
    let again = store
        .lease_jobs(&later, &a.partner.id, &a.device.id, until + jiff::SignedDuration::from_mins(10))
        .await
        .unwrap();
    assert_eq!(again[0].id, leased[0].id);
    let job = store.get_job(&a.partner.id, &a.device.id, &leased[0].id).await.unwrap().unwrap();
    assert_eq!((job.state.as_str(), job.deliveries), ("leased", 2));
    assert_eq!(store.get_deployment(&scope, &batch[0].id).await.unwrap().status, "dispatched");

    // Moves happen once; a move from the wrong state writes nothing.
    let change = |s: &str| DeploymentChange { status: s.into(), ..Default::default() };
    assert!(
        store
            .transition_deployment(&audit(), &scope, &batch[0].id, &["dispatched"], &change("running"))
            .await
            .unwrap()
            .is_some()
    );
    let heads = store.chain_heads().await.unwrap();
    assert!(
        store
            .transition_deployment(&audit(), &scope, &batch[0].id, &["dispatched"], &change("running"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .transition_deployment(
                &audit(),
                &Scope::partner(b.partner.id.clone()),
                &batch[0].id,
                &["running"],
                &change("failed")
            )
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.chain_heads().await.unwrap(), heads);
    let failed = store
        .transition_deployment(&audit(), &scope, &batch[0].id, &["running"], &change("failed"))
        .await
        .unwrap()
        .unwrap();
    assert!(failed.finished_at.is_some() && !failed.is_active());
    assert_eq!(
        store.get_job(&a.partner.id, &a.device.id, &leased[0].id).await.unwrap().unwrap().state,
        "done"
    );
    // The device is free again: a new deployment may be created for it.
    let next = store
        .create_deployments(&audit(), &a.partner.id, &[new_deployment(&a, &a.device.id, 5)])
        .await
        .unwrap();
    assert_eq!(next.len(), 1);

    // Holds: one live per package and device, cleared once.
    let hold = |v: &str| NewHold {
        organization_id: a.org.id.clone(),
        device_id: a.device.id.clone(),
        manager: "dpkg".into(),
        name: "acme-svc".into(),
        product: "acme-svc".into(),
        held_version: v.into(),
        blocked_version: "1.1".into(),
        deployment_id: None,
        reason: "rolled back".into(),
    };
    store.create_holds(&audit(), &scope, &[hold("1.0")]).await.unwrap();
    let h = store.create_holds(&audit(), &scope, &[hold("0.9")]).await.unwrap();
    let live = store.list_holds(&scope, false).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].held_version, "0.9");
    assert_eq!(store.list_holds(&scope, true).await.unwrap().len(), 2);
    assert!(store.list_holds(&Scope::partner(b.partner.id.clone()), true).await.unwrap().is_empty());
    assert!(matches!(
        store.clear_hold(&audit(), &Scope::partner(b.partner.id.clone()), &h[0].id).await,
        Err(StoreError::NotFound(_))
    ));
    store.clear_hold(&audit(), &scope, &h[0].id).await.unwrap();
    assert!(matches!(store.clear_hold(&audit(), &scope, &h[0].id).await, Err(StoreError::NotFound(_))));
    assert!(store.list_holds(&scope, false).await.unwrap().is_empty());
    // Batched events chain like single ones.
    verify_all(&*store).await;
}

fn finding(cve: &str, product: &str) -> NewFinding {
    NewFinding {
        cve_id: cve.into(),
        product: product.into(),
        kind: "application".into(),
        items: vec![product.into()],
        installed_version: "1.0".into(),
        fixed_version: Some("1.1".into()),
        source: "nvd".into(),
        rule: "cpe".into(),
    }
}

// organization_figures, open_finding_groups, list_device_rows, count_unread_alerts.
async fn console_figures_and_device_rows(store: Arc<dyn Store>) {
    let t = tree(&*store, "MSP", "Clinic").await;
    let other = tree(&*store, "Other MSP", "Elsewhere").await;
    let scope = Scope::partner(t.partner.id.clone());
    let second =
        store.create_device(&audit(), &scope, &new_device(&t.site.id, "ws-02", vec![])).await.unwrap();
    store.create_device(&audit(), &scope, &new_device(&t.site.id, "ws-03", vec![])).await.unwrap();
    let now = Timestamp::now();
    let three = [
        finding("CVE-2024-0001", "acme:svc"),
        finding("CVE-2024-0002", "acme:svc"),
        finding("CVE-2024-0003", "zed:ui"),
    ];
    store.sync_findings(&scope, &t.device.id, &three, &[], now).await.unwrap();
    store.sync_findings(&scope, &second.id, &three[..1], &[], now).await.unwrap();
    // Another partner's findings are never counted here.
    let elsewhere = Scope::partner(other.partner.id.clone());
    store.sync_findings(&elsewhere, &other.device.id, &three, &[], now).await.unwrap();
    // One deployment failed just now.
    store.create_deployments(&audit(), &t.partner.id, &[new_deployment(&t, &second.id, 9)]).await.unwrap();
    let change = DeploymentChange { status: "failed".into(), ..Default::default() };
    let id = "0190c0de-0000-7000-8000-000000000009";
    store.transition_deployment(&audit(), &scope, id, &["scheduled"], &change).await.unwrap().unwrap();

    let hour = jiff::SignedDuration::from_hours(1);
    let figures = store.organization_figures(&scope, now - hour, now - hour).await.unwrap();
    assert_eq!(figures.len(), 1, "{figures:?}");
    let f = &figures[0];
    assert_eq!(f.organization_id.as_ref(), Some(&t.org.id));
    assert_eq!((f.devices, f.devices_exposed, f.failed_recently, f.offline), (3, 2, 1, 0));
    // Failures before the time asked for are not counted.
    let later = store.organization_figures(&scope, now + hour, now).await.unwrap();
    assert_eq!(later[0].failed_recently, 0);

    let mut groups = store.open_finding_groups(&scope).await.unwrap();
    groups.sort_by(|a, b| a.cve_id.cmp(&b.cve_id));
    let summary: Vec<(&str, &str, i64, i64)> =
        groups.iter().map(|g| (g.cve_id.as_str(), g.product.as_str(), g.findings, g.devices)).collect();
    assert_eq!(
        summary,
        [
            ("CVE-2024-0001", "acme:svc", 2, 2),
            ("CVE-2024-0002", "acme:svc", 1, 1),
            ("CVE-2024-0003", "zed:ui", 1, 1)
        ]
    );
    assert!(groups.iter().all(|g| g.severity == "none" && g.kev_due.is_none() && g.detected <= now));

    let rows = |sort: &str, presence: &str| DeviceRowQuery {
        devices: DeviceQuery { limit: 10, ..Default::default() },
        presence: presence.into(),
        seen_since: Some(now - hour),
        sort: sort.into(),
        descending: true,
    };
    let by_open = store.list_device_rows(&scope, &rows("open", "")).await.unwrap();
    assert_eq!(by_open.total, 3);
    let open: Vec<(&str, i64)> =
        by_open.items.iter().map(|d| (d.hostname.as_str(), d.open_findings)).collect();
    assert_eq!(open, [("srv-01", 3), ("ws-02", 1), ("ws-03", 0)]);
    assert!(by_open.items.iter().all(|d| d.organization == "Clinic" && d.site == "HQ" && !d.has_agent));
    assert_eq!(store.list_device_rows(&scope, &rows("hostname", "no_agent")).await.unwrap().total, 3);
    assert_eq!(store.list_device_rows(&scope, &rows("hostname", "offline")).await.unwrap().total, 0);
    let bad = store.list_device_rows(&scope, &rows("hostname", "sleeping")).await.unwrap_err();
    assert!(bad.to_string().contains("sleeping"), "{bad}");
    // Deployments: counted by status whatever the status filter, sorted and paged.
    let recent = DeploymentQuery {
        statuses: vec!["verified".into()],
        changed_since: Some(now - hour),
        ..Default::default()
    };
    assert_eq!(store.deployment_status_counts(&scope, &recent).await.unwrap(), [("failed".to_owned(), 1)]);
    let by_device = DeploymentQuery { sort: "device".into(), limit: 10, ..Default::default() };
    assert_eq!(store.list_deployments(&scope, &by_device).await.unwrap().len(), 1);
    let past_the_end = DeploymentQuery { offset: 1, ..by_device };
    assert!(store.list_deployments(&scope, &past_the_end).await.unwrap().is_empty());
    // A client-scoped caller sees no partner-wide alerts.
    assert_eq!(
        store
            .count_unread_alerts(&Scope::organization(t.partner.id.clone(), t.org.id.clone()))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.count_unread_alerts(&scope).await.unwrap(), 0);
}
