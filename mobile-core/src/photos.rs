//! Photos on the phone: taking one (its bytes copied into the device's own storage and queued
//! for upload, its record created through the shared rules like any field event), listing them
//! with their review status, and the site manager's review and anyone's comments.
//!
//! The bytes live in `<data dir>/photos/<sha256>`, written through a temporary file that is
//! `fsync`ed and renamed, so a file there is always whole, and named by their SHA-256, so the
//! same photo attached twice is stored (and uploaded) once. The record carries the hash, the
//! size and the type; the server takes the bytes only if they hash to that name. The upload
//! itself is in [`crate::upload`].
//!
//! Only JPEG, PNG and WebP are accepted, told apart by their first bytes (not by a file name);
//! HEIC, the default of many phones, is refused with a message saying to export JPEG.

use crate::client::Inner;
use crate::edit::{clean_tags, new_item_id, opt, parse_doc_id};
use crate::error::{ClientError, Result};
use crate::model::{AttachTo, LocationFix, PhotoSource, PhotoView};
use crate::store::{self, UploadRow};
use fieldsync_sync::record::photo::{
    AttachKind, Attachment, MAX_PHOTO_BYTES, Photo, PhotoComment, PhotoDecision, PhotoReview,
};
use fieldsync_sync::{Conflict, DocId, Record, RecordKind};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// The folder of photo files under the data directory.
pub(crate) const PHOTOS_DIR: &str = "photos";
/// How temporary files in [`PHOTOS_DIR`] start (left over only by a crash mid-write).
const TEMP_PREFIX: &str = ".tmp-";

/// The SHA-256 of `bytes` as 64 lower-case hex digits.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(digest.len() * 2);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The SHA-256 of the file at `path`, read in pieces.
pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn unsupported(message: impl Into<String>) -> ClientError {
    ClientError::invalid("unsupported_format", message)
}

/// The MIME type of a photo, from its first bytes: `image/jpeg`, `image/png` or `image/webp`.
/// Anything else is `unsupported_format`, with a hint where the file is recognisable.
pub(crate) fn sniff_mime(bytes: &[u8]) -> Result<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok("image/jpeg");
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok("image/png");
    }
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok("image/webp");
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        // ISO media: the major brand says which kind.
        return Err(match &bytes[8..12] {
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"hevm" | b"hevs"
            | b"mif1" | b"msf1" => unsupported(
                "This photo is HEIC, which is not accepted: set the camera to save JPEG (\"Most compatible\"), or export the photo as JPEG, and attach that.",
            ),
            b"avif" | b"avis" => unsupported(
                "This photo is AVIF, which is not accepted: export it as JPEG and attach that.",
            ),
            _ => unsupported(
                "This file is a video or another media file, not a photo: attach a JPEG, PNG or WebP photo.",
            ),
        });
    }
    let named = if bytes.starts_with(b"GIF8") {
        Some("a GIF")
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some("a TIFF or camera RAW file")
    } else if bytes.starts_with(b"%PDF") {
        Some("a PDF")
    } else if bytes.starts_with(b"BM") {
        Some("a BMP")
    } else {
        None
    };
    Err(unsupported(match named {
        Some(kind) => format!(
            "This file is {kind}, not a photo this app accepts: attach a JPEG, PNG or WebP photo (export it as JPEG)."
        ),
        None => {
            "This file is not a JPEG, PNG or WebP photo: attach one of those (export it as JPEG)."
                .to_owned()
        }
    }))
}

fn invalid_size(size: u64) -> ClientError {
    ClientError::invalid(
        "invalid_size",
        if size == 0 {
            "The photo is empty (0 bytes).".to_owned()
        } else {
            format!(
                "The photo has {:.1} MiB; at most {} MiB is accepted.",
                size as f64 / (1024.0 * 1024.0),
                MAX_PHOTO_BYTES >> 20
            )
        },
    )
}

/// The bytes of `source`: a file is read once, and refused before reading when it is too large.
fn read_source(source: PhotoSource) -> Result<Vec<u8>> {
    match (source.path.and_then(|p| opt(Some(p))), source.bytes) {
        (Some(path), None) => read_file(Path::new(&path)),
        (None, Some(bytes)) => Ok(bytes),
        (None, None) => Err(ClientError::invalid(
            "invalid_source",
            "Give the photo as a file path or as bytes.",
        )),
        (Some(_), Some(_)) => Err(ClientError::invalid(
            "invalid_source",
            "Give the photo as a file path or as bytes, not both.",
        )),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let unreadable = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => ClientError::invalid(
            "file_not_found",
            format!("There is no file at {}.", path.display()),
        ),
        _ => ClientError::invalid(
            "unreadable_file",
            format!("The file {} cannot be read: {e}.", path.display()),
        ),
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(ClientError::invalid(
            "unreadable_file",
            format!("{} is not a file.", path.display()),
        ));
    }
    if meta.len() > MAX_PHOTO_BYTES {
        return Err(invalid_size(meta.len()));
    }
    // One more byte than allowed at most, in case the file grows while it is read.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_PHOTO_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    Ok(bytes)
}

