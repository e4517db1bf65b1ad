//! Where finished objects live: stored blobs and the files derived from them (thumbnails).
//! Either a local directory (the default) or an S3-compatible bucket through `object_store`.
//!
//! Upload sessions are not here: their partial files stay on local disk in both cases (see
//! the parent module), and only verified bytes are handed to a backend.
//!
//! Keys are built only from a [`TenantId`] (a UUID in canonical form) and a [`BlobHash`]
//! (exactly 64 lower-case hex digits), so the object keys have the same shape as the local
//! paths and no input can name an object outside the tenant's prefix:
//! - blob: `<tenant>/<aa>/<sha256>`
//! - derived: `<tenant>/derived/<sha256>-<side>.jpg`

use super::{BlobError, BlobHash, IoStep, Result, ensure_dir, sync_dir};
use axum::body::Bytes;
use fieldsync_sync::TenantId;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;

/// Blobs up to this size go to S3 in one `PUT`; larger ones as a multipart upload.
pub const SINGLE_PUT_MAX: u64 = 8 * 1024 * 1024;
/// The part size of a multipart upload (S3 wants at least 5 MiB for all but the last part).
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// A stored object's bytes as a stream, with its size (for `Content-Length`).
pub struct BlobBody {
    pub size: u64,
    pub stream: Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>,
}

impl fmt::Debug for BlobBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobBody")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Why a blob store could not be set up from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BlobConfigError {
    #[error(
        "'{0}' is not a blob store URL: write s3://bucket or s3://bucket/prefix (or leave it out for local files)"
    )]
    NotS3(String),
    #[error("the S3 blob store {url} could not be configured: {source}")]
    S3 {
        url: String,
        #[source]
        source: object_store::Error,
    },
}

/// The storage of finished objects.
pub(crate) enum Backend {
    /// Files under `root` (the same directory that holds the upload sessions).
    Local { root: PathBuf },
    /// Objects in `bucket` under `prefix` (empty for the bucket's root).
    S3 {
        store: AmazonS3,
        bucket: String,
        prefix: Key,
    },
}

