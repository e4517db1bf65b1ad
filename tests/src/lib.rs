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
    /// Where the server keeps photo bytes (inside this harness's temp dir); with S3, only the
    /// uploads in progress.
    pub blob_dir: std::path::PathBuf,
    /// The S3-compatible server finished photo bytes go to, if this harness uses one.
    pub s3: Option<S3Server>,
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
        Self::start_on(&path, dir, None, None)
    }

    /// Starts a server on 127.0.0.1:0 with a fresh SQLite database whose photo bytes go to a
    /// fresh S3-compatible server (see [`S3Server::start`]); `None`, with a message, when
    /// none can be started and none is required.
    pub fn start_s3() -> Option<Harness> {
        let s3 = S3Server::start()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir
            .path()
            .join("fieldsync.db")
            .to_string_lossy()
            .into_owned();
        Some(Self::start_on(&path, dir, None, Some(s3)))
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
            None,
        ))
    }

    /// The blob store the server is given: local files, or S3 with local upload sessions.
    fn blob_store(
        blob_dir: &std::path::Path,
        s3: Option<&S3Server>,
    ) -> fieldsync_server::blobs::BlobStore {
        match s3 {
            None => fieldsync_server::blobs::BlobStore::new(blob_dir),
            Some(s3) => fieldsync_server::blobs::BlobStore::s3(blob_dir, &s3.url(), s3.vars())
                .expect("S3 blob store"),
        }
    }

    fn start_on(
        store_url: &str,
        dir: tempfile::TempDir,
        pg: Option<(String, String)>,
        s3: Option<S3Server>,
    ) -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let blob_dir = dir.path().join("blobs");
        let (store, server) = rt.block_on(async {
            let store = store::open(store_url).await.expect("open store");
            let blobs = Self::blob_store(&blob_dir, s3.as_ref());
            blobs.check().await.expect("the blob store answers");
            let state = AppState::with_blob_store(store.clone(), blobs)
                .await
                .expect("state");
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
            blob_dir,
            s3,
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

    /// A request with any method and a JSON body.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header("Content-Type", "application/json");
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let req = req
            .body(serde_json::to_vec(body).expect("json"))
            .expect("request");
        Self::finish(self.http.run(req).expect("request"))
    }

    /// A GET whose answer is bytes (a download), with its content type.
    pub fn get_bytes(&self, path: &str, token: &str) -> (u16, String, Vec<u8>) {
        let mut resp = self
            .http
            .get(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .expect("request");
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_vec()
            .unwrap_or_default();
        (resp.status().as_u16(), ctype, bytes)
    }

    /// The `docs` of a push that creates `records`, each as a fresh document.
    pub fn new_docs(records: &[fieldsync_sync::Record]) -> serde_json::Value {
        let docs: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                let doc = r.to_new_doc(automerge::ActorId::random()).expect("new doc");
                let changes: Vec<serde_json::Value> = doc
                    .get_changes(&[])
                    .iter()
                    .map(|c| {
                        serde_json::to_value(fieldsync_sync::protocol::B64(c.raw_bytes().to_vec()))
                            .expect("b64")
                    })
                    .collect();
                serde_json::json!({"doc_id": r.id(), "kind": r.kind().as_str(), "changes": changes})
            })
            .collect();
        serde_json::Value::Array(docs)
    }

    /// Pushes `docs` (as [`Harness::new_docs`] makes them) in a fresh batch; the push answer.
    pub fn push_docs(&self, token: &str, docs: &serde_json::Value) -> serde_json::Value {
        let (status, body) = self.post(
            "/v1/sync/push",
            Some(token),
            &serde_json::json!({"v": 1, "batch_id": uuid::Uuid::now_v7(), "docs": docs}),
        );
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Pushes new records (each a fresh document) as the token's owner; the push answer.
    pub fn push_new(&self, token: &str, records: &[fieldsync_sync::Record]) -> serde_json::Value {
        self.push_docs(token, &Self::new_docs(records))
    }

    /// The `docs` entry of an edit of a stored record: loads it as the token's owner sees it,
    /// applies `change`, and returns the difference as one push entry.
    pub fn edit_doc(
        &self,
        token: &str,
        id: fieldsync_sync::DocId,
        change: impl FnOnce(&mut fieldsync_sync::Record),
    ) -> serde_json::Value {
        let (status, body) = self.get(&format!("/v1/records/{id}"), Some(token));
        assert_eq!(status, 200, "{body}");
        let mut record: fieldsync_sync::Record =
            serde_json::from_value(body["record"].clone()).expect("record");
        let (_, bytes) = self
            .rt
            .block_on(self.store.readable_doc(
                &fieldsync_sync::Caller {
                    tenant: self.tenant_of(token),
                    user: UserId::new(),
                    role: Role::Admin,
                },
                id,
            ))
            .expect("store")
            .expect("stored doc");
        let mut doc = automerge::Automerge::load(&bytes).expect("load");
        doc.set_actor(automerge::ActorId::random());
        let before = doc.get_heads();
        change(&mut record);
        let mut tx = doc.transaction();
        record.write(&mut tx).expect("write");
        tx.commit();
        let changes: Vec<serde_json::Value> = doc
            .get_changes(&before)
            .iter()
            .map(|c| {
                serde_json::to_value(fieldsync_sync::protocol::B64(c.raw_bytes().to_vec()))
                    .expect("b64")
            })
            .collect();
        serde_json::json!({"doc_id": id, "kind": record.kind().as_str(), "changes": changes})
    }

    /// Pushes an edit of a stored record (see [`Harness::edit_doc`]); the push answer.
    pub fn push_edit(
        &self,
        token: &str,
        id: fieldsync_sync::DocId,
        change: impl FnOnce(&mut fieldsync_sync::Record),
    ) -> serde_json::Value {
        let entry = self.edit_doc(token, id, change);
        self.push_docs(token, &serde_json::json!([entry]))
    }

    /// The tenant a token belongs to.
    pub fn tenant_of(&self, token: &str) -> TenantId {
        let (status, me) = self.get("/v1/me", Some(token));
        assert_eq!(status, 200, "{me}");
        me["tenant_id"]
            .as_str()
            .or_else(|| me["tenant"].as_str())
            .expect("tenant id in /v1/me")
            .parse()
            .expect("tenant id")
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

/// Runs each named scenario `fn(Harness)` twice: against the server on SQLite and on
/// PostgreSQL (skipped, with a message, when no PostgreSQL answers and none is required).
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[test]
            fn $name() {
                super::$name($crate::Harness::start());
            })*
        }
        mod on_postgres {
            $(#[test]
            fn $name() {
                if let Some(h) = $crate::Harness::start_postgres() {
                    super::$name(h);
                }
            })*
        }
    };
}

