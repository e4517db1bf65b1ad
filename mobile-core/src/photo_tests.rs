//! Photos on the phone, offline: taking them from a file or from bytes, what is refused, the
//! device's copy, the upload queue across restarts, reviews and comments; and the upload against
//! [`BlobServer`], an in-memory server of the blob protocol (`sync/PROTOCOL.md`, "Photo bytes")
//! whose connections can be cut at chosen points.

use crate::fake_server::{self, FakeServer, Seen};
use crate::store;
use crate::tests::open;
use crate::*;
use fieldsync_sync::UserId;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// 2026-11-24 08:00:00 UTC.
const T0: i64 = 1_795_507_200_000;
/// The SHA-256 and size of `mobile/jolla.jpg`.
const JOLLA_SHA256: &str = "ee6bc1200cf8b1b26f5b60d8294d9617e8099f6dfdd7a4757a424f332360f5e3";
const JOLLA_SIZE: u64 = 811_904;
/// Chunks in the upload tests: jolla.jpg is 13 of them.
const CHUNK: usize = 64 * 1024;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/photos")
        .join(name)
}

fn jolla() -> PathBuf {
    fixture("mobile/jolla.jpg")
}

fn jolla_bytes() -> Vec<u8> {
    std::fs::read(jolla()).expect("the jolla.jpg fixture")
}

/// Logs `client` in (offline) as `user` with `role`, talking to `server_url`.
fn login_as(client: &FieldsyncClient, server_url: &str, user: UserId, role: &str) {
    let inner = client.lock();
    store::session_put(
        &inner.store.conn,
        &store::SessionRow {
            server_url: server_url.into(),
            tenant_slug: "demo".into(),
            tenant_id: "01890a5d-ac96-774b-bcce-b302099a8000".into(),
            user_id: user.to_string(),
            role: role.into(),
            email: format!("{role}@demo.example"),
            access_token: "access".into(),
            refresh_token: "refresh".into(),
            access_expires_at_ms: store::now_ms() + 15 * 60_000,
            clock_offset_ms: 0,
        },
    )
    .expect("session");
}

/// A field worker's phone (tenant role `field_rep`), offline, with the manual clock at [`T0`],
/// small upload chunks, and a project with the site "Yard". Returns the client, the user and
/// the project's id.
fn crew_phone(dir: &tempfile::TempDir, server_url: &str) -> (FieldsyncClient, UserId, String) {
    let client = open(dir);
    let me = UserId::new();
    login_as(&client, server_url, me, "field_rep");
    client
        .set_manual_clock(T0, 3_600_000, "boot-a".into())
        .expect("clock");
    client.lock().upload_chunk_bytes = CHUNK;
    let project = client
        .create_project(NewProject {
            name: "Tower B".into(),
            ..Default::default()
        })
        .expect("project")
        .project
        .id
        .to_string();
    client
        .add_site(
            project.clone(),
            NewSite {
                name: "Yard".into(),
                address: None,
                timezone: "Asia/Shanghai".into(),
                geofence: Some(NewSite::circle(30.5, 104.0, 200.0)),
            },
        )
        .expect("site");
    (client, me, project)
}

fn to_project(id: &str) -> AttachTo {
    AttachTo {
        kind: "project".into(),
        id: id.into(),
        ..Default::default()
    }
}

fn err_code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> String {
    r.expect_err("must be refused").code().to_owned()
}

