//! Photo bytes: a content-addressed store per tenant, and the resumable upload sessions that
//! fill it.
//!
//! A blob is named by the SHA-256 of its bytes and kept under `<tenant>/<aa>/<sha256>` (`aa` =
//! the first two hex digits, so no directory grows past a few thousand files) in the
//! [`backend`]: the local directory `<root>` by default, or an S3-compatible bucket (`s3://
//! bucket/prefix`) for deployments that outgrow one disk. An upload in progress is always two
//! local files in `<root>/<tenant>/uploads/`: `<sha256>.part` (the bytes received so far,
//! always a prefix of the blob) and `<sha256>.json` (the declared size and type). The session
//! exists exactly as long as the `.json` does.
//!
//! Why it is shaped this way:
//! - **Resumable and idempotent.** The server's progress is the length of the `.part` file and
//!   nothing else, so "how much do you have?" is one `stat`, a retried chunk is skipped up to
//!   what is already held, and a restart loses nothing: every acknowledged chunk was written
//!   and `fsync`ed before the answer. Sessions stay on local disk even with S3, where
//!   appending to an object is not possible.
//! - **Verified.** When the last byte arrives the whole file is hashed; only a file whose
//!   SHA-256 is its name goes to the backend (locally one `rename`, then the directory
//!   `fsync`ed; on S3 one `PUT`, or a multipart upload for a large blob, either of which
//!   makes the object appear whole or not at all). The upload is acknowledged only after
//!   that. A mismatch discards the upload: nothing unverified is ever served.
//! - **Per tenant.** Each tenant has its own namespace and its own copy, even of bytes another
//!   tenant holds: telling tenant B "already complete" because tenant A has a file would tell B
//!   what A has.
//! - **Safe paths and keys.** Paths and object keys are joined only from a tenant UUID (from
//!   the verified token) and a [`BlobHash`] (exactly 64 lower-case hex digits), so no input
//!   can name a file or object outside the tenant's part of the store.
//! - **One writer per blob.** Every operation on (tenant, hash) holds that key's lock for its
//!   whole length, including the file work and the object upload (the guard moves into a
//!   task of its own, so a client that hangs up cannot release the lock while its write is
//!   still running).
//!
//! Post-processing (thumbnails, EXIF) is not done here: [`BlobStore::append`] returns a
//! [`BlobRef`] for a blob it has just stored, and the HTTP layer hands that to
//! [`crate::app::AppState::on_blob_stored`]. The thumbnails are kept in the same backend
//! ([`BlobStore::put_derived`]).

mod backend;

use backend::Backend;
pub use backend::{BlobBody, BlobConfigError, SINGLE_PUT_MAX};
use fieldsync_sync::TenantId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::future::Future;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

/// The largest blob accepted (a phone photo is 2–12 MiB; 40 MiB leaves room for big sensors).
pub const MAX_BLOB_BYTES: u64 = 40 * 1024 * 1024;
/// The largest chunk in one `PUT` (well inside the 16 MiB request limit).
pub const MAX_CHUNK_BYTES: usize = 8 * 1024 * 1024;
/// An upload untouched for this long is abandoned: its partial file is removed by the sweep.
pub const STALE_AFTER: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// A tenant's upload directory is swept at most this often on session creation.
const SWEEP_EVERY: Duration = Duration::from_secs(60 * 60);

/// A blob's name: the SHA-256 of its bytes as 64 lower-case hex digits. Parsing is the only
/// way to make one from input, and it refuses anything else (upper case, `..`, `/`, any other
/// length), so a `BlobHash` is always a safe file name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobHash(String);

