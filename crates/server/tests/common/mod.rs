//! Spawns the whole application on port 0 with a fresh database, seeded with two partners
//! (A with organizations A1 and A2, B with B1) and a user of every role, and talks to it over
//! HTTP like any client.
#![allow(dead_code)]

use reqwest::{Client, StatusCode};
use ringfence_engine::Engine;
use ringfence_model::*;
use ringfence_proto as proto;
use ringfence_store::testing::{TempDir, fresh_postgres, fresh_sqlite};
use ringfence_store::{Audit, DynStore};
use serde_json::{Value, json};
use std::sync::Arc;

pub mod demo;

pub const PASSWORD: &str = "correct-horse-battery";

pub struct Tenant {
    pub partner: Partner,
    pub org: Organization,
    pub site: Site,
    pub group: DeviceGroup,
    pub device: Device,
}

pub struct TestApp {
    pub base: String,
    pub engine: Engine,
    pub store: DynStore,
    /// Seconds the application's clock runs ahead of the real one (see `advance`).
    pub offset: Arc<std::sync::atomic::AtomicI64>,
    /// The key that seals SNMP credentials (shared by restarted servers).
    pub secret: ringfence_engine::appliances::SecretKey,
    pub a1: Tenant,
    pub a2: Tenant,
    pub b1: Tenant,
    _dir: Option<TempDir>,
}

pub struct Restarted {
    pub base: String,
    pub engine: Engine,
}

pub enum Backend {
    Sqlite,
    Postgres,
}

async fn tenant(engine: &Engine, partner: &str, org: &str) -> Tenant {
    let partner = match engine.store().find_partner_by_name(partner).await.unwrap() {
        Some(p) => p,
        None => engine
            .store()
            .create_partner(&Audit::new("test", Timestamp::now()), &Name::parse("name", partner).unwrap())
            .await
            .unwrap(),
    };
    let op = engine.operator("test", partner.name.as_str()).await.unwrap();
    let org = engine
        .create_organization(&op, &proto::CreateOrganization { name: org.into(), notes: String::new() })
        .await
        .unwrap();
    let site = engine
        .create_site(
            &op,
            &proto::CreateSite {
                organization_id: org.id.to_string(),
                name: "HQ".into(),
                time_zone: "Europe/London".into(),
                address: String::new(),
            },
        )
        .await
        .unwrap();
    let group = engine
        .create_group(
            &op,
            &proto::CreateDeviceGroup {
                organization_id: org.id.to_string(),
                name: "Servers".into(),
                description: String::new(),
            },
        )
        .await
        .unwrap();
    let device = engine
        .create_device(
            &op,
            &proto::CreateDevice {
                site_id: site.id.to_string(),
                hostname: format!("{}-srv", org.name.to_lowercase()),
                role: "server".into(),
                os: "Debian 12".into(),
                internet_facing: false,
                holds_sensitive_data: false,
                criticality: None,
                time_zone: None,
                group_ids: vec![group.id.to_string()],
            },
        )
        .await
        .unwrap();
    Tenant { partner, org, site, group, device }
}

async fn user(engine: &Engine, partner: &Partner, username: &str, role: Role, org: Option<&Organization>) {
    let op = engine.operator("test", partner.name.as_str()).await.unwrap();
    engine
        .create_user(
            &op,
            &proto::CreateUser {
                username: username.into(),
                display_name: String::new(),
                role: role.as_str().into(),
                organization_id: org.map(|o| o.id.to_string()),
                password: PASSWORD.into(),
            },
        )
        .await
        .unwrap();
}