/// The files in the device's photo folder.
fn photo_files(dir: &tempfile::TempDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("device").join("photos"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_photo_from_a_file_is_copied_hashed_dated_and_queued_and_the_same_bytes_are_kept_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, me, project) = crew_phone(&dir, "http://127.0.0.1:1");
    // The gallery's file: a copy outside the device's storage, deleted after the photo is taken.
    let gallery = tempfile::tempdir().expect("gallery");
    let shot = gallery.path().join("IMG_0001.jpg");
    std::fs::copy(jolla(), &shot).expect("copy to the gallery");

    let fix = LocationFix::gps(30.5004, 104.0003, 6.0);
    let p = client
        .attach_photo(
            PhotoSource::file(shot.to_string_lossy()),
            AttachTo {
                kind: "site-day".into(),
                id: project.clone(),
                site: Some("Yard".into()),
                day: Some("2026-11-24".into()),
            },
            Some(fix),
            "  Rebar before the pour ".into(),
            vec!["rebar".into(), " pour ".into(), "rebar".into(), "".into()],
        )
        .expect("attach");
    std::fs::remove_file(&shot).expect("deleted from the gallery");

    let photo = &p.photo;
    assert_eq!(photo.author, me);
    assert_eq!(photo.sha256, JOLLA_SHA256);
    assert_eq!(photo.size, JOLLA_SIZE);
    assert_eq!(photo.mime, "image/jpeg");
    assert_eq!(photo.attached_to.kind, AttachKind::SiteDay);
    assert_eq!(photo.attached_to.id.to_string(), project);
    let yard = client
        .get_project(project.clone())
        .expect("project")
        .project
        .sites[0]
        .id
        .clone();
    assert_eq!(
        photo.attached_to.site.as_deref(),
        Some(yard.as_str()),
        "the site's id"
    );
    assert_eq!(photo.attached_to.day.as_deref(), Some("2026-11-24"));
    assert_eq!(photo.caption, "Rebar before the pour");
    assert_eq!(photo.tags, vec!["pour".to_owned(), "rebar".to_owned()]);
    // Dated like a punch: the phone's clocks, no server offset yet.
    assert_eq!(photo.captured_at_ms, T0);
    let ev = photo.evidence.as_ref().expect("evidence");
    assert_eq!(
        (
            ev.lat,
            ev.device_time_ms,
            ev.monotonic_ms,
            ev.server_offset_ms
        ),
        (30.5004, T0, Some(3_600_000), None)
    );
    assert_eq!(p.status, "pending");
    assert!(p.pending && !p.uploaded);
    assert_eq!(p.upload_state.as_deref(), Some("queued"));
    let local = p.local_path.clone().expect("a copy of the device's own");
    assert_eq!(std::fs::read(&local).expect("copy"), jolla_bytes());

    // The same bytes again, from memory and to another target: a second record, one file, one
    // queue item.
    let q = client
        .attach_photo(
            PhotoSource::bytes(jolla_bytes()),
            to_project(&project),
            None,
            String::new(),
            Vec::new(),
        )
        .expect("attach bytes");
    assert_ne!(q.photo.id, p.photo.id);
    assert_eq!(q.photo.sha256, JOLLA_SHA256);
    assert_eq!(q.photo.evidence, None);
    assert_eq!(q.photo.captured_at_ms, T0);
    assert_eq!(q.local_path.as_deref(), Some(local.as_str()));
    assert_eq!(photo_files(&dir), vec![JOLLA_SHA256.to_owned()]);
    let s = client.upload_status().expect("queue");
    assert_eq!((s.queued, s.uploading, s.done, s.failed), (1, 0, 0, 0));
    assert_eq!(s.bytes_pending, JOLLA_SIZE);
    assert_eq!(s.items.len(), 1);
    assert_eq!(s.items[0].local_path, local);
    assert_eq!(s.items[0].mime, "image/jpeg");

    let list = client.list_photos().expect("list");
    assert_eq!(list.len(), 2);
    assert_eq!(
        client.status().expect("status").pending_docs,
        3,
        "project and two photos"
    );
}

#[test]
fn heic_garbage_empty_and_oversized_photos_are_refused_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, _, project) = crew_phone(&dir, "http://127.0.0.1:1");
    let attach = |source: PhotoSource| {
        client.attach_photo(
            source,
            to_project(&project),
            None,
            String::new(),
            Vec::new(),
        )
    };
    let mut heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
    heic.resize(4096, 0);
    let e = attach(PhotoSource::bytes(heic)).expect_err("HEIC");
    assert_eq!(e.code(), "unsupported_format");
    assert!(
        e.message().contains("HEIC") && e.message().contains("JPEG"),
        "{e}"
    );
    assert_eq!(
        err_code(attach(PhotoSource::bytes(b"not a photo at all".to_vec()))),
        "unsupported_format"
    );
    assert_eq!(
        err_code(attach(PhotoSource::bytes(Vec::new()))),
        "invalid_size"
    );
    // Over 40 MiB: refused from the file's size, before reading it.
    let big = dir.path().join("big.jpg");
    let f = std::fs::File::create(&big).expect("create");
    f.set_len((40 << 20) + 1).expect("sparse file");
    assert_eq!(
        err_code(attach(PhotoSource::file(big.to_string_lossy()))),
        "invalid_size"
    );
    let mut huge = vec![0u8; (40 << 20) + 1];
    huge[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
    assert_eq!(err_code(attach(PhotoSource::bytes(huge))), "invalid_size");
    assert_eq!(
        err_code(attach(PhotoSource::file(
            dir.path().join("nope.jpg").to_string_lossy()
        ))),
        "file_not_found"
    );
    assert_eq!(err_code(attach(PhotoSource::default())), "invalid_source");
    // A truncated real JPEG is still a JPEG: the server decodes what it can.
    let corrupted = attach(PhotoSource::file(
        fixture("invalid/corrupted.jpg").to_string_lossy(),
    ))
    .expect("a truncated JPEG is accepted");
    assert_eq!(corrupted.photo.mime, "image/jpeg");

    assert_eq!(client.list_photos().expect("list").len(), 1);
    assert_eq!(client.upload_status().expect("queue").items.len(), 1);
    assert_eq!(photo_files(&dir), vec![corrupted.photo.sha256.clone()]);
}