impl BlobHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(hex(&Sha256::digest(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for BlobHash {
    type Err = InvalidHash;
    fn from_str(s: &str) -> Result<Self, InvalidHash> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidHash)
        }
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that is not 64 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 as 64 lower-case hex digits")]
pub struct InvalidHash;

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The types a blob may be uploaded as: a photo's image (JPEG, PNG, WebP; not HEIC, which the
/// server cannot decode and phones can all avoid), or a project file (tender documents and
/// drawings: PDF, Word, Excel, DWG, DXF, ZIP, plain text). Only images are processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobMime {
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/webp")]
    Webp,
    #[serde(rename = "application/pdf")]
    Pdf,
    #[serde(rename = "application/vnd.openxmlformats-officedocument.wordprocessingml.document")]
    Docx,
    #[serde(rename = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")]
    Xlsx,
    #[serde(rename = "image/vnd.dwg")]
    Dwg,
    #[serde(rename = "image/vnd.dxf")]
    Dxf,
    #[serde(rename = "application/zip")]
    Zip,
    #[serde(rename = "text/plain")]
    Text,
}

impl BlobMime {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobMime::Jpeg => "image/jpeg",
            BlobMime::Png => "image/png",
            BlobMime::Webp => "image/webp",
            BlobMime::Pdf => "application/pdf",
            BlobMime::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            BlobMime::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            BlobMime::Dwg => "image/vnd.dwg",
            BlobMime::Dxf => "image/vnd.dxf",
            BlobMime::Zip => "application/zip",
            BlobMime::Text => "text/plain",
        }
    }

    /// A photo's image type (processed into thumbnails on upload).
    pub fn is_image(self) -> bool {
        matches!(self, BlobMime::Jpeg | BlobMime::Png | BlobMime::Webp)
    }

    /// Every type, for messages.
    pub const FILE_TYPES: &'static str =
        "PDF, Word (.docx), Excel (.xlsx), DWG, DXF, ZIP, plain text, JPEG, PNG or WebP";
}

impl FromStr for BlobMime {
    type Err = UnsupportedFormat;
    /// Case and surrounding spaces are ignored, as HTTP media types allow. DWG and DXF are
    /// also known by their older names.
    fn from_str(s: &str) -> Result<Self, UnsupportedFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "image/jpeg" => Ok(BlobMime::Jpeg),
            "image/png" => Ok(BlobMime::Png),
            "image/webp" => Ok(BlobMime::Webp),
            "application/pdf" => Ok(BlobMime::Pdf),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                Ok(BlobMime::Docx)
            }
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => {
                Ok(BlobMime::Xlsx)
            }
            "image/vnd.dwg" | "application/acad" | "application/x-dwg" => Ok(BlobMime::Dwg),
            "image/vnd.dxf" | "application/dxf" => Ok(BlobMime::Dxf),
            "application/zip" => Ok(BlobMime::Zip),
            "text/plain" => Ok(BlobMime::Text),
            _ => Err(UnsupportedFormat),
        }
    }
}

/// A media type the server does not store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a photo or project file type")]
pub struct UnsupportedFormat;

/// Where an upload stands, as the phone is told it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadState {
    pub sha256: String,
    /// The blob's size in bytes.
    pub size: u64,
    /// Bytes the server holds, contiguous from 0: the next chunk starts here.
    pub received: u64,
    /// The blob is stored and verified; nothing more to send.
    pub complete: bool,
}

impl UploadState {
    fn complete(hash: &BlobHash, size: u64) -> Self {
        Self {
            sha256: hash.to_string(),
            size,
            received: size,
            complete: true,
        }
    }
}

/// A blob just stored and verified: what post-processing needs to find it (read it back with
/// [`BlobStore::read`]; blobs are never rewritten).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRef {
    pub tenant: TenantId,
    pub sha256: BlobHash,
    pub size: u64,
    /// The type the phone declared (not yet checked against the bytes).
    pub mime: BlobMime,
}