fn storage(what: &str, path: &Path, e: std::io::Error) -> ClientError {
    ClientError::storage(format!(
        "The photo could not be {what} {}: {e}.",
        path.display()
    ))
}

/// Makes a rename in `dir` durable. Directories cannot be opened everywhere (Windows); there
/// the rename is as durable as the platform makes it.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Keeps `bytes` (whose SHA-256 is `sha256`) as `<dir>/photos/<sha256>` and returns that path
/// relative to `dir`. An intact copy already there is kept as it is; a damaged one is replaced.
pub(crate) fn keep_bytes(dir: &Path, sha256: &str, bytes: &[u8]) -> Result<String> {
    let folder = dir.join(PHOTOS_DIR);
    std::fs::create_dir_all(&folder).map_err(|e| storage("stored in", &folder, e))?;
    let rel = format!("{PHOTOS_DIR}/{sha256}");
    let path = folder.join(sha256);
    let intact = std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64)
        && sha256_file(&path).is_ok_and(|h| h == sha256);
    if intact {
        return Ok(rel);
    }
    let tmp = folder.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::now_v7()));
    let written = (|| {
        let mut f = std::fs::File::create_new(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(storage("stored in", &folder, e));
    }
    sync_dir(&folder);
    Ok(rel)
}

/// The absolute path of a stored copy, from its path relative to `dir`; `None` for a path that
/// would leave `dir` (the database is the app's own, but a path is never trusted to stay put).
pub(crate) fn local_file(dir: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
    (plain && rel.components().next().is_some()).then(|| dir.join(rel))
}

/// Deletes every photo file (a purge).
pub(crate) fn remove_all(dir: &Path) -> Result<()> {
    let folder = dir.join(PHOTOS_DIR);
    match std::fs::remove_dir_all(&folder) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ClientError::storage(format!(
            "The photo files in {} could not be deleted: {e}.",
            folder.display()
        ))),
    }
}

/// Deletes temporary files a crash left half-written. Best effort: they are never read.
pub(crate) fn remove_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir.join(PHOTOS_DIR)) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn with_photo(
    change: impl FnOnce(&mut Photo) -> Result<()>,
) -> impl FnOnce(&mut Record) -> Result<()> {
    move |r| match r {
        Record::Photo(p) => change(p),
        _ => Err(ClientError::invalid(
            "kind_mismatch",
            "The record is not a photo.",
        )),
    }
}

/// A review decision as people type it: `approved` (or `approve`), `rejected` (`reject`),
/// `retake`.
fn parse_decision(decision: &str) -> Result<PhotoDecision> {
    let d = decision.trim().to_ascii_lowercase();
    Ok(match d.as_str() {
        "approve" => PhotoDecision::Approved,
        "reject" => PhotoDecision::Rejected,
        other => other.parse()?,
    })
}

impl Inner {
    /// What a new photo is attached to, checked against what this device holds: a record of
    /// the id that is here must be of the kind named, and the site of a site diary day is
    /// looked up in the project (by id, or by a name only one site has) when the project is here.
    fn attachment(&self, to: AttachTo) -> Result<Attachment> {
        let kind: AttachKind = to.kind.trim().replace('-', "_").parse()?;
        let (record_kind, what) = match kind {
            AttachKind::Visit => (RecordKind::Visit, "visit"),
            AttachKind::Project | AttachKind::SiteDay => (RecordKind::Project, "project"),
            AttachKind::Customer => (RecordKind::Customer, "customer"),
        };
        let id = parse_doc_id(&to.id, what)?;
        if let Some(state) = store::doc_state(&self.store.conn, &id.to_string())?
            && state.kind != record_kind.as_str()
        {
            return Err(ClientError::invalid(
                "invalid_attachment",
                format!("{id} is a {} on this device, not a {what}.", state.kind),
            ));
        }
        let mut site = opt(to.site);
        if kind == AttachKind::SiteDay
            && let Some(name) = &site
            && let Ok((Record::Project(p), _, _)) = self.load(&id.to_string(), RecordKind::Project)
        {
            let by_id = p.sites.iter().find(|s| &s.id == name);
            let mut by_name = p.sites.iter().filter(|s| &s.name == name);
            let found = by_id.or_else(|| match (by_name.next(), by_name.next()) {
                (Some(s), None) => Some(s),
                _ => None,
            });
            let Some(found) = found else {
                return Err(ClientError::invalid(
                    "unknown_site",
                    format!("Project {} has no site '{name}'.", p.name),
                ));
            };
            site = Some(found.id.clone());
        }
        Ok(Attachment {
            kind,
            id,
            site,
            day: opt(to.day),
        })
    }