#[test]
fn attachments_and_captions_are_checked_before_anything_is_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, _, project) = crew_phone(&dir, "http://127.0.0.1:1");
    let attach = |to: AttachTo, tags: Vec<String>| {
        client.attach_photo(
            PhotoSource::file(jolla().to_string_lossy()),
            to,
            None,
            String::new(),
            tags,
        )
    };
    let to = |kind: &str, id: &str, site: Option<&str>, day: Option<&str>| AttachTo {
        kind: kind.into(),
        id: id.into(),
        site: site.map(Into::into),
        day: day.map(Into::into),
    };
    assert_eq!(
        err_code(attach(to("invoice", &project, None, None), vec![])),
        "invalid_attachment_kind"
    );
    assert_eq!(
        err_code(attach(to("visit", "x", None, None), vec![])),
        "invalid_id"
    );
    // The project is here: it is no customer.
    assert_eq!(
        err_code(attach(to("customer", &project, None, None), vec![])),
        "invalid_attachment"
    );
    assert_eq!(
        err_code(attach(
            to("site_day", &project, Some("Moon"), Some("2026-11-24")),
            vec![]
        )),
        "unknown_site"
    );
    assert_eq!(
        err_code(attach(to("site_day", &project, Some("Yard"), None), vec![])),
        "missing_field"
    );
    assert_eq!(
        err_code(attach(
            to("site_day", &project, Some("Yard"), Some("24.11.2026")),
            vec![]
        )),
        "invalid_date"
    );
    assert_eq!(
        err_code(attach(to("project", &project, Some("Yard"), None), vec![])),
        "invalid_attachment"
    );
    let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    assert_eq!(
        err_code(attach(to_project(&project), many)),
        "too_many_tags"
    );
    assert_eq!(
        err_code(client.attach_photo(
            PhotoSource::bytes(jolla_bytes()),
            to_project(&project),
            Some(LocationFix::gps(91.0, 0.0, 5.0)),
            String::new(),
            Vec::new()
        )),
        "invalid_latitude"
    );
    assert!(client.list_photos().expect("list").is_empty());
    assert!(photo_files(&dir).is_empty(), "{:?}", photo_files(&dir));
    assert!(client.upload_status().expect("queue").items.is_empty());

    client.logout().expect("logout");
    assert_eq!(
        err_code(attach(to_project(&project), vec![])),
        "not_logged_in"
    );
}