/// Why a blob operation failed. All but [`BlobError::Io`] and [`BlobError::Task`] are the
/// client's doing.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("a blob of {size} bytes is larger than the {MAX_BLOB_BYTES}-byte limit")]
    TooLarge { size: u64 },
    #[error("a blob must have at least one byte")]
    Empty,
    #[error("a chunk of {len} bytes is larger than the {MAX_CHUNK_BYTES}-byte limit")]
    ChunkTooLarge { len: usize },
    #[error("size {declared} was declared, but the upload in progress is for {size} bytes")]
    SizeMismatch { declared: u64, size: u64 },
    #[error("a chunk ending at byte {end} runs past the blob's {size} bytes")]
    PastEnd { end: u64, size: u64 },
    #[error("a chunk at offset {offset} leaves a gap after the {received} bytes received")]
    OffsetMismatch { offset: u64, received: u64 },
    #[error("no upload of this blob is in progress")]
    NoUpload,
    #[error("the bytes received hash to {actual}, not to the declared name")]
    HashMismatch { actual: BlobHash },
    #[error("blob storage: {step} {}: {source}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob storage: {step} '{key}': {source}")]
    Backend {
        step: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("blob storage task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

type Result<T, E = BlobError> = std::result::Result<T, E>;

/// Attaches the failed step and path to an I/O error.
trait IoStep<T> {
    fn step(self, step: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoStep<T> for io::Result<T> {
    fn step(self, step: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| BlobError::Io {
            step,
            path: path.to_owned(),
            source,
        })
    }
}

/// What an upload session records besides its bytes.
#[derive(Serialize, Deserialize)]
struct SessionMeta {
    size: u64,
    mime: BlobMime,
}

/// The local files of one (tenant, hash)'s upload session.
struct Paths {
    tenant: TenantId,
    hash: BlobHash,
    /// `<root>/<tenant>/uploads/`
    uploads: PathBuf,
    /// `<root>/<tenant>/uploads/<sha256>.part`
    part: PathBuf,
    /// `<root>/<tenant>/uploads/<sha256>.json`
    meta: PathBuf,
}

/// The blob store: upload sessions in local files under one root directory, finished blobs in
/// the [`Backend`] (the same directory by default, or an S3 bucket). Directories are made on
/// first write, so a store nobody uploads to leaves no trace.
pub struct BlobStore {
    root: PathBuf,
    backend: Arc<Backend>,
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    swept: Mutex<HashMap<TenantId, Instant>>,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The backend's Display names the directory or bucket, never credentials.
        f.debug_struct("BlobStore")
            .field("root", &self.root)
            .field("backend", &self.backend.to_string())
            .finish_non_exhaustive()
    }
}

/// What one locked operation works with: the session's files and the backend.
struct Ctx {
    p: Arc<Paths>,
    backend: Arc<Backend>,
}

/// Runs blocking file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work).await?
}

impl BlobStore {
    /// A store of local files rooted at `root` (created when the first upload starts).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self::with_backend(root.clone(), Backend::Local { root })
    }

    /// A store whose finished blobs and thumbnails live in the S3 bucket named by `url`
    /// (`s3://bucket/prefix`), with upload sessions under the local directory `root`.
    /// `vars` are the `AWS_*` settings (endpoint, credentials, region), usually
    /// `std::env::vars()`. Nothing is contacted here: see [`BlobStore::check`].
    pub fn s3(
        root: impl Into<PathBuf>,
        url: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, BlobConfigError> {
        Ok(Self::with_backend(
            root.into(),
            backend::s3_backend(url, vars)?,
        ))
    }

    fn with_backend(root: PathBuf, backend: Backend) -> Self {
        Self {
            root,
            backend: Arc::new(backend),
            locks: Mutex::default(),
            swept: Mutex::default(),
        }
    }

    /// The local directory of upload sessions (and of blobs, for the local backend).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where finished blobs live, for logs: a directory or `s3://bucket/prefix`.
    pub fn location(&self) -> String {
        self.backend.to_string()
    }

    /// Where one blob is (or would be) kept: its file path or its object key.
    pub fn blob_location(&self, tenant: TenantId, hash: &BlobHash) -> String {
        self.backend.blob_location(tenant, hash)
    }

    /// Checks that the backend can be reached (for S3: the bucket exists and the credentials
    /// are accepted). Run once at startup, so a wrong configuration stops the server there
    /// rather than failing the first upload.
    pub async fn check(&self) -> Result<()> {
        self.backend.check().await
    }

    fn paths(&self, tenant: TenantId, hash: &BlobHash) -> Paths {
        // Both parts are validated: a UUID's canonical form and 64 hex digits.
        let uploads = self.root.join(tenant.as_string()).join("uploads");
        Paths {
            tenant,
            hash: hash.clone(),
            part: uploads.join(format!("{hash}.part")),
            meta: uploads.join(format!("{hash}.json")),
            uploads,
        }
    }

    /// The lock of one (tenant, hash). Entries are weak, so finished keys cost nothing but a
    /// map slot, and the slots of dead keys are dropped when the map grows.
    fn lock_for(&self, tenant: TenantId, hash: &BlobHash) -> Arc<tokio::sync::Mutex<()>> {
        let key = format!("{tenant}/{hash}");
        let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lock) = map.get(&key).and_then(Weak::upgrade) {
            return lock;
        }
        if map.len() >= 1024 {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(key, Arc::downgrade(&lock));
        lock
    }

    /// Runs `work` as its own task while holding the (tenant, hash) lock. The guard moves
    /// into the task, and the task runs to its end even if the request that started it is
    /// dropped (a client hanging up), so the lock is never released under a write or an
    /// object upload that is still going on.
    async fn locked<T, F>(
        &self,
        tenant: TenantId,
        hash: &BlobHash,
        work: impl FnOnce(Ctx) -> F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let guard = self.lock_for(tenant, hash).lock_owned().await;
        let ctx = Ctx {
            p: Arc::new(self.paths(tenant, hash)),
            backend: self.backend.clone(),
        };
        let fut = work(ctx);
        tokio::spawn(async move {
            let _guard = guard;
            fut.await
        })
        .await?
    }

    /// Starts or resumes an upload, or says the blob is already stored. `size` is checked
    /// against the limit before anything touches the disk.
    pub async fn begin(
        &self,
        tenant: TenantId,
        hash: &BlobHash,
        size: u64,
        mime: BlobMime,
    ) -> Result<UploadState> {
        Ok(self.start(tenant, hash, size, mime).await?.0)
    }

    /// [`BlobStore::begin`], also returning the [`BlobRef`] of a blob this call stored: an
    /// upload whose bytes had all arrived but that was not stored then (the server stopped,
    /// or the backend could not be reached) is finished here, and must be announced like one
    /// finished by its last chunk.
    pub async fn start(
        &self,
        tenant: TenantId,
        hash: &BlobHash,
        size: u64,
        mime: BlobMime,
    ) -> Result<(UploadState, Option<BlobRef>)> {
        if size == 0 {
            return Err(BlobError::Empty);
        }
        if size > MAX_BLOB_BYTES {
            return Err(BlobError::TooLarge { size });
        }
        self.sweep_tenant_if_due(tenant).await;
        self.locked(tenant, hash, move |c| begin_locked(c, size, mime))
            .await
    }

    /// Where an upload stands; `None` if the tenant has neither the blob nor an upload of it.
    pub async fn status(&self, tenant: TenantId, hash: &BlobHash) -> Result<Option<UploadState>> {
        self.locked(tenant, hash, |c| async move {
            if let Some(size) = c.backend.size(c.p.tenant, &c.p.hash).await? {
                return Ok(Some(UploadState::complete(&c.p.hash, size)));
            }
            let p = c.p.clone();
            blocking(move || {
                let Some(meta) = read_meta(&p.meta)? else {
                    return Ok(None);
                };
                let received = part_len(&p.part)?.unwrap_or(0).min(meta.size);
                Ok(Some(UploadState {
                    sha256: p.hash.to_string(),
                    size: meta.size,
                    received,
                    complete: false,
                }))
            })
            .await
        })
        .await
    }

    /// Appends the chunk `bytes` that starts at `offset` of the blob. Bytes the server already
    /// holds (before `received`) are skipped, so a retried chunk changes nothing; a chunk that
    /// would leave a gap is refused with [`BlobError::OffsetMismatch`]. What is written is
    /// `fsync`ed before this returns.
    ///
    /// When the last byte arrives the blob is verified and stored in the backend, and the
    /// answer carries its [`BlobRef`] (only on that call: a repeat finds it complete and
    /// returns `None`).
    pub async fn append(
        &self,
        tenant: TenantId,
        hash: &BlobHash,
        offset: u64,
        bytes: impl AsRef<[u8]> + Send + 'static,
    ) -> Result<(UploadState, Option<BlobRef>)> {
        let len = bytes.as_ref().len();
        if len > MAX_CHUNK_BYTES {
            return Err(BlobError::ChunkTooLarge { len });
        }
        self.locked(tenant, hash, move |c| append_locked(c, offset, bytes))
            .await
    }

    /// Whether the tenant holds the blob (verified and stored).
    pub async fn contains(&self, tenant: TenantId, hash: &BlobHash) -> Result<bool> {
        Ok(self.size(tenant, hash).await?.is_some())
    }

    /// The stored blob's size, if the tenant holds it.
    pub async fn size(&self, tenant: TenantId, hash: &BlobHash) -> Result<Option<u64>> {
        self.backend.size(tenant, hash).await
    }

    /// A stored blob as a stream of bytes with its size (for downloads, once the caller has
    /// checked that the asker may see the photo). `None` if the tenant does not hold it.
    pub async fn open(&self, tenant: TenantId, hash: &BlobHash) -> Result<Option<BlobBody>> {
        self.backend.open(tenant, hash).await
    }

    /// Reads a stored blob whole (at most [`MAX_BLOB_BYTES`]). `None` if the tenant does not
    /// hold it.
    pub async fn read(&self, tenant: TenantId, hash: &BlobHash) -> Result<Option<Vec<u8>>> {
        self.backend.read(tenant, hash).await
    }

    /// Stores a file made from the blob `hash` (the thumbnail with long side `side`) beside
    /// it, replacing an earlier one.
    pub async fn put_derived(
        &self,
        tenant: TenantId,
        hash: &BlobHash,
        side: u32,
        bytes: Vec<u8>,
    ) -> Result<()> {
        self.backend.put_derived(tenant, hash, side, bytes).await
    }

    /// A file made from the blob `hash` (see [`BlobStore::put_derived`]); `None` if there is
    /// none (yet).
    pub async fn read_derived(
        &self,
        tenant: TenantId,
        hash: &BlobHash,
        side: u32,
    ) -> Result<Option<Vec<u8>>> {
        self.backend.read_derived(tenant, hash, side).await
    }

    /// Removes uploads untouched for `older_than`, of every tenant; the count removed. Run at
    /// startup. An upload busy right now is left alone.
    pub async fn sweep_stale(&self, older_than: Duration) -> Result<usize> {
        let root = self.root.clone();
        let tenants = tokio::task::spawn_blocking(move || -> Result<Vec<TenantId>> {
            let entries = match fs::read_dir(&root) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e).step("listing", &root),
            };
            Ok(entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect())
        })
        .await??;
        let mut removed = 0;
        for tenant in tenants {
            removed += self.sweep_tenant(tenant, older_than).await?;
        }
        Ok(removed)
    }

    /// Removes one tenant's uploads untouched for `older_than`; the count removed.
    pub async fn sweep_tenant(&self, tenant: TenantId, older_than: Duration) -> Result<usize> {
        let uploads = self.root.join(tenant.as_string()).join("uploads");
        let cutoff = SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let dir = uploads.clone();
        let stale = tokio::task::spawn_blocking(move || stale_uploads(&dir, cutoff)).await??;
        let mut removed = 0;
        for hash in stale {
            // Busy means in use: not stale after all.
            let Ok(guard) = self.lock_for(tenant, &hash).try_lock_owned() else {
                continue;
            };
            let p = self.paths(tenant, &hash);
            let gone = tokio::task::spawn_blocking(move || -> Result<bool> {
                let _guard = guard;
                if last_touched(&p)?.is_some_and(|t| t < cutoff) {
                    discard(&p)?;
                    Ok(true)
                } else {
                    Ok(false)
                }
            })
            .await??;
            removed += usize::from(gone);
        }
        Ok(removed)
    }

    /// Sweeps the tenant's uploads at most once per [`SWEEP_EVERY`]; a failure is logged, not
    /// returned, since the upload that triggered it can go ahead.
    async fn sweep_tenant_if_due(&self, tenant: TenantId) {
        {
            let mut swept = self.swept.lock().unwrap_or_else(|e| e.into_inner());
            if swept
                .get(&tenant)
                .is_some_and(|t| t.elapsed() < SWEEP_EVERY)
            {
                return;
            }
            if swept.len() >= 100_000 {
                swept.clear();
            }
            swept.insert(tenant, Instant::now());
        }
        match self.sweep_tenant(tenant, STALE_AFTER).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(%tenant, removed = n, "swept abandoned uploads"),
            Err(e) => tracing::warn!(%tenant, error = %e, "sweeping abandoned uploads failed"),
        }
    }
}

