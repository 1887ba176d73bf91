//! The whole demo (the seed `ringfence demo` serves) in a fresh SQLite database, served on a
//! free port with no simulated agents, and its users signed in over HTTP.

use reqwest::Client;
use serde_json::Value;

pub const PASSWORD: &str = "ringfence-demo-2026";
pub const ADMIN: &str = "admin@demo-msp.example";
pub const VIEWER: &str = "viewer@hartleymoss.example";

pub struct Demo {
    pub base: String,
    _dir: tempfile_dir::Dir,
}

/// A folder removed when the test ends.
pub mod tempfile_dir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The demo seeded into a fresh SQLite database and served on a free port, with no simulated
/// agents (the test is the only client).
pub async fn demo() -> Demo {
    let dir =
        std::env::temp_dir().join(format!("rf-console-{}-{}", std::process::id(), uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = ringfence_store::open(&ringfence_store::Location::Sqlite(dir.join("demo.db"))).await.unwrap();
    let clock = ringfence_engine::demo::DemoClock::default();
    let engine = ringfence_engine::Engine::with_clock(store.clone(), clock.clock())
        .with_secret_key(ringfence_engine::appliances::SecretKey::generate());
    clock.set(
        ringfence_model::Timestamp::now()
            - jiff::SignedDuration::from_hours(24 * ringfence_engine::demo::HISTORY_DAYS),
    );
    let seed = ringfence_engine::demo::seed_tenancy(&engine).await.unwrap();
    ringfence_engine::demo::seed_history(&engine, &seed, &clock).await.unwrap();
    ringfence_engine::demo::seed_intel(&engine, &seed).await.unwrap();
    ringfence_engine::demo::seed_remediation(&engine, &seed).await.unwrap();
    ringfence_engine::demo::seed_rollouts(&engine, &seed).await.unwrap();
    ringfence_engine::demo::seed_appliances(&engine, &seed).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = ringfence_server::AppState::new(
        engine,
        ringfence_server::ServerConfig {
            secure_cookies: false,
            dispatch_every: None,
            records_every: None,
            ..Default::default()
        },
    );
    tokio::spawn(ringfence_server::serve(listener, state, std::future::pending()));
    Demo { base, _dir: tempfile_dir::Dir(dir) }
}

pub struct User {
    pub client: Client,
    pub csrf: String,
    pub base: String,
}

impl Demo {
    pub async fn sign_in(&self, username: &str) -> User {
        let client =
            Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let r = client
            .post(format!("{}/api/v1/session", self.base))
            .json(&serde_json::json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{username} signs in");
        let v: Value = r.json().await.unwrap();
        User { client, csrf: v["csrf_token"].as_str().unwrap().to_owned(), base: self.base.clone() }
    }
}

impl User {
    pub async fn page(&self, path: &str) -> (u16, String) {
        let r = self.client.get(format!("{}{}", self.base, path)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn api(&self, path: &str) -> Value {
        let r = self
            .client
            .get(format!("{}{}", self.base, path))
            .header("x-csrf-token", &self.csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }
}