#[test]
fn a_site_manager_reviews_a_crew_photo_and_anyone_comments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, crew, project) = crew_phone(&dir, "http://127.0.0.1:1");
    let id = client
        .attach_photo(
            PhotoSource::bytes(jolla_bytes()),
            to_project(&project),
            None,
            "Crack in the slab".into(),
            vec!["defect".into()],
        )
        .expect("attach")
        .photo
        .id
        .to_string();
    // The crew member cannot review, not even their own photo.
    assert_eq!(
        err_code(client.review_photo(id.clone(), "approved".into(), String::new())),
        "forbidden"
    );
    let c = client
        .comment_photo(id.clone(), " Seen this morning ".into())
        .expect("comment");
    assert_eq!(c.photo.comments[0].text, "Seen this morning");
    assert_eq!(c.photo.comments[0].by, crew);
    assert_eq!(
        err_code(client.comment_photo(id.clone(), "  ".into())),
        "missing_field"
    );

    // The site manager's turn, on this phone (as after a sync).
    let sm = UserId::new();
    login_as(&client, "http://127.0.0.1:1", sm, "site_manager");
    client.advance_manual_clock(60_000).expect("a minute later");
    assert_eq!(
        err_code(client.review_photo(id.clone(), "retake".into(), " ".into())),
        "missing_field"
    );
    assert_eq!(
        err_code(client.review_photo(id.clone(), "maybe".into(), String::new())),
        "invalid_photo_decision"
    );
    let r = client
        .review_photo(
            id.clone(),
            "retake".into(),
            "Too dark; use the flash".into(),
        )
        .expect("retake");
    assert_eq!(r.status, "retake");
    let r = client
        .review_photo(id.clone(), "approve".into(), String::new())
        .expect("approve");
    assert_eq!(r.status, "approved", "the latest review decides");
    assert_eq!(r.photo.reviews.len(), 2);
    assert_eq!(r.photo.reviews[0].reason, "Too dark; use the flash");
    assert_eq!(r.photo.reviews[0].by, sm);
    assert_eq!(r.photo.reviews[0].at_ms, T0 + 60_000);
    let r = client
        .comment_photo(id.clone(), "Thanks".into())
        .expect("comment");
    assert_eq!(r.photo.comments.len(), 2);
    assert_eq!(r.photo.comments[1].by, sm);
    // The site manager's own photo is not theirs to review.
    let own = client
        .attach_photo(
            PhotoSource::bytes(jolla_bytes()),
            to_project(&project),
            None,
            String::new(),
            Vec::new(),
        )
        .expect("own photo")
        .photo
        .id
        .to_string();
    assert_eq!(
        err_code(client.review_photo(own, "approved".into(), String::new())),
        "forbidden"
    );
    assert_eq!(client.get_photo(id).expect("get").status, "approved");
    assert_eq!(
        err_code(client.get_photo(project)),
        "not_found",
        "a project is no photo"
    );
}

/// How the next chunk is cut.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cut {
    /// The connection drops while the chunk is on its way: the server stores none of it.
    MidChunk,
    /// The server stores the chunk, and the answer is lost.
    AnswerLost,
}

/// One blob on the server.
struct Blob {
    size: u64,
    data: Vec<u8>,
    complete: bool,
}

/// The server's side of the blob protocol, in memory, with the faults a test asks for.
#[derive(Default)]
struct World {
    blobs: HashMap<String, Blob>,
    /// Cut the `n`th chunk from now (0: the next).
    cut: Option<(u32, Cut)>,
    /// Answer `POST /v1/blobs` with this error.
    refuse_begin: Option<(u16, String)>,
    /// After the next `POST /v1/blobs`, forget the upload (an abandoned session removed).
    forget_after_begin: bool,
    /// After the next `POST /v1/blobs`, hold only this many bytes (so the next chunk starts
    /// past them).
    rewind_after_begin: Option<usize>,
    /// Chunks that started somewhere else than at `received`.
    misplaced_chunks: u32,
    /// Chunk bytes that the server already held when they came.
    resent_bytes: u64,
    /// 409 `offset_mismatch` answers given.
    mismatches: u32,
    /// Connections cut.
    cuts: u32,
}

struct BlobServer {
    server: FakeServer,
    world: Arc<Mutex<World>>,
}

fn state(sha: &str, b: &Blob) -> String {
    serde_json::json!({
        "sha256": sha, "size": b.size, "received": b.data.len(), "complete": b.complete
    })
    .to_string()
}

fn answer(status: u16, body: String) -> Option<(u16, String)> {
    Some((status, body))
}

impl World {
    fn handle(&mut self, req: &Seen) -> Option<(u16, String)> {
        let path = req.path.split('?').next().unwrap_or_default();
        match (req.method.as_str(), path) {
            ("POST", "/v1/sync/pull") => answer(200, fake_server::empty_pull(T0)),
            ("POST", "/v1/sync/push") => answer(200, accept_all(&req.body)),
            ("POST", "/v1/blobs") => self.begin(req),
            ("PUT", p) if p.starts_with("/v1/blobs/") => self.chunk(req, &p["/v1/blobs/".len()..]),
            _ => answer(404, fake_server::error("not_found", "No such route.")),
        }
    }