/// The size of a stored blob, if there is one.
fn stored_size(path: &Path) -> Result<Option<u64>> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(Some(m.len())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).step("reading metadata of", path),
    }
}

fn part_len(path: &Path) -> Result<Option<u64>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).step("reading metadata of", path),
    }
}

fn read_meta(path: &Path) -> Result<Option<SessionMeta>> {
    match fs::read(path) {
        // A meta file that does not parse was never written by this code (it is replaced
        // atomically); treat the session as gone rather than fail every request for it.
        Ok(b) => Ok(serde_json::from_slice(&b).ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).step("reading", path),
    }
}

/// Makes `dir` (and its parents) and, for each directory made, `fsync`s its parent so the new
/// entry survives a crash.
fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        ensure_dir(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e).step("creating", dir),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    // The parent of a relative path's first component is "".
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .step("syncing", dir)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).step("removing", path),
    }
}

/// Ends a session and drops its bytes. The `.json` goes first: without it there is no
/// session, whatever else is left.
fn discard(p: &Paths) -> Result<()> {
    remove_if_present(&p.meta)?;
    remove_if_present(&p.part)?;
    if p.uploads.is_dir() {
        sync_dir(&p.uploads)?;
    }
    Ok(())
}

async fn begin_locked(c: Ctx, size: u64, mime: BlobMime) -> Result<(UploadState, Option<BlobRef>)> {
    if let Some(stored) = c.backend.size(c.p.tenant, &c.p.hash).await? {
        // The same bytes again cost nothing. The stored size is the truth: a hash names one
        // content, whatever size was declared.
        return Ok((UploadState::complete(&c.p.hash, stored), None));
    }
    let p = c.p.clone();
    let (meta, received) =
        blocking(move || Ok((read_meta(&p.meta)?, part_len(&p.part)?.unwrap_or(0)))).await?;
    if let Some(meta) = meta {
        if meta.size != size {
            return Err(BlobError::SizeMismatch {
                declared: size,
                size: meta.size,
            });
        }
        if received == size {
            // All bytes arrived but the server stopped before storing them: finish now. A
            // mismatch here starts over below rather than failing the phone's resume.
            match finish(&c, &meta).await {
                Ok(stored) => return Ok((UploadState::complete(&c.p.hash, size), Some(stored))),
                Err(BlobError::HashMismatch { .. }) => {}
                Err(e) => return Err(e),
            }
        } else if received < size {
            return Ok((
                UploadState {
                    sha256: c.p.hash.to_string(),
                    size,
                    received,
                    complete: false,
                },
                None,
            ));
        } else {
            let p = c.p.clone();
            blocking(move || discard(&p)).await?;
        }
    }
    let p = c.p.clone();
    Ok((blocking(move || new_session(&p, size, mime)).await?, None))
}