impl TestApp {
    /// `None` when PostgreSQL is wanted but not available outside CI.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        let (store, dir): (DynStore, Option<TempDir>) = match backend {
            Backend::Sqlite => {
                let (s, d) = fresh_sqlite().await;
                (Arc::new(s), Some(d))
            }
            Backend::Postgres => (Arc::new(fresh_postgres().await?), None),
        };
        Some(Self::spawn_on(store, dir).await)
    }

    /// The application over a store the test made (on a file system of its own, say).
    pub async fn spawn_on(store: DynStore, dir: Option<TempDir>) -> TestApp {
        let offset = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let ahead = offset.clone();
        let clock = ringfence_engine::Clock::from_fn(move || {
            let s = ahead.load(std::sync::atomic::Ordering::SeqCst);
            Timestamp::now().checked_add(jiff::SignedDuration::from_secs(s)).unwrap()
        });
        let secret = ringfence_engine::appliances::SecretKey::generate();
        let engine = Engine::with_clock(store.clone(), clock).with_secret_key(secret.clone());
        let a1 = tenant(&engine, "Partner A", "A1").await;
        let a2 = tenant(&engine, "Partner A", "A2").await;
        let b1 = tenant(&engine, "Partner B", "B1").await;
        user(&engine, &a1.partner, "admin@a", Role::PartnerAdmin, None).await;
        user(&engine, &a1.partner, "tech@a", Role::Technician, None).await;
        user(&engine, &a1.partner, "auditor@a", Role::Auditor, None).await;
        user(&engine, &a1.partner, "viewer@a1", Role::ClientViewer, Some(&a1.org)).await;
        user(&engine, &a1.partner, "tech@a1", Role::Technician, Some(&a1.org)).await;
        user(&engine, &b1.partner, "admin@b", Role::PartnerAdmin, None).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = ringfence_server::AppState::new(
            engine.clone(),
            ringfence_server::ServerConfig {
                secure_cookies: false,
                dispatch_every: None,
                records_every: None,
                ..Default::default()
            },
        );
        tokio::spawn(ringfence_server::serve(listener, state, std::future::pending()));
        TestApp { base, engine, store, offset, secret, a1, a2, b1, _dir: dir }
    }

    /// Another server over the same database and clock, on its own port: what a restart (or a
    /// second `serve` process) is, since servers keep no state of their own.
    pub async fn restart(app: &TestApp) -> Restarted {
        let ahead = app.offset.clone();
        let clock = ringfence_engine::Clock::from_fn(move || {
            let s = ahead.load(std::sync::atomic::Ordering::SeqCst);
            Timestamp::now().checked_add(jiff::SignedDuration::from_secs(s)).unwrap()
        });
        let engine = Engine::with_clock(app.store.clone(), clock).with_secret_key(app.secret.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = ringfence_server::AppState::new(
            engine.clone(),
            ringfence_server::ServerConfig {
                secure_cookies: false,
                dispatch_every: None,
                records_every: None,
                ..Default::default()
            },
        );
        tokio::spawn(ringfence_server::serve(listener, state, std::future::pending()));
        Restarted { base, engine }
    }

    /// Another server over the same engine with `config`, on its own port; its base URL.
    pub async fn serve_with(&self, config: ringfence_server::ServerConfig) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = ringfence_server::AppState::new(self.engine.clone(), config);
        tokio::spawn(ringfence_server::serve(listener, state, std::future::pending()));
        base
    }

    /// Enrolls a device named `host` in A1's site, through the engine as the agent's first
    /// request would; its agent credential (`rfa_…`).
    pub async fn enroll_agent(&self, host: &str) -> String {
        let op = self.engine.operator("test", self.a1.partner.name.as_str()).await.unwrap();
        let token = self
            .engine
            .create_enrollment_token(
                &op,
                &proto::CreateEnrollmentToken {
                    site_id: self.a1.site.id.to_string(),
                    name: format!("for {host}"),
                    expires_in_hours: None,
                    max_uses: None,
                },
            )
            .await
            .unwrap();
        self.engine
            .enroll(&proto::EnrollRequest {
                token: token.secret,
                hostname: host.into(),
                // A machine-id of the host name's own (hex, padded): one per host.
                machine_id: format!("{:0<32}", hex::encode(host.as_bytes())),
                os: "Debian GNU/Linux 12 (bookworm)".into(),
                agent_version: "test".into(),
            })
            .await
            .unwrap()
            .credential
    }

    /// Moves the application's clock forward (a virtual day passes in no time).
    pub fn advance(&self, by: std::time::Duration) {
        self.offset.fetch_add(by.as_secs() as i64, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Signs in through the API; returns a cookie-keeping client and the CSRF token.
    pub async fn session(&self, username: &str) -> Session {
        let client =
            Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let r = client
            .post(self.url("/api/v1/session"))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "sign-in of {username}");
        let body: Value = r.json().await.unwrap();
        Session { client, csrf: body["csrf_token"].as_str().unwrap().to_owned(), base: self.base.clone() }
    }

    /// An API token of `username` with its own role.
    pub async fn token(&self, username: &str) -> Api {
        let s = self.session(username).await;
        let r = s.send("POST", "/api/v1/tokens", Some(json!({ "name": "test token" }))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        Api {
            client: Client::new(),
            token: r.body["secret"].as_str().unwrap().to_owned(),
            base: self.base.clone(),
        }
    }

    /// The evidence chain heads, to prove a refused request wrote nothing.
    pub async fn heads(&self) -> Vec<(String, i64, String)> {
        self.store.chain_heads().await.unwrap()
    }
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, body, headers }
}