/// Photo bytes: raw chunks and restarts.
impl Harness {
    /// A `PUT` with a raw body and the given content type.
    pub fn put_raw(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, serde_json::Value) {
        let req = self
            .http
            .put(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", content_type);
        Self::finish(req.send(body).expect("request"))
    }

    /// Sends one chunk of a blob's upload: `PUT /v1/blobs/{sha256}?offset=N`.
    pub fn put_chunk(
        &self,
        token: &str,
        sha256: &str,
        offset: u64,
        bytes: &[u8],
    ) -> (u16, serde_json::Value) {
        self.put_raw(
            &format!("/v1/blobs/{sha256}?offset={offset}"),
            token,
            "application/octet-stream",
            bytes,
        )
    }

    /// Stops the server and starts a new one (on a new port; [`Harness::url`] follows) over
    /// the same database and blob directory, letting `configure` change the state first.
    pub fn restart_with(&mut self, configure: impl FnOnce(&mut AppState)) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.stop());
        }
        let server = self.rt.block_on(async {
            let blobs = Self::blob_store(&self.blob_dir, self.s3.as_ref());
            let mut state = AppState::with_blob_store(self.store.clone(), blobs)
                .await
                .expect("state");
            configure(&mut state);
            Server::start(state, "127.0.0.1:0".parse().expect("addr"))
                .await
                .expect("start")
        });
        self.url = server.url();
        self.server = Some(server);
    }

    /// Stops the server and starts a new one over the same database and blob directory.
    pub fn restart(&mut self) {
        self.restart_with(|_| {});
    }

    /// The server's blob store, read from the side (as the photo code would).
    pub fn blobs(&self) -> fieldsync_server::blobs::BlobStore {
        Self::blob_store(&self.blob_dir, self.s3.as_ref())
    }

    /// A tenant's stored blob as the backend holds it, read without the server's code: the
    /// file `<blob_dir>/<tenant>/<aa>/<sha256>`, or the object `<prefix>/<tenant>/<aa>/<sha256>`.
    pub fn stored_blob(&self, tenant: TenantId, sha256: &str) -> Option<Vec<u8>> {
        let rel = format!("{tenant}/{}/{sha256}", &sha256[..2]);
        match &self.s3 {
            None => std::fs::read(self.blob_dir.join(rel)).ok(),
            Some(s3) => s3.object(&format!("{}/{rel}", S3Server::PREFIX)),
        }
    }

    /// Everything kept for a tenant, as paths relative to its part of the store, sorted: the
    /// local files (upload sessions, and blobs and thumbnails with local storage) and, with
    /// S3, the objects under the tenant's prefix.
    pub fn stored_files(&self, tenant: TenantId) -> Vec<String> {
        let dir = self.blob_dir.join(tenant.to_string());
        let mut out: Vec<String> = files_under(&dir)
            .iter()
            .filter_map(|p| p.strip_prefix(&dir).ok())
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .collect();
        if let Some(s3) = &self.s3 {
            let prefix = format!("{}/{tenant}/", S3Server::PREFIX);
            out.extend(
                s3.keys(&prefix)
                    .into_iter()
                    .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned)),
            );
        }
        out.sort();
        out
    }

    /// Nothing at all was kept: no blob directory, and no object in the bucket.
    pub fn nothing_stored(&self) -> bool {
        !self.blob_dir.exists() && self.s3.as_ref().is_none_or(|s3| s3.keys("").is_empty())
    }
}