/// Starts a session: the empty `.part` first, then the `.json` that makes the session exist.
fn new_session(p: &Paths, size: u64, mime: BlobMime) -> Result<UploadState> {
    ensure_dir(&p.uploads)?;
    fs::File::create(&p.part)
        .and_then(|f| f.sync_all())
        .step("creating", &p.part)?;
    let tmp = p.meta.with_extension("json.tmp");
    let body = serde_json::to_vec(&SessionMeta { size, mime })
        .expect("BUG: session metadata always serialises");
    fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(&body)?;
            f.sync_all()
        })
        .step("writing", &tmp)?;
    fs::rename(&tmp, &p.meta).step("renaming", &tmp)?;
    sync_dir(&p.uploads)?;
    Ok(UploadState {
        sha256: p.hash.to_string(),
        size,
        received: 0,
        complete: false,
    })
}

/// What writing a chunk left: more to come, or every byte received.
enum Appended {
    Partial(UploadState),
    Full(SessionMeta),
}

async fn append_locked(
    c: Ctx,
    offset: u64,
    bytes: impl AsRef<[u8]> + Send + 'static,
) -> Result<(UploadState, Option<BlobRef>)> {
    if let Some(stored) = c.backend.size(c.p.tenant, &c.p.hash).await? {
        // Stored already (by this phone, whose last answer was lost, or by another): done.
        return Ok((UploadState::complete(&c.p.hash, stored), None));
    }
    let p = c.p.clone();
    match blocking(move || append_part(&p, offset, bytes.as_ref())).await? {
        Appended::Partial(st) => Ok((st, None)),
        Appended::Full(meta) => {
            let stored = finish(&c, &meta).await?;
            Ok((UploadState::complete(&c.p.hash, meta.size), Some(stored)))
        }
    }
}