    fn begin(&mut self, req: &Seen) -> Option<(u16, String)> {
        if let Some((status, body)) = &self.refuse_begin {
            return answer(*status, body.clone());
        }
        let v: serde_json::Value = serde_json::from_slice(&req.body).ok()?;
        let sha = v["sha256"].as_str()?.to_owned();
        let size = v["size"].as_u64()?;
        assert!(
            ["image/jpeg", "image/png", "image/webp"].contains(&v["mime"].as_str()?),
            "{v}"
        );
        let blob = self.blobs.entry(sha.clone()).or_insert(Blob {
            size,
            data: Vec::new(),
            complete: false,
        });
        if blob.size != size {
            return answer(409, fake_server::error("size_mismatch", "Another size."));
        }
        let body = state(&sha, blob);
        if let Some(n) = self.rewind_after_begin.take() {
            blob.data.truncate(n);
        }
        if std::mem::take(&mut self.forget_after_begin) {
            self.blobs.remove(&sha);
        }
        answer(200, body)
    }

    fn chunk(&mut self, req: &Seen, sha: &str) -> Option<(u16, String)> {
        assert_eq!(
            req.content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert!(req.body.len() <= CHUNK, "chunks of at most the chunk size");
        let offset: u64 = req.path.split("?offset=").nth(1)?.parse().ok()?;
        let cut = match &mut self.cut {
            Some((0, how)) => {
                let how = *how;
                self.cut = None;
                self.cuts += 1;
                Some(how)
            }
            Some((n, _)) => {
                *n -= 1;
                None
            }
            None => None,
        };
        let Some(blob) = self.blobs.get_mut(sha) else {
            return answer(404, fake_server::error("no_upload", "Start with POST."));
        };
        if blob.complete {
            return answer(200, state(sha, blob));
        }
        let received = blob.data.len() as u64;
        if offset != received {
            self.misplaced_chunks += 1;
        }
        if offset > received {
            self.mismatches += 1;
            let body = serde_json::json!({
                "error": "offset_mismatch",
                "message": format!("Send from byte {received}."),
                "received": received,
            });
            return answer(409, body.to_string());
        }
        if cut == Some(Cut::MidChunk) {
            return None;
        }
        let skip = ((received - offset) as usize).min(req.body.len());
        self.resent_bytes += skip as u64;
        blob.data.extend_from_slice(&req.body[skip..]);
        if blob.data.len() as u64 > blob.size {
            blob.data.truncate(received as usize);
            return answer(409, fake_server::error("size_mismatch", "Past the end."));
        }
        if blob.data.len() as u64 == blob.size {
            if crate::photos::sha256_hex(&blob.data) != sha {
                self.blobs.remove(sha);
                return answer(
                    422,
                    fake_server::error(
                        "hash_mismatch",
                        "The bytes do not have the declared SHA-256.",
                    ),
                );
            }
            blob.complete = true;
        }
        if cut == Some(Cut::AnswerLost) {
            return None;
        }
        answer(200, state(sha, blob))
    }
}

/// A push answer accepting every document of the request.
fn accept_all(body: &[u8]) -> String {
    let req: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let results: Vec<serde_json::Value> = req["docs"]
        .as_array()
        .map(|docs| {
            docs.iter()
                .map(|d| serde_json::json!({"status": "accepted", "doc_id": d["doc_id"], "heads": []}))
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({"v": 1, "batch_id": req["batch_id"], "results": results}).to_string()
}

impl BlobServer {
    fn start() -> BlobServer {
        let world = Arc::new(Mutex::new(World::default()));
        let w = world.clone();
        let server = FakeServer::start_cutting(move |req| {
            w.lock().unwrap_or_else(|p| p.into_inner()).handle(req)
        });
        BlobServer { server, world }
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn holds(&self, sha: &str) -> Option<Vec<u8>> {
        self.world()
            .blobs
            .get(sha)
            .filter(|b| b.complete)
            .map(|b| b.data.clone())
    }

    fn requests(&self, method: &str, path_start: &str) -> usize {
        self.server
            .seen()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(path_start))
            .count()
    }
}

/// A crew phone with jolla.jpg attached (not uploaded), talking to `server`.
fn phone_with_photo(dir: &tempfile::TempDir, server: &BlobServer) -> FieldsyncClient {
    let (client, _, project) = crew_phone(dir, &server.server.url);
    client
        .attach_photo(
            PhotoSource::file(jolla().to_string_lossy()),
            to_project(&project),
            None,
            String::new(),
            Vec::new(),
        )
        .expect("attach");
    client
}

fn item(client: &FieldsyncClient) -> UploadItem {
    let s = client.upload_status().expect("queue");
    assert_eq!(s.items.len(), 1, "{s:?}");
    s.items[0].clone()
}

/// A small deterministic generator (xorshift64*), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

#[test]
fn an_upload_cut_at_random_points_resumes_from_what_the_server_holds_until_complete() {
    for seed in [1u64, 7, 42] {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = BlobServer::start();
        let mut client = phone_with_photo(&dir, &server);
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut runs = 0;
        while server.holds(JOLLA_SHA256).is_none() {
            runs += 1;
            assert!(runs < 60, "seed {seed}: no end in sight");
            // Somewhere in the next three chunks, cut off in one of the two ways.
            let how = if rng.below(2) == 0 {
                Cut::MidChunk
            } else {
                Cut::AnswerLost
            };
            server.world().cut = Some((rng.below(3) as u32, how));
            let r = client
                .upload_photos(None)
                .expect("a cut is no error of the call");
            if server.holds(JOLLA_SHA256).is_none() {
                assert_eq!(r.stopped_code.as_deref(), Some("network_error"), "{r:?}");
                let it = item(&client);
                assert_eq!(it.last_error_code.as_deref(), Some("network_error"));
                assert_ne!(it.state, "failed");
            }
            // Now and then the app is closed and opened again.
            if rng.below(3) == 0 {
                drop(client);
                client = open(&dir);
                client.lock().upload_chunk_bytes = CHUNK;
            }
        }
        // Once the server holds it, a run may still be needed to learn so (the answer was lost).
        let r = client.upload_photos(None).expect("final run");
        assert_eq!(r.remaining, 0, "seed {seed}");
        assert_eq!(
            server.holds(JOLLA_SHA256),
            Some(jolla_bytes()),
            "seed {seed}"
        );
        let w = server.world();
        assert_eq!(
            w.misplaced_chunks, 0,
            "seed {seed}: every chunk started at `received`"
        );
        assert_eq!(
            w.resent_bytes, 0,
            "seed {seed}: nothing the server held was sent again"
        );
        assert!(w.cuts >= 4, "seed {seed}: {} cuts in {runs} runs", w.cuts);
        drop(w);
        let it = item(&client);
        assert_eq!(
            (it.state.as_str(), it.bytes_sent, it.last_error_code.clone()),
            ("done", JOLLA_SIZE, None),
            "seed {seed}"
        );
        assert!(it.attempts >= 2, "seed {seed}: {it:?}");
        let s = client.upload_status().expect("queue");
        assert_eq!((s.done, s.bytes_pending), (1, 0));
        assert!(client.list_photos().expect("list")[0].uploaded);
    }
}

#[test]
fn a_blob_the_server_has_costs_one_request_and_sends_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = BlobServer::start();
    server.world().blobs.insert(
        JOLLA_SHA256.into(),
        Blob {
            size: JOLLA_SIZE,
            data: jolla_bytes(),
            complete: true,
        },
    );
    let client = phone_with_photo(&dir, &server);
    let r = client.upload_photos(None).expect("upload");
    assert_eq!((r.completed, r.bytes_sent, r.remaining), (1, 0, 0), "{r:?}");
    assert_eq!(server.requests("POST", "/v1/blobs"), 1);
    assert_eq!(server.requests("PUT", "/v1/blobs/"), 0);
    assert_eq!(item(&client).state, "done");
    // Nothing left: a second run asks nothing.
    client.upload_photos(None).expect("again");
    assert_eq!(server.requests("POST", "/v1/blobs"), 1);
}

#[test]
fn the_queue_survives_a_restart_and_a_byte_budget_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = BlobServer::start();
    let client = phone_with_photo(&dir, &server);
    let r = client.upload_photos(Some(100_000)).expect("part");
    assert_eq!(r.bytes_sent, 100_000);
    assert_eq!(r.stopped_code.as_deref(), Some("max_bytes_reached"));
    assert_eq!((r.remaining, r.bytes_pending), (1, JOLLA_SIZE - 100_000));
    let before = item(&client);
    assert_eq!(
        (before.state.as_str(), before.bytes_sent),
        ("uploading", 100_000)
    );
    drop(client);

    let client = open(&dir);
    client.lock().upload_chunk_bytes = CHUNK;
    assert_eq!(item(&client), before, "kept across the restart");
    let r = client.upload_photos(Some(0)).expect("nothing allowed");
    assert_eq!(r.bytes_sent, 0);
    let r = client.upload_photos(None).expect("the rest");
    assert_eq!(
        (r.completed, r.bytes_sent, r.remaining),
        (1, JOLLA_SIZE - 100_000, 0)
    );
    assert_eq!(server.holds(JOLLA_SHA256), Some(jolla_bytes()));
    assert_eq!(server.world().resent_bytes, 0);
}

#[test]
fn an_offset_mismatch_resumes_from_the_servers_count_and_a_lost_session_starts_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = BlobServer::start();
    let client = phone_with_photo(&dir, &server);
    client.upload_photos(Some(200_000)).expect("part");
    // The server lost some bytes between its answer and the next chunk: 409 with `received`.
    server.world().rewind_after_begin = Some(CHUNK);
    let r = client.upload_photos(None).expect("resume");
    assert_eq!(r.completed, 1, "{r:?}");
    assert_eq!(server.world().mismatches, 1);
    assert_eq!(
        server.requests("POST", "/v1/blobs"),
        2,
        "one POST per run, no restart"
    );
    assert_eq!(server.holds(JOLLA_SHA256), Some(jolla_bytes()));

