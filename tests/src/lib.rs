//! Support for the end-to-end tests: the real server on port 0 over a real SQLite file, phones
//! as real `mobile-core` stores in temp dirs, and a small blocking HTTP client for the routes.

use fieldsync_mobile_core::FieldsyncClient;
use fieldsync_server::app::{self, AppState, Server};
use fieldsync_server::store::{self, Store};
use fieldsync_sync::{Role, TenantId, UserId};
use std::sync::Arc;

pub const PASSWORD: &str = "password123";

/// A running server and what it needs.
pub struct Harness {
    pub rt: tokio::runtime::Runtime,
    pub store: Arc<dyn Store>,
    pub url: String,
    server: Option<Server>,
    http: ureq::Agent,
    /// The PostgreSQL server URL and this harness's database, dropped at the end.
    pg: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

/// A phone: its client and the directory it lives in.
pub struct Phone {
    pub client: FieldsyncClient,
    pub dir: tempfile::TempDir,
}

impl std::ops::Deref for Phone {
    type Target = FieldsyncClient;
    fn deref(&self) -> &FieldsyncClient {
        &self.client
    }
}

impl Harness {
    /// Starts a server on 127.0.0.1:0 with a fresh SQLite database.
    pub fn start() -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir
            .path()
            .join("fieldsync.db")
            .to_string_lossy()
            .into_owned();
        Self::start_on(&path, dir, None)
    }

    /// Starts a server on 127.0.0.1:0 over a fresh PostgreSQL database on the server named by
    /// `FIELDSYNC_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`); the
    /// database is dropped when the harness is. `None`, with a message, when no PostgreSQL
    /// answers, unless `FIELDSYNC_REQUIRE_PG=1`.
    pub fn start_postgres() -> Option<Harness> {
        let url = std::env::var("FIELDSYNC_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let required = std::env::var("FIELDSYNC_REQUIRE_PG").is_ok_and(|v| v == "1");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let admin = match rt.block_on(sqlx::PgPool::connect(&url)) {
            Ok(p) => p,
            Err(e) if !required => {
                eprintln!("SKIPPED: end-to-end on PostgreSQL: no PostgreSQL at {url} ({e}).");
                return None;
            }
            Err(e) => panic!("FIELDSYNC_REQUIRE_PG=1 but PostgreSQL at {url} is unreachable: {e}"),
        };
        let name = format!("fieldsync_e2e_{}", uuid::Uuid::now_v7().simple());
        rt.block_on(
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin),
        )
        .expect("create database");
        rt.block_on(admin.close());
        let base = url
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .unwrap_or(url.clone());
        Some(Self::start_on(
            &format!("{base}/{name}"),
            tempfile::tempdir().expect("tempdir"),
            Some((url, name)),
        ))
    }

    fn start_on(store_url: &str, dir: tempfile::TempDir, pg: Option<(String, String)>) -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (store, server) = rt.block_on(async {
            let store = store::open(store_url).await.expect("open store");
            let state = AppState::new(store.clone()).await.expect("state");
            let server = Server::start(state, "127.0.0.1:0".parse().expect("addr"))
                .await
                .expect("start");
            (store, server)
        });
        // Connections are reused, as a phone's are: refusals must not break the next request.
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Harness {
            rt,
            store,
            url: server.url(),
            server: Some(server),
            http,
            pg,
            _dir: dir,
        }
    }

    pub fn tenant(&self, slug: &str) -> TenantId {
        self.rt
            .block_on(app::create_tenant(self.store.as_ref(), slug, None))
            .expect("tenant")
            .id
    }

    pub fn user(&self, tenant: TenantId, email: &str, role: Role, manager: Option<&str>) -> UserId {
        self.rt
            .block_on(app::create_user(
                self.store.as_ref(),
                tenant,
                email,
                PASSWORD,
                role,
                manager,
            ))
            .expect("user")
            .id
    }

    /// A new phone logged in as `email` of `tenant`.
    pub fn phone(&self, tenant: &str, email: &str) -> Phone {
        let dir = tempfile::tempdir().expect("tempdir");
        let client =
            FieldsyncClient::open(dir.path().to_string_lossy().into_owned()).expect("open phone");
        client
            .login(
                self.url.clone(),
                tenant.into(),
                email.into(),
                PASSWORD.into(),
            )
            .expect("login");
        Phone { client, dir }
    }

    /// An access token for raw HTTP calls.
    pub fn token(&self, tenant: &str, email: &str) -> String {
        let (status, body) = self.post(
            "/v1/auth/login",
            None,
            &serde_json::json!({"tenant": tenant, "email": email, "password": PASSWORD}),
        );
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().expect("token").to_owned()
    }

    fn finish(mut resp: ureq::http::Response<ureq::Body>) -> (u16, serde_json::Value) {
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        Self::finish(req.call().expect("request"))
    }

    pub fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.post_raw(path, token, serde_json::to_vec(body).expect("json"))
    }

    pub fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.url))
            .header("Content-Type", "application/json");
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        Self::finish(req.send(&body[..]).expect("request"))
    }

    /// The server is still serving.
    pub fn healthy(&self) -> bool {
        self.get("/healthz", None).0 == 200
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.stop());
        }
        if let Some((url, name)) = self.pg.take() {
            self.rt.block_on(async {
                if let Ok(admin) = sqlx::PgPool::connect(&url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&admin)
                    .await;
                }
            });
        }
    }
}