    fn attach_photo(
        &mut self,
        source: PhotoSource,
        attach_to: AttachTo,
        fix: Option<LocationFix>,
        caption: String,
        tags: Vec<String>,
    ) -> Result<PhotoView> {
        // Everything that can be refused without the bytes first, so a refusal costs no read.
        let me = self.user_id()?;
        let attached_to = self.attachment(attach_to)?;
        let evidence = fix.map(|f| self.evidence(f, "evidence")).transpose()?;
        let captured_at_ms = match &evidence {
            Some(ev) => ev.event_time_ms(),
            None => self.stamp()?.time_ms(),
        };
        let bytes = read_source(source)?;
        let size = bytes.len() as u64;
        if size == 0 || size > MAX_PHOTO_BYTES {
            return Err(invalid_size(size));
        }
        let mime = sniff_mime(&bytes)?;
        let sha256 = sha256_hex(&bytes);
        let photo = Photo {
            id: DocId::new(),
            author: me,
            sha256: sha256.clone(),
            size,
            mime: mime.to_owned(),
            attached_to,
            captured_at_ms,
            evidence,
            caption: caption.trim().to_owned(),
            tags: clean_tags(tags.iter().map(String::as_str)),
            reviews: Vec::new(),
            comments: Vec::new(),
        };
        let id = photo.id.to_string();
        let record = Record::Photo(photo);
        // The shared rules before the copy is written: a refused photo leaves nothing behind.
        self.check(None, &record)?;
        let rel = keep_bytes(&self.dir, &sha256, &bytes)?;
        drop(bytes);
        let created = self.create_with(record, |tx| {
            store::upload_enqueue(tx, &sha256, size, mime, &rel)
        });
        if let Err(e) = created {
            // The copy serves no other photo unless the queue has it.
            if store::upload_get(&self.store.conn, &sha256)?.is_none()
                && let Some(path) = local_file(&self.dir, &rel)
            {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
        self.photo_view(&id)
    }

    fn photo(&self, id: &str) -> Result<(Photo, Vec<Conflict>, bool)> {
        match self.load(id, RecordKind::Photo)? {
            (Record::Photo(p), conflicts, pending) => Ok((p, conflicts, pending)),
            _ => Err(ClientError::not_found("photo", id)),
        }
    }

    fn photo_view_of(
        &self,
        photo: Photo,
        conflicts: Vec<Conflict>,
        pending: bool,
        upload: Option<&UploadRow>,
    ) -> PhotoView {
        let local_path = upload
            .and_then(|u| local_file(&self.dir, &u.local_path))
            .filter(|p| p.is_file())
            .map(|p| p.to_string_lossy().into_owned());
        PhotoView {
            status: photo.status().map_or("pending", |d| d.as_str()).to_owned(),
            uploaded: upload.is_some_and(|u| u.state == store::UploadState::Done),
            upload_state: upload.map(|u| u.state.as_str().to_owned()),
            local_path,
            photo,
            pending,
            conflicts,
        }
    }

    fn photo_view(&self, id: &str) -> Result<PhotoView> {
        let (photo, conflicts, pending) = self.photo(id)?;
        let upload = store::upload_get(&self.store.conn, &photo.sha256)?;
        Ok(self.photo_view_of(photo, conflicts, pending, upload.as_ref()))
    }

    pub(crate) fn photos(&self) -> Result<Vec<PhotoView>> {
        let uploads: HashMap<String, UploadRow> = store::uploads_all(&self.store.conn, false)?
            .into_iter()
            .map(|u| (u.sha256.clone(), u))
            .collect();
        let mut out: Vec<PhotoView> = self
            .list(RecordKind::Photo)?
            .into_iter()
            .filter_map(|(r, c, pending)| match r {
                Record::Photo(p) => {
                    let upload = uploads.get(&p.sha256);
                    Some(self.photo_view_of(p, c, pending, upload))
                }
                _ => None,
            })
            .collect();
        out.sort_by_key(|v| std::cmp::Reverse((v.photo.captured_at_ms, v.photo.id.to_string())));
        Ok(out)
    }
}

impl crate::FieldsyncClient {
    /// Takes a photo: reads its bytes (a file once), refuses what is not JPEG, PNG or WebP
    /// (`unsupported_format`; HEIC with how to export JPEG) or is empty or over 40 MiB
    /// (`invalid_size`), copies them into the device's storage, and creates the photo record by
    /// the logged-in user, attached to `attach_to`, captured now on the phone's clocks, with the
    /// location evidence of `fix` if given (dated as check-ins and punches are). The record
    /// syncs at the next sync; the bytes are queued and follow it ([`Self::upload_photos`]).
    pub fn attach_photo(
        &self,
        source: PhotoSource,
        attach_to: AttachTo,
        fix: Option<LocationFix>,
        caption: String,
        tags: Vec<String>,
    ) -> Result<PhotoView> {
        self.lock()
            .attach_photo(source, attach_to, fix, caption, tags)
    }

    /// One photo, with its review status, reviews and comments, and its upload.
    pub fn get_photo(&self, photo_id: String) -> Result<PhotoView> {
        self.lock().photo_view(&photo_id)
    }

    /// Every photo on this device (a site manager's phone holds those of their projects),
    /// newest first.
    pub fn list_photos(&self) -> Result<Vec<PhotoView>> {
        self.lock().photos()
    }

    /// Adds a comment under a photo, by the logged-in user.
    pub fn comment_photo(&self, photo_id: String, text: String) -> Result<PhotoView> {
        let mut inner = self.lock();
        let comment = PhotoComment {
            id: new_item_id(),
            by: inner.user_id()?,
            at_ms: inner.stamp()?.time_ms(),
            text: text.trim().to_owned(),
        };
        inner.edit(
            &photo_id,
            RecordKind::Photo,
            with_photo(|p| {
                p.comments.push(comment);
                Ok(())
            }),
        )?;
        inner.photo_view(&photo_id)
    }

    /// A site manager's (or manager's, or admin's) review of someone else's photo: `decision`
    /// is `approved`, `rejected` or `retake`; rejecting and asking for a retake need a
    /// `reason`. Reviews are added, never changed: the latest is the photo's status.
    pub fn review_photo(
        &self,
        photo_id: String,
        decision: String,
        reason: String,
    ) -> Result<PhotoView> {
        let decision = parse_decision(&decision)?;
        let mut inner = self.lock();
        let review = PhotoReview {
            id: new_item_id(),
            by: inner.user_id()?,
            at_ms: inner.stamp()?.time_ms(),
            decision,
            reason: reason.trim().to_owned(),
        };
        inner.edit(
            &photo_id,
            RecordKind::Photo,
            with_photo(|p| {
                p.reviews.push(review);
                Ok(())
            }),
        )?;
        inner.photo_view(&photo_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_first_bytes() {
        assert_eq!(
            sniff_mime(&[0xFF, 0xD8, 0xFF, 0xE1, 0, 0]).ok(),
            Some("image/jpeg")
        );
        assert_eq!(
            sniff_mime(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").ok(),
            Some("image/png")
        );
        assert_eq!(
            sniff_mime(b"RIFF\x24\0\0\0WEBPVP8 ").ok(),
            Some("image/webp")
        );
        let heic = sniff_mime(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic").expect_err("heic");
        assert_eq!(heic.code(), "unsupported_format");
        assert!(heic.message().contains("JPEG"), "{heic}");
        let mif1 = sniff_mime(b"\0\0\0\x18ftypmif1\0\0\0\0heic").expect_err("heif");
        assert!(mif1.message().contains("HEIC"), "{mif1}");
        for other in [
            &b"GIF89a"[..],
            b"%PDF-1.7",
            b"hello",
            b"",
            b"\xFF\xD8",
            b"RIFF\0\0\0\0WAVE",
        ] {
            assert_eq!(
                sniff_mime(other).expect_err("refused").code(),
                "unsupported_format"
            );
        }
    }

    #[test]
    fn a_stored_path_never_leaves_the_data_directory() {
        let dir = Path::new("/data/app");
        assert_eq!(
            local_file(dir, "photos/abc"),
            Some(PathBuf::from("/data/app/photos/abc"))
        );
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "photos/../../x",
            "",
            "./photos/a",
        ] {
            assert_eq!(local_file(dir, bad), None, "{bad}");
        }
    }

    #[test]
    fn hashes_are_lower_case_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