    // The server forgets the session right after the POST: 404 no_upload, POST again, from 0.
    let dir = tempfile::tempdir().expect("tempdir");
    let server = BlobServer::start();
    let client = phone_with_photo(&dir, &server);
    server.world().forget_after_begin = true;
    let r = client.upload_photos(None).expect("upload");
    assert_eq!(r.completed, 1, "{r:?}");
    assert_eq!(server.requests("POST", "/v1/blobs"), 2);
    assert_eq!(server.holds(JOLLA_SHA256), Some(jolla_bytes()));
}

#[test]
fn a_hash_mismatch_fails_the_upload_until_the_photo_is_attached_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = BlobServer::start();
    let client = phone_with_photo(&dir, &server);
    // The device's copy is damaged after it was taken (same size, other bytes).
    let copy = PathBuf::from(item(&client).local_path);
    let mut bytes = jolla_bytes();
    bytes[500_000] ^= 0xFF;
    std::fs::write(&copy, &bytes).expect("damage");

    let r = client
        .upload_photos(None)
        .expect("a refusal is no error of the call");
    assert_eq!((r.failed, r.completed, r.remaining), (1, 0, 0), "{r:?}");
    let it = item(&client);
    assert_eq!(it.state, "failed");
    assert_eq!(it.last_error_code.as_deref(), Some("hash_mismatch"));
    assert!(
        it.last_error
            .as_deref()
            .is_some_and(|m| m.contains("damaged")),
        "{it:?}"
    );
    assert_eq!(server.holds(JOLLA_SHA256), None);
    let s = client.upload_status().expect("queue");
    assert_eq!((s.failed, s.bytes_pending), (1, 0));
    // Not retried by itself.
    let requests = server.server.seen().len();
    client.upload_photos(None).expect("nothing to do");
    assert_eq!(server.server.seen().len(), requests);
    let photo = &client.list_photos().expect("list")[0];
    assert_eq!(photo.upload_state.as_deref(), Some("failed"));

    // Taken again: the copy is rewritten from the good bytes and the upload starts over.
    let project = photo.photo.attached_to.id.to_string();
    client
        .attach_photo(
            PhotoSource::bytes(jolla_bytes()),
            to_project(&project),
            None,
            String::new(),
            Vec::new(),
        )
        .expect("again");
    assert_eq!(std::fs::read(&copy).expect("copy"), jolla_bytes());
    let it = item(&client);
    assert_eq!(
        (it.state.as_str(), it.attempts, it.last_error_code),
        ("queued", 0, None)
    );
    client.upload_photos(None).expect("upload");
    assert_eq!(server.holds(JOLLA_SHA256), Some(jolla_bytes()));
}