fn method(m: &str) -> reqwest::Method {
    reqwest::Method::from_bytes(m.as_bytes()).unwrap()
}

pub struct Session {
    pub client: Client,
    pub csrf: String,
    pub base: String,
}

impl Session {
    pub async fn send(&self, m: &str, path: &str, body: Option<Value>) -> Reply {
        let mut req = self
            .client
            .request(method(m), format!("{}{}", self.base, path))
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            req = req.json(&b);
        }
        reply(req.send().await.unwrap()).await
    }

    pub async fn send_without_csrf(&self, m: &str, path: &str, body: Option<Value>) -> Reply {
        let mut req = self.client.request(method(m), format!("{}{}", self.base, path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        reply(req.send().await.unwrap()).await
    }
}

pub struct Api {
    pub client: Client,
    pub token: String,
    pub base: String,
}

impl Api {
    pub async fn send(&self, m: &str, path: &str, body: Option<Value>) -> Reply {
        let mut req =
            self.client.request(method(m), format!("{}{}", self.base, path)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        reply(req.send().await.unwrap()).await
    }

    pub async fn raw(&self, m: &str, path: &str, content_type: &str, body: &str) -> Reply {
        let req = self
            .client
            .request(method(m), format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body.to_owned());
        reply(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }
}

/// Runs each named async test against SQLite and PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let app = $crate::common::TestApp::spawn($crate::common::Backend::Sqlite).await.unwrap();
                    super::$case(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(app) = $crate::common::TestApp::spawn($crate::common::Backend::Postgres).await else { return };
                    super::$case(app).await;
                }
            )*
        }
    };
}

/// The agent binary, built beside the tests by `cargo nextest run --workspace`; `None` (the
/// test skips) when it is missing outside CI.
pub fn agent_binary() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("ringfence-agent");
    if bin.is_file() {
        return Some(bin);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{} is missing: build the workspace (cargo build --workspace)", bin.display());
    }
    eprintln!("SKIPPED: {} is missing; run `cargo build -p ringfence-agent` first", bin.display());
    None
}

/// A partner-level policy setting from the test sites' current hour (Europe/London) for 12
/// hours every day, merged with `settings`: a maintenance window open now.
pub fn window_open_now(app: &TestApp, settings: Value) -> Value {
    let hour = app
        .engine
        .now()
        .to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap())
        .strftime("%Y-%m-%dT%H:00")
        .to_string();
    let mut s =
        json!({"maintenance_windows": [{"dtstart": hour, "rrule": "FREQ=DAILY", "duration": "PT12H"}]});
    if let (Some(o), Some(extra)) = (s.as_object_mut(), settings.as_object()) {
        o.extend(extra.clone());
    }
    s
}