impl fmt::Display for Backend {
    /// Where the objects are, for logs and errors; never credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Local { root } => write!(f, "directory {}", root.display()),
            Backend::S3 { bucket, prefix, .. } if prefix.as_ref().is_empty() => {
                write!(f, "s3://{bucket}")
            }
            Backend::S3 { bucket, prefix, .. } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Reads S3 settings from `vars` (the `AWS_*` names of the environment: `AWS_ENDPOINT_URL`,
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`, ...) and
/// the bucket and prefix from `url` (`s3://bucket/prefix`). Plain HTTP is allowed when the
/// endpoint named is an `http://` one (a local S3-compatible server), or `AWS_ALLOW_HTTP`.
pub(crate) fn s3_backend(
    url: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> std::result::Result<Backend, BlobConfigError> {
    let Some(rest) = url.strip_prefix("s3://") else {
        return Err(BlobConfigError::NotS3(url.chars().take(200).collect()));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(BlobConfigError::NotS3(url.chars().take(200).collect()));
    }
    let config_err = |source| BlobConfigError::S3 {
        url: url.to_owned(),
        source,
    };
    let prefix = Key::parse(prefix.trim_matches('/')).map_err(|e| config_err(e.into()))?;
    let mut builder = AmazonS3Builder::new();
    let mut plain_http = false;
    for (name, value) in vars {
        let Some(lower) = name.starts_with("AWS_").then(|| name.to_ascii_lowercase()) else {
            continue;
        };
        if matches!(lower.as_str(), "aws_endpoint_url" | "aws_endpoint")
            && value.starts_with("http://")
        {
            plain_http = true;
        }
        if let Ok(key) = lower.parse() {
            builder = builder.with_config(key, value);
        }
    }
    if plain_http {
        builder = builder.with_allow_http(true);
    }
    let store = builder
        .with_bucket_name(bucket)
        .build()
        .map_err(config_err)?;
    Ok(Backend::S3 {
        store,
        bucket: bucket.to_owned(),
        prefix,
    })
}

impl Backend {
    fn blob_path(root: &Path, tenant: TenantId, hash: &BlobHash) -> PathBuf {
        root.join(tenant.as_string())
            .join(&hash.as_str()[..2])
            .join(hash.as_str())
    }

    fn derived_path(root: &Path, tenant: TenantId, hash: &BlobHash, side: u32) -> PathBuf {
        root.join(tenant.as_string())
            .join("derived")
            .join(format!("{hash}-{side}.jpg"))
    }

    fn key(prefix: &Key, parts: [&str; 3]) -> Key {
        // Every part is a UUID, two hex digits, a 64-hex hash or "derived" / "<hash>-<n>.jpg":
        // none can be empty, "." or "..", or hold a '/'.
        parts
            .into_iter()
            .fold(prefix.clone(), |k, part| k.join(part))
    }

    fn blob_key(prefix: &Key, tenant: TenantId, hash: &BlobHash) -> Key {
        Self::key(
            prefix,
            [&tenant.as_string(), &hash.as_str()[..2], hash.as_str()],
        )
    }

    fn derived_key(prefix: &Key, tenant: TenantId, hash: &BlobHash, side: u32) -> Key {
        Self::key(
            prefix,
            [
                &tenant.as_string(),
                "derived",
                &format!("{hash}-{side}.jpg"),
            ],
        )
    }

    /// Where a blob is, for errors and tests: a file path or an object key.
    pub(crate) fn blob_location(&self, tenant: TenantId, hash: &BlobHash) -> String {
        match self {
            Backend::Local { root } => Self::blob_path(root, tenant, hash)
                .to_string_lossy()
                .into_owned(),
            Backend::S3 { prefix, .. } => Self::blob_key(prefix, tenant, hash).to_string(),
        }
    }

    fn s3_error(step: &'static str, key: &Key, source: object_store::Error) -> BlobError {
        BlobError::Backend {
            step,
            key: key.to_string(),
            source,
        }
    }

    /// Checks once, at startup, that the objects can be reached: for S3, one listing of the
    /// prefix (a missing bucket, a wrong endpoint or refused credentials fail here).
    pub(crate) async fn check(&self) -> Result<()> {
        match self {
            Backend::Local { .. } => Ok(()),
            Backend::S3 { store, prefix, .. } => {
                let first = store.list(Some(prefix)).next().await;
                match first {
                    None | Some(Ok(_)) => Ok(()),
                    Some(Err(e)) => Err(Self::s3_error("listing the objects under", prefix, e)),
                }
            }
        }
    }

    /// The stored blob's size, if there is one.
    pub(crate) async fn size(&self, tenant: TenantId, hash: &BlobHash) -> Result<Option<u64>> {
        match self {
            Backend::Local { root } => {
                let path = Self::blob_path(root, tenant, hash);
                tokio::task::spawn_blocking(move || super::stored_size(&path)).await?
            }
            Backend::S3 { store, prefix, .. } => {
                let key = Self::blob_key(prefix, tenant, hash);
                match store.head(&key).await {
                    Ok(meta) => Ok(Some(meta.size)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(Self::s3_error("looking up the object", &key, e)),
                }
            }
        }
    }

    /// Stores the verified file `part` (of `size` bytes) as the blob. Local: one atomic
    /// `rename` (the file is gone from `part` afterwards). S3: one `PUT`, or a multipart
    /// upload for a large blob; the object appears whole or not at all, and `part` is left
    /// for the caller to remove.
    pub(crate) async fn store_blob(
        &self,
        tenant: TenantId,
        hash: &BlobHash,
        part: &Path,
        size: u64,
    ) -> Result<()> {
        match self {
            Backend::Local { root } => {
                let blob = Self::blob_path(root, tenant, hash);
                let part = part.to_owned();
                tokio::task::spawn_blocking(move || {
                    let fan = blob.parent().expect("BUG: a blob path has a parent");
                    ensure_dir(fan)?;
                    // Same file system (both under the tenant's directory), so the rename is
                    // atomic: the blob is either absent or whole.
                    std::fs::rename(&part, &blob).step("storing", &blob)?;
                    sync_dir(fan)
                })
                .await?
            }
            Backend::S3 { store, prefix, .. } => {
                let key = Self::blob_key(prefix, tenant, hash);
                if size <= SINGLE_PUT_MAX {
                    let bytes = tokio::fs::read(part).await.step("reading", part)?;
                    store
                        .put(&key, PutPayload::from(bytes))
                        .await
                        .map_err(|e| Self::s3_error("storing", &key, e))?;
                    return Ok(());
                }
                upload_multipart(store, &key, part).await
            }
        }
    }

    /// A stored blob as a stream; `None` if there is none.
    pub(crate) async fn open(&self, tenant: TenantId, hash: &BlobHash) -> Result<Option<BlobBody>> {
        match self {
            Backend::Local { root } => {
                let path = Self::blob_path(root, tenant, hash);
                open_file(&path).await
            }
            Backend::S3 { store, prefix, .. } => {
                let key = Self::blob_key(prefix, tenant, hash);
                match store.get(&key).await {
                    Ok(got) => Ok(Some(BlobBody {
                        size: got.meta.size,
                        stream: got.into_stream().map_err(io::Error::other).boxed(),
                    })),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(Self::s3_error("reading", &key, e)),
                }
            }
        }
    }

    /// A stored blob whole; `None` if there is none.
    pub(crate) async fn read(&self, tenant: TenantId, hash: &BlobHash) -> Result<Option<Vec<u8>>> {
        match self {
            Backend::Local { root } => read_file(&Self::blob_path(root, tenant, hash)).await,
            Backend::S3 { store, prefix, .. } => {
                read_object(store, &Self::blob_key(prefix, tenant, hash)).await
            }
        }
    }

    /// Stores a file derived from a blob (a thumbnail), replacing any earlier one.
    pub(crate) async fn put_derived(
        &self,
        tenant: TenantId,
        hash: &BlobHash,
        side: u32,
        bytes: Vec<u8>,
    ) -> Result<()> {
        match self {
            Backend::Local { root } => {
                let path = Self::derived_path(root, tenant, hash, side);
                tokio::task::spawn_blocking(move || write_atomically(&path, &bytes)).await?
            }
            Backend::S3 { store, prefix, .. } => {
                let key = Self::derived_key(prefix, tenant, hash, side);
                store
                    .put(&key, PutPayload::from(bytes))
                    .await
                    .map(drop)
                    .map_err(|e| Self::s3_error("storing", &key, e))
            }
        }
    }

    /// A derived file whole (thumbnails are small); `None` if there is none yet.
    pub(crate) async fn read_derived(
        &self,
        tenant: TenantId,
        hash: &BlobHash,
        side: u32,
    ) -> Result<Option<Vec<u8>>> {
        match self {
            Backend::Local { root } => {
                read_file(&Self::derived_path(root, tenant, hash, side)).await
            }
            Backend::S3 { store, prefix, .. } => {
                read_object(store, &Self::derived_key(prefix, tenant, hash, side)).await
            }
        }
    }
}

/// Streams the file at `part` to `key` in parts of [`PART_BYTES`]; an upload that fails is
/// aborted (its parts are dropped by the server), so nothing partial is ever visible.
async fn upload_multipart(store: &AmazonS3, key: &Key, part: &Path) -> Result<()> {
    use tokio::io::AsyncReadExt;
    let s3_err = |e| Backend::s3_error("storing", key, e);
    let mut file = tokio::fs::File::open(part).await.step("opening", part)?;
    let upload = store.put_multipart(key).await.map_err(s3_err)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e).step("reading", part);
            }
        };
        if n == 0 {
            break;
        }
        if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
            let _ = writer.abort().await;
            return Err(s3_err(e));
        }
        writer.write(&buf[..n]);
    }
    // `finish` aborts the upload itself when a part or the completion fails.
    writer.finish().await.map(drop).map_err(s3_err)
}