/// Every file under `dir` (none if it does not exist).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// An S3-compatible server for the tests: moto's (`pip install 'moto[server]'`), started on a
/// free port with one empty bucket, and killed when dropped.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    child: std::process::Child,
    http: ureq::Agent,
    /// A client of its own (moto refuses unsigned reads of objects), to look at the bucket
    /// without the server's code.
    client: Option<object_store::aws::AmazonS3>,
    rt: tokio::runtime::Runtime,
}

impl S3Server {
    pub const BUCKET: &str = "fieldsync-test";
    /// The prefix the server's objects go under (`s3://bucket/prefix`), so keys are checked
    /// to stay under it.
    pub const PREFIX: &str = "photos";

    /// Starts `moto_server` on a free port and makes the bucket. `None`, with a message
    /// starting `SKIPPED:`, when `moto_server` is not installed, unless
    /// `FIELDSYNC_REQUIRE_S3=1`, which makes that a failure.
    pub fn start() -> Option<S3Server> {
        let required = std::env::var("FIELDSYNC_REQUIRE_S3").is_ok_and(|v| v == "1");
        // A `moto_server` that is a shim or wrapper without moto behind it counts as missing.
        static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let installed = *INSTALLED.get_or_init(|| {
            std::process::Command::new("moto_server")
                .arg("--help")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        if !installed {
            assert!(
                !required,
                "FIELDSYNC_REQUIRE_S3=1 but moto_server does not run; pip install 'moto[server]'"
            );
            eprintln!(
                "SKIPPED: photo bytes on S3: moto_server is not installed (pip install 'moto[server]')."
            );
            return None;
        }
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        // A port found free may be taken before moto binds it: then try another.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let spawned = std::process::Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
            let child = match spawned {
                Ok(c) => c,
                Err(e) if !required => {
                    eprintln!(
                        "SKIPPED: photo bytes on S3: moto_server could not be started ({e}); pip install 'moto[server]'."
                    );
                    return None;
                }
                Err(e) => panic!(
                    "FIELDSYNC_REQUIRE_S3=1 but moto_server could not be started ({e}); pip install 'moto[server]'"
                ),
            };
            let mut s3 = S3Server {
                endpoint: format!("http://127.0.0.1:{port}"),
                child,
                http: http.clone(),
                client: None,
                rt: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime"),
            };
            if s3.wait_ready() {
                let resp = s3
                    .http
                    .put(format!("{}/{}", s3.endpoint, Self::BUCKET))
                    .send_empty()
                    .expect("create the bucket");
                assert_eq!(resp.status().as_u16(), 200, "creating the test bucket");
                let mut builder = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(Self::BUCKET)
                    .with_allow_http(true);
                for (k, v) in s3.vars() {
                    builder = builder.with_config(k.to_ascii_lowercase().parse().expect("key"), v);
                }
                s3.client = Some(builder.build().expect("S3 client"));
                return Some(s3);
            }
        }
        panic!("moto_server did not come up on any of five ports");
    }

    /// Stops the server (as an outage would), keeping its port.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port, with the bucket made anew (moto keeps
    /// nothing across a restart).
    pub fn restart(&mut self) {
        self.stop();
        let port = self.endpoint.rsplit(':').next().expect("port").to_owned();
        self.child = std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server");
        assert!(self.wait_ready(), "moto_server came back on port {port}");
        let resp = self
            .http
            .put(format!("{}/{}", self.endpoint, Self::BUCKET))
            .send_empty()
            .expect("create the bucket");
        assert_eq!(resp.status().as_u16(), 200, "creating the test bucket");
    }

    /// Waits until the server answers; false if it exited (its port was taken) or never did.
    fn wait_ready(&mut self) -> bool {
        // Bounded: moto imports in a second or two; a minute means something is wrong.
        for _ in 0..600 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            if let Ok(r) = self.http.get(format!("{}/", self.endpoint)).call()
                && r.status().as_u16() < 500
            {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        false
    }

    /// The blob store URL: `s3://bucket/prefix`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", Self::BUCKET, Self::PREFIX)
    }

    /// The `AWS_*` settings the server is given (moto takes any credentials).
    pub fn vars(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "fieldsync-test"),
            ("AWS_SECRET_ACCESS_KEY", "fieldsync-test-secret"),
            ("AWS_REGION", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn client(&self) -> &object_store::aws::AmazonS3 {
        self.client
            .as_ref()
            .expect("BUG: the client is made at start")
    }

    /// An object's bytes, if it exists.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        use object_store::ObjectStoreExt;
        let key = object_store::path::Path::parse(key).expect("key");
        self.rt.block_on(async {
            match self.client().get(&key).await {
                Ok(got) => Some(got.bytes().await.expect("object body").to_vec()),
                Err(object_store::Error::NotFound { .. }) => None,
                Err(e) => panic!("reading {key} from the test bucket: {e}"),
            }
        })
    }

    /// The keys of the bucket's objects under `prefix` (whole path segments), sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        use futures_util::StreamExt;
        use object_store::ObjectStore;
        let prefix = object_store::path::Path::parse(prefix).expect("prefix");
        let mut keys: Vec<String> = self.rt.block_on(async {
            let mut listing = self.client().list(Some(&prefix));
            let mut keys = Vec::new();
            while let Some(meta) = listing.next().await {
                keys.push(meta.expect("listing the test bucket").location.to_string());
            }
            keys
        });
        keys.sort();
        keys
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs each named scenario `fn(Harness)` with photo bytes in local files and in an
/// S3-compatible store (moto; skipped, with a message, when it is not installed and not
/// required by `FIELDSYNC_REQUIRE_S3=1`). Both on SQLite.
#[macro_export]
macro_rules! on_both_blob_stores {
    ($($name:ident),* $(,)?) => {
        mod on_local_files {
            $(#[test]
            fn $name() {
                super::$name($crate::Harness::start());
            })*
        }
        mod on_s3 {
            $(#[test]
            fn $name() {
                if let Some(h) = $crate::Harness::start_s3() {
                    super::$name(h);
                }
            })*
        }
    };
}

/// `s` (`YYYY-MM-DD HH:MM`) in the time zone `tz`, as ms since the epoch.
pub fn local_ms(tz: &str, s: &str) -> i64 {
    use chrono::TimeZone;
    let tz: chrono_tz::Tz = tz.parse().expect("tz");
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("time");
    tz.from_local_datetime(&naive)
        .earliest()
        .expect("local time")
        .timestamp_millis()
}

/// `s` (`YYYY-MM-DD HH:MM`) in Berlin, as ms since the epoch.
pub fn berlin(s: &str) -> i64 {
    local_ms("Europe/Berlin", s)
}

/// Evidence of a good GPS fix (8 m) at `at`, taken 4 s before and dated by the monotonic clock
/// with a known server offset, as a phone that has synced since its boot makes it.
pub fn good_fix(lat: f64, lon: f64, at: i64) -> fieldsync_sync::Evidence {
    fieldsync_sync::Evidence {
        lat,
        lon,
        accuracy_m: 8.0,
        altitude_m: None,
        provider: fieldsync_sync::Provider::Gps,
        fix_time_ms: at - 4_000,
        mock: false,
        wifi_bssid: None,
        device_time_ms: at,
        monotonic_ms: Some(5_000_000),
        server_offset_ms: Some(at - 5_000_000),
    }
}