#[test]
fn a_failing_upload_does_not_fail_the_sync_and_is_retried_at_the_next() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = BlobServer::start();
    let client = phone_with_photo(&dir, &server);
    server.world().refuse_begin = Some((500, fake_server::error("internal", "Try again later.")));
    let r = client.sync().expect("the records sync");
    assert_eq!(r.accepted, 2, "the project and the photo record: {r:?}");
    assert_eq!(
        (r.uploads.errors, r.uploads.completed, r.uploads.remaining),
        (1, 0, 1)
    );
    assert!(
        !client.list_photos().expect("list")[0].pending,
        "the record is on the server"
    );
    let it = item(&client);
    assert_eq!((it.state.as_str(), it.attempts), ("queued", 1));
    assert_eq!(it.last_error_code.as_deref(), Some("internal"));

    // Unsupported by the server: given up, and still no failed sync.
    server.world().refuse_begin = Some((
        415,
        fake_server::error("unsupported_format", "Only JPEG, PNG and WebP."),
    ));
    let dir2 = tempfile::tempdir().expect("tempdir");
    let other = phone_with_photo(&dir2, &server);
    let r = other.sync().expect("sync");
    assert_eq!(r.uploads.failed, 1, "{r:?}");
    assert_eq!(item(&other).state, "failed");

    // The server is back: the next sync sends the bytes.
    server.world().refuse_begin = None;
    let r = client.sync().expect("sync");
    assert_eq!((r.uploads.completed, r.uploads.remaining), (1, 0), "{r:?}");
    let it = item(&client);
    assert_eq!(
        (it.state.as_str(), it.attempts, it.last_error),
        ("done", 2, None)
    );
    assert_eq!(server.holds(JOLLA_SHA256), Some(jolla_bytes()));
    assert!(client.list_photos().expect("list")[0].uploaded);
}