async fn read_object(store: &AmazonS3, key: &Key) -> Result<Option<Vec<u8>>> {
    let err = |e| Backend::s3_error("reading", key, e);
    match store.get(key).await {
        Ok(got) => Ok(Some(got.bytes().await.map_err(err)?.to_vec())),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(err(e)),
    }
}

async fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    match tokio::fs::read(path).await {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).step("reading", path),
    }
}

async fn open_file(path: &Path) -> Result<Option<BlobBody>> {
    use tokio::io::AsyncReadExt;
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).step("opening", path),
    };
    let size = file
        .metadata()
        .await
        .step("reading metadata of", path)?
        .len();
    let stream = futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 256 * 1024];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), file)))
    });
    Ok(Some(BlobBody {
        size,
        stream: stream.boxed(),
    }))
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it into place, so
/// a reader sees the old file or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().expect("BUG: a derived path has a parent");
    ensure_dir(dir)?;
    let tmp = path.with_extension("tmp");
    std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .step("writing", &tmp)?;
    std::fs::rename(&tmp, path).step("storing", path)?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn object_keys_have_the_shape_of_the_local_paths_under_the_prefix() {
        let backend = s3_backend(
            "s3://photos/field/sync/",
            vars(&[("AWS_REGION", "eu-central-1")]),
        )
        .expect("backend");
        let tenant = TenantId::new();
        let hash = BlobHash::of(b"x");
        assert_eq!(
            backend.blob_location(tenant, &hash),
            format!("field/sync/{tenant}/{}/{hash}", &hash.as_str()[..2])
        );
        let Backend::S3 { prefix, .. } = &backend else {
            panic!("an S3 backend");
        };
        assert_eq!(
            Backend::derived_key(prefix, tenant, &hash, 320).to_string(),
            format!("field/sync/{tenant}/derived/{hash}-320.jpg")
        );
        assert_eq!(backend.to_string(), "s3://photos/field/sync");
    }

    #[test]
    fn only_s3_urls_with_a_bucket_are_accepted_and_credentials_never_shown() {
        for bad in [
            "",
            "/var/blobs",
            "s3://",
            "s3:///prefix",
            "gs://b",
            "file:///x",
        ] {
            let err = s3_backend(bad, Vec::new()).map(drop).expect_err(bad);
            assert!(matches!(err, BlobConfigError::NotS3(_)), "{bad}: {err}");
            assert!(err.to_string().contains("s3://bucket"), "{err}");
        }
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let backend = s3_backend(
            "s3://b",
            vars(&[
                ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", secret),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
                ("AWS_REGION", "us-east-1"),
            ]),
        )
        .expect("backend");
        assert_eq!(backend.to_string(), "s3://b");
        let Backend::S3 { store, .. } = &backend else {
            panic!("an S3 backend");
        };
        assert!(!format!("{store}").contains(secret));
    }
}