/// Writes a chunk to the session's `.part` and syncs it.
fn append_part(p: &Paths, offset: u64, bytes: &[u8]) -> Result<Appended> {
    let meta = read_meta(&p.meta)?.ok_or(BlobError::NoUpload)?;
    let mut file = match fs::OpenOptions::new().read(true).write(true).open(&p.part) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            discard(p)?;
            return Err(BlobError::NoUpload);
        }
        Err(e) => return Err(e).step("opening", &p.part),
    };
    let mut received = file.metadata().step("reading metadata of", &p.part)?.len();
    if received > meta.size {
        // Cannot happen through this code; a file that has it cannot be trusted.
        drop(file);
        discard(p)?;
        return Err(BlobError::NoUpload);
    }
    if offset > received {
        return Err(BlobError::OffsetMismatch { offset, received });
    }
    let end = offset + bytes.len() as u64;
    if end > meta.size {
        return Err(BlobError::PastEnd {
            end,
            size: meta.size,
        });
    }
    if end > received {
        // Lossless: `received - offset` < `bytes.len()` ≤ MAX_CHUNK_BYTES.
        let skip = (received - offset) as usize;
        file.seek(io::SeekFrom::Start(received))
            .and_then(|_| file.write_all(&bytes[skip..]))
            .and_then(|()| file.sync_data())
            .step("appending to", &p.part)?;
        received = end;
    }
    drop(file);
    if received < meta.size {
        return Ok(Appended::Partial(UploadState {
            sha256: p.hash.to_string(),
            size: meta.size,
            received,
            complete: false,
        }));
    }
    Ok(Appended::Full(meta))
}