#[test]
fn offline_an_upload_run_stops_at_once_and_keeps_the_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (client, _, project) = crew_phone(&dir, "http://127.0.0.1:1");
    for bytes in [
        jolla_bytes(),
        std::fs::read(fixture("gps/DSCN0010.jpg")).expect("fixture"),
    ] {
        client
            .attach_photo(
                PhotoSource::bytes(bytes),
                to_project(&project),
                None,
                String::new(),
                Vec::new(),
            )
            .expect("attach");
    }
    let r = client
        .upload_photos(None)
        .expect("offline is no error of the call");
    assert_eq!(r.stopped_code.as_deref(), Some("network_error"));
    assert_eq!(r.remaining, 2);
    let s = client.upload_status().expect("queue");
    assert_eq!(s.queued, 2);
    // The first item was tried; the second was not (the network is down for both).
    assert_eq!(s.items[0].attempts, 1);
    assert_eq!(s.items[0].last_error_code.as_deref(), Some("network_error"));
    assert_eq!(s.items[1].attempts, 0);
    // Purged with the rest of the account's data.
    client.purge().expect("purge");
    assert!(client.upload_status().expect("queue").items.is_empty());
    assert!(photo_files(&dir).is_empty());
}

#[test]
fn a_lost_device_copy_fails_its_upload_unless_the_server_already_has_the_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = BlobServer::start();
    let client = phone_with_photo(&dir, &server);
    std::fs::remove_file(item(&client).local_path).expect("lose the copy");
    let r = client.upload_photos(None).expect("upload");
    assert_eq!(r.failed, 1, "{r:?}");
    let it = item(&client);
    assert_eq!(it.state, "failed");
    assert_eq!(it.last_error_code.as_deref(), Some("local_file_missing"));
    assert_eq!(server.requests("PUT", "/v1/blobs/"), 0);
    assert_eq!(client.list_photos().expect("list")[0].local_path, None);

    // Another phone uploaded the same bytes meanwhile: attaching again finds them there.
    server.world().blobs.insert(
        JOLLA_SHA256.into(),
        Blob {
            size: JOLLA_SIZE,
            data: jolla_bytes(),
            complete: true,
        },
    );
    let project = client.list_photos().expect("list")[0]
        .photo
        .attached_to
        .id
        .to_string();
    client
        .attach_photo(
            PhotoSource::bytes(jolla_bytes()),
            to_project(&project),
            None,
            String::new(),
            Vec::new(),
        )
        .expect("again");
    std::fs::remove_file(item(&client).local_path).expect("lose it again");
    let r = client.upload_photos(None).expect("upload");
    assert_eq!((r.completed, r.failed), (1, 0), "{r:?}");
    assert_eq!(item(&client).state, "done");
    assert!(
        client
            .list_photos()
            .expect("list")
            .iter()
            .all(|p| p.uploaded)
    );
}
