//! The running server: shared state, the router with its limits, graceful shutdown, and the
//! admin operations the CLI and the demo seeding share.

use crate::auth::{self, Tokens};
use crate::blobs::{BlobRef, BlobStore};
use crate::store::{Store, StoreError, Tenant, User};
use fieldsync_sync::{DeviceId, Role, TenantId, UserId};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Something live connections must hear about.
#[derive(Clone, Debug)]
pub enum LiveEvent {
    /// The tenant's log advanced to `seq` with something that concerns `audience` (and admins).
    Changed {
        tenant: TenantId,
        seq: i64,
        audience: Arc<Vec<UserId>>,
    },
    /// A device, or every device of a user, lost access.
    Revoked {
        tenant: TenantId,
        device: Option<DeviceId>,
        user: Option<UserId>,
        reason: String,
    },
}

/// Request and byte counters since start, served at `GET /metrics` (counts only, nothing about
/// any tenant). The benchmark reads them to report requests and bytes on the wire.
#[derive(Default, Debug)]
pub struct Metrics {
    pub requests: std::sync::atomic::AtomicU64,
    pub bytes_in: std::sync::atomic::AtomicU64,
    pub bytes_out: std::sync::atomic::AtomicU64,
}

/// Failed logins per account (tenant slug + email): after [`LoginGuard::MAX_FAILURES`] within
/// [`LoginGuard::WINDOW`], further attempts are refused until the window has passed, so a
/// password cannot be guessed at speed. Kept in memory and bounded: when it is full, the oldest
/// windows are forgotten first.
#[derive(Default, Debug)]
pub struct LoginGuard {
    failures: std::sync::Mutex<std::collections::HashMap<String, (u32, std::time::Instant)>>,
}

impl LoginGuard {
    pub const MAX_FAILURES: u32 = 5;
    pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);
    const MAX_ENTRIES: usize = 100_000;

    fn key(tenant: &str, email: &str) -> String {
        format!("{}\u{0}{}", tenant.trim(), email.trim().to_lowercase())
    }

    /// Seconds to wait, if this account is locked out now.
    pub fn locked_for(&self, tenant: &str, email: &str) -> Option<u64> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (count, since) = map.get(&Self::key(tenant, email))?;
        let left = Self::WINDOW.checked_sub(since.elapsed())?;
        (*count >= Self::MAX_FAILURES).then(|| left.as_secs().max(1))
    }

    pub fn failed(&self, tenant: &str, email: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX_ENTRIES {
            map.retain(|_, (_, since)| since.elapsed() < Self::WINDOW);
            if map.len() >= Self::MAX_ENTRIES {
                map.clear();
            }
        }
        let entry = map
            .entry(Self::key(tenant, email))
            .or_insert((0, std::time::Instant::now()));
        if entry.1.elapsed() >= Self::WINDOW {
            *entry = (0, std::time::Instant::now());
        }
        entry.0 += 1;
    }

    pub fn succeeded(&self, tenant: &str, email: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Self::key(tenant, email));
    }
}

/// Called once for each blob as soon as it is verified and stored (not for a blob that was
/// already there), with the state to reach the store and the blob. It runs on the request
/// that stored the blob, before the answer: return quickly and spawn anything slow (decoding,
/// thumbnails). The phone has been told nothing yet, and will be told "complete" whatever
/// the hook does.
pub type BlobHook = Arc<dyn Fn(&AppState, BlobRef) + Send + Sync>;

/// State shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub tokens: Tokens,
    pub live: broadcast::Sender<LiveEvent>,
    pub metrics: Arc<Metrics>,
    pub login_guard: Arc<LoginGuard>,
    /// Photo bytes (see `crate::blobs`).
    pub blobs: Arc<BlobStore>,
    /// Post-processing of newly stored blobs, if any.
    pub on_blob_stored: Option<BlobHook>,
}

impl AppState {
    /// State whose blob store is a directory of this process under the system's temp dir
    /// (made only if something is uploaded): for tools and benchmarks that store no photos.
    /// A server gives its blob directory with [`AppState::with_blobs`].
    pub async fn new(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let dir = std::env::temp_dir().join(format!("fieldsync-blobs-{}", std::process::id()));
        Self::with_blobs(store, dir).await
    }