/// Verifies a fully received upload and stores it in the backend; on a mismatch the upload
/// is discarded. The session ends (its `.json` removed) only once the backend holds the
/// blob, so a failure or a crash before that leaves a complete session that the next
/// `begin` or chunk finishes.
async fn finish(c: &Ctx, meta: &SessionMeta) -> Result<BlobRef> {
    let p = c.p.clone();
    blocking(move || verify(&p)).await?;
    c.backend
        .store_blob(c.p.tenant, &c.p.hash, &c.p.part, meta.size)
        .await?;
    let p = c.p.clone();
    blocking(move || {
        // Local: the rename took the `.part` away already. S3: it is a copy now.
        remove_if_present(&p.meta)?;
        remove_if_present(&p.part)?;
        sync_dir(&p.uploads)
    })
    .await?;
    Ok(BlobRef {
        tenant: c.p.tenant,
        sha256: c.p.hash.clone(),
        size: meta.size,
        mime: meta.mime,
    })
}

/// Hashes the `.part`; a file whose SHA-256 is not its name is discarded with its session.
fn verify(p: &Paths) -> Result<()> {
    let mut file = fs::File::open(&p.part).step("opening", &p.part)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).step("reading", &p.part)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    drop(file);
    let actual = BlobHash(hex(&hasher.finalize()));
    if actual != p.hash {
        discard(p)?;
        return Err(BlobError::HashMismatch { actual });
    }
    Ok(())
}

/// When the session was last written to (the newer of its files), if it has any file.
fn last_touched(p: &Paths) -> Result<Option<SystemTime>> {
    let mut newest = None;
    for path in [&p.part, &p.meta] {
        match fs::metadata(path).and_then(|m| m.modified()) {
            Ok(t) => newest = newest.max(Some(t)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).step("reading metadata of", path),
        }
    }
    Ok(newest)
}