    /// State with photo bytes stored under `blob_dir`.
    pub async fn with_blobs(
        store: Arc<dyn Store>,
        blob_dir: impl Into<std::path::PathBuf>,
    ) -> Result<Self, StoreError> {
        Self::with_blob_store(store, BlobStore::new(blob_dir)).await
    }

    /// State with photo bytes kept by `blobs` (local files or S3, see `crate::blobs`).
    pub async fn with_blob_store(
        store: Arc<dyn Store>,
        blobs: BlobStore,
    ) -> Result<Self, StoreError> {
        let secret = store.signing_secret().await?;
        let (live, _) = broadcast::channel(1024);
        Ok(Self {
            store,
            tokens: Tokens::new(&secret, auth::ACCESS_TTL_SECS),
            live,
            metrics: Arc::default(),
            login_guard: Arc::default(),
            blobs: Arc::new(blobs),
            // Thumbnails, EXIF and the perceptual hash of every photo as its bytes arrive.
            on_blob_stored: Some(crate::photo_media::hook()),
        })
    }

    /// Tells live connections; nobody listening is fine.
    pub fn announce(&self, event: LiveEvent) {
        let _ = self.live.send(event);
    }

    /// Tells the live connections a push concerns that it appended to the log (if it did).
    pub fn announce_push(&self, tenant: fieldsync_sync::TenantId, out: &crate::store::PushOutcome) {
        if let Some(seq) = out.new_seq {
            self.announce(LiveEvent::Changed {
                tenant,
                seq,
                audience: Arc::new(out.audience.clone()),
            });
        }
    }
}

/// A server bound to a port, serving until the shutdown future resolves.
pub struct Server {
    pub addr: SocketAddr,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    /// Binds `listen` (port 0 for any free port) and starts serving in the background.
    pub async fn start(state: AppState, listen: SocketAddr) -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = crate::http::router(state);
        let handle = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
        });
        Ok(Server {
            addr,
            handle,
            shutdown: Some(tx),
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.handle.await;
    }

    /// Waits until the server ends.
    pub async fn wait(self) -> std::io::Result<()> {
        self.handle
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Why an admin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no tenant '{0}'")]
    NoTenant(String),
    #[error("no user '{0}' in this tenant")]
    NoUser(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn tenant(store: &dyn Store, slug: &str) -> Result<Tenant, AdminError> {
    store
        .tenant_by_slug(slug)
        .await?
        .ok_or_else(|| AdminError::NoTenant(slug.to_owned()))
}

fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 63
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Creates a tenant; the slug is what people type at login.
pub async fn create_tenant(
    store: &dyn Store,
    slug: &str,
    name: Option<&str>,
) -> Result<Tenant, AdminError> {
    if !valid_slug(slug) {
        return Err(AdminError::Invalid(format!(
            "'{slug}' is not a valid tenant slug: use lower-case letters, digits and '-'."
        )));
    }
    Ok(store.create_tenant(slug, name.unwrap_or(slug)).await?)
}

/// Creates a user. A manager given by email must be a manager (or admin) of the same tenant.
pub async fn create_user(
    store: &dyn Store,
    tenant: TenantId,
    email: &str,
    password: &str,
    role: Role,
    manager_email: Option<&str>,
) -> Result<User, AdminError> {
    let email = email.trim().to_lowercase();
    if !email.contains('@') || email.len() > 254 {
        return Err(AdminError::Invalid(format!(
            "'{email}' is not an email address."
        )));
    }
    if password.chars().count() < 8 {
        return Err(AdminError::Invalid(
            "A password needs at least 8 characters.".into(),
        ));
    }
    let manager = match manager_email {
        None => None,
        Some(m) => {
            let m = store
                .user_by_email(tenant, &m.trim().to_lowercase())
                .await?
                .ok_or_else(|| AdminError::NoUser(m.to_owned()))?;
            if m.role != Role::Manager {
                return Err(AdminError::Invalid(format!(
                    "{} is a {}, not a manager.",
                    m.email, m.role
                )));
            }
            Some(m.id)
        }
    };
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| AdminError::Invalid(e.to_string()))?
        .map_err(|e| AdminError::Invalid(format!("cannot hash password: {e}")))?;
    Ok(store
        .create_user(tenant, &email, &hash, role, manager)
        .await?)
}