/// The hashes of the uploads in `dir` last touched before `cutoff` (including leftovers of a
/// session whose `.json` was never written).
fn stale_uploads(dir: &Path, cutoff: SystemTime) -> Result<Vec<BlobHash>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).step("listing", dir),
    };
    let mut newest: HashMap<BlobHash, SystemTime> = HashMap::new();
    for entry in entries {
        let entry = entry.step("listing", dir)?;
        let name = entry.file_name();
        let Some(hash) = name
            .to_str()
            .and_then(|n| n.split_once('.'))
            .and_then(|(stem, _)| stem.parse::<BlobHash>().ok())
        else {
            continue;
        };
        let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        let t = newest.entry(hash).or_insert(modified);
        *t = (*t).max(modified);
    }
    Ok(newest
        .into_iter()
        .filter(|(_, t)| *t < cutoff)
        .map(|(h, _)| h)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::new(dir.path().join("blobs"));
        (dir, store)
    }

    #[test]
    fn hash_parsing_refuses_anything_but_64_lower_case_hex() {
        let good = BlobHash::of(b"x");
        assert_eq!(good.as_str().parse::<BlobHash>(), Ok(good.clone()));
        for bad in [
            "",
            "..",
            "../etc/passwd",
            &good.as_str().to_uppercase(),
            &good.as_str()[..63],
            &format!("{good}0"),
            &format!("../{}", &good.as_str()[3..]),
            &format!("{}/{}", &good.as_str()[..31], &good.as_str()[32..]),
            &format!("{}g", &good.as_str()[..63]),
        ] {
            assert_eq!(bad.parse::<BlobHash>(), Err(InvalidHash), "{bad}");
        }
    }

    #[test]
    fn mime_accepts_jpeg_png_webp_only() {
        assert_eq!(" Image/JPEG ".parse(), Ok(BlobMime::Jpeg));
        assert_eq!("image/png".parse(), Ok(BlobMime::Png));
        assert_eq!("image/webp".parse(), Ok(BlobMime::Webp));
        for bad in ["image/heic", "image/heif", "image/gif", "image/jpg", ""] {
            assert_eq!(bad.parse::<BlobMime>(), Err(UnsupportedFormat), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_blob_uploaded_in_chunks_is_stored_under_its_hash() {
        let (_dir, store) = store();
        let tenant = TenantId::new();
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let hash = BlobHash::of(&bytes);
        let st = store
            .begin(tenant, &hash, bytes.len() as u64, BlobMime::Jpeg)
            .await
            .expect("begin");
        assert_eq!((st.received, st.complete), (0, false));
        let (st, done) = store
            .append(tenant, &hash, 0, bytes[..60_000].to_vec())
            .await
            .expect("first");
        assert_eq!((st.received, done), (60_000, None));
        // A retry overlapping what is held only adds what is new.
        let (st, done) = store
            .append(tenant, &hash, 50_000, bytes[50_000..].to_vec())
            .await
            .expect("rest");
        assert!(st.complete);
        let stored = done.expect("stored now");
        assert_eq!((stored.size, stored.mime), (100_000, BlobMime::Jpeg));
        let path = store
            .root()
            .join(tenant.as_string())
            .join(&hash.as_str()[..2])
            .join(hash.as_str());
        assert_eq!(store.blob_location(tenant, &hash), path.to_string_lossy());
        assert_eq!(fs::read(&path).expect("the file"), bytes);
        assert_eq!(store.read(tenant, &hash).await.expect("read"), Some(bytes));
        assert!(
            !store
                .root()
                .join(tenant.as_string())
                .join("uploads")
                .join(format!("{hash}.json"))
                .exists()
        );
        // Asked again, nothing new is stored or announced.
        let (st, done) = store
            .append(tenant, &hash, 0, Vec::new())
            .await
            .expect("again");
        assert!(st.complete && done.is_none());
    }

    #[tokio::test]
    async fn wrong_bytes_are_discarded_at_the_end() {
        let (_dir, store) = store();
        let tenant = TenantId::new();
        let hash = BlobHash::of(b"right");
        store
            .begin(tenant, &hash, 5, BlobMime::Png)
            .await
            .expect("begin");
        let err = store
            .append(tenant, &hash, 0, b"wrong".to_vec())
            .await
            .expect_err("mismatch");
        assert!(matches!(err, BlobError::HashMismatch { .. }), "{err}");
        assert_eq!(store.status(tenant, &hash).await.expect("status"), None);
        assert!(!store.contains(tenant, &hash).await.expect("contains"));
    }

    #[tokio::test]
    async fn a_fully_received_upload_left_unfinished_is_finished_on_resume() {
        let (_dir, store) = store();
        let tenant = TenantId::new();
        let hash = BlobHash::of(b"hello");
        store
            .begin(tenant, &hash, 5, BlobMime::Jpeg)
            .await
            .expect("begin");
        // As if the server died between the last write and the rename.
        let part = store
            .root()
            .join(tenant.as_string())
            .join("uploads")
            .join(format!("{hash}.part"));
        std::fs::write(&part, b"hello").expect("write");
        let st = store
            .begin(tenant, &hash, 5, BlobMime::Jpeg)
            .await
            .expect("resume");
        assert!(st.complete);
        assert_eq!(
            store.read(tenant, &hash).await.expect("read").as_deref(),
            Some(&b"hello"[..])
        );
    }

    #[tokio::test]
    async fn uploads_untouched_for_a_week_are_swept_and_fresh_ones_kept() {
        let (_dir, store) = store();
        let tenant = TenantId::new();
        let (old, fresh) = (BlobHash::of(b"old"), BlobHash::of(b"fresh"));
        for h in [&old, &fresh] {
            store
                .begin(tenant, h, 3, BlobMime::Jpeg)
                .await
                .expect("begin");
            store
                .append(tenant, h, 0, b"o".to_vec())
                .await
                .expect("append");
        }
        let uploads = store.root().join(tenant.as_string()).join("uploads");
        let eight_days_ago = SystemTime::now() - Duration::from_secs(8 * 24 * 3600);
        for ext in ["part", "json"] {
            fs::File::options()
                .write(true)
                .open(uploads.join(format!("{old}.{ext}")))
                .and_then(|f| f.set_modified(eight_days_ago))
                .expect("age");
        }
        assert_eq!(store.sweep_stale(STALE_AFTER).await.expect("sweep"), 1);
        assert_eq!(store.status(tenant, &old).await.expect("status"), None);
        assert_eq!(
            store
                .status(tenant, &fresh)
                .await
                .expect("status")
                .map(|s| s.received),
            Some(1)
        );
    }

    #[tokio::test]
    async fn a_store_nobody_uploads_to_makes_no_directory() {
        let (_dir, store) = store();
        let tenant = TenantId::new();
        let hash = BlobHash::of(b"x");
        assert_eq!(store.status(tenant, &hash).await.expect("status"), None);
        assert!(matches!(
            store.append(tenant, &hash, 0, b"x".to_vec()).await,
            Err(BlobError::NoUpload)
        ));
        assert_eq!(store.sweep_stale(STALE_AFTER).await.expect("sweep"), 0);
        assert!(!store.root().exists());
    }
}
