//! Photo bytes end to end: the resumable upload (`POST /v1/blobs`, `PUT /v1/blobs/{sha256}`,
//! `GET /v1/blobs/{sha256}`) against the real server, with a real phone photo
//! (`../shared/fixtures/photos/mobile/jolla.jpg`): cut at random points, chunks retried, lost
//! and sent with gaps, a request cut off mid-body, a server restart half way, wrong bytes,
//! two tenants, two uploaders at once, and every refusal with its code.
//!
//! Every scenario runs twice: with finished blobs in local files and in an S3-compatible
//! store (moto), with the upload sessions on local disk in both (`on_both_blob_stores!`).

use fieldsync_server::blobs::{BlobHash, BlobMime, BlobRef, MAX_BLOB_BYTES, MAX_CHUNK_BYTES};
use fieldsync_sync::{Role, TenantId};
use fieldsync_tests::{Harness, on_both_blob_stores};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const JOLLA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/photos/mobile/jolla.jpg"
);
/// `sha256sum jolla.jpg`, worked out apart from the server's code.
const JOLLA_SHA256: &str = "ee6bc1200cf8b1b26f5b60d8294d9617e8099f6dfdd7a4757a424f332360f5e3";

fn jolla() -> Vec<u8> {
    std::fs::read(JOLLA).expect("the fixture ../shared/fixtures/photos/mobile/jolla.jpg")
}

/// A tenant with one rep; the rep's token.
fn company(h: &Harness, slug: &str) -> (TenantId, String) {
    let t = h.tenant(slug);
    let email = format!("rep@{slug}.test");
    h.user(t, &email, Role::FieldRep, None);
    (t, h.token(slug, &email))
}

fn sha(bytes: &[u8]) -> String {
    BlobHash::of(bytes).to_string()
}

fn begin(h: &Harness, tok: &str, sha256: &str, size: u64, mime: &str) -> (u16, Value) {
    h.post(
        "/v1/blobs",
        Some(tok),
        &json!({"sha256": sha256, "size": size, "mime": mime}),
    )
}

fn begin_ok(h: &Harness, tok: &str, bytes: &[u8]) -> Value {
    let (status, body) = begin(h, tok, &sha(bytes), bytes.len() as u64, "image/jpeg");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sha256"], json!(sha(bytes)), "{body}");
    assert_eq!(body["size"], json!(bytes.len()), "{body}");
    body
}

fn status(h: &Harness, tok: &str, sha256: &str) -> (u16, Value) {
    h.get(&format!("/v1/blobs/{sha256}"), Some(tok))
}

fn received(h: &Harness, tok: &str, sha256: &str) -> u64 {
    let (st, body) = status(h, tok, sha256);
    assert_eq!(st, 200, "{body}");
    body["received"].as_u64().expect("received")
}

fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"], json!(code), "{}", got.1);
    assert!(
        got.1["message"].as_str().is_some_and(|m| m.len() > 10),
        "a sentence for people: {}",
        got.1
    );
}

/// What the store holds for a stored blob: `<aa>/<sha256>`, relative to the tenant.
fn blob_entry(sha256: &str) -> String {
    format!("{}/{sha256}", &sha256[..2])
}

/// What the store keeps for a tenant (see [`Harness::stored_files`]) less the thumbnails,
/// which the photo processing adds in the background after a blob is stored.
fn kept(h: &Harness, tenant: TenantId) -> Vec<String> {
    let mut files = h.stored_files(tenant);
    files.retain(|f| !f.starts_with("derived/"));
    files
}

/// Uploads `bytes` whole, in chunks of `chunk`, resuming from whatever the server holds when
/// it answers `offset_mismatch` (another uploader got there first). The last answer.
fn upload(h: &Harness, tok: &str, bytes: &[u8], chunk: usize) -> Value {
    let sha256 = sha(bytes);
    let mut r = begin_ok(h, tok, bytes)["received"]
        .as_u64()
        .expect("received") as usize;
    loop {
        let end = (r + chunk).min(bytes.len());
        let (st, body) = h.put_chunk(tok, &sha256, r as u64, &bytes[r..end]);
        match st {
            200 if body["complete"] == json!(true) => return body,
            200 | 409 => r = body["received"].as_u64().expect("received") as usize,
            _ => panic!("{st} {body}"),
        }
    }
}

#[test]
fn the_fixture_hashes_as_sha256sum_says() {
    assert_eq!(sha(&jolla()), JOLLA_SHA256);
}

fn a_photo_is_stored_under_its_hash_and_the_same_photo_again_costs_nothing(h: Harness) {
    let (tenant, tok) = company(&h, "acme");
    let bytes = jolla();
    let size = bytes.len() as u64;

    let first = begin_ok(&h, &tok, &bytes);
    assert_eq!(first["received"], json!(0));
    assert_eq!(first["complete"], json!(false));
    assert_eq!(
        status(&h, &tok, JOLLA_SHA256).1,
        json!({"sha256": JOLLA_SHA256, "size": size, "received": 0, "complete": false})
    );

    let (st, body) = h.put_chunk(&tok, JOLLA_SHA256, 0, &bytes);
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body,
        json!({"sha256": JOLLA_SHA256, "size": size, "received": size, "complete": true})
    );
    assert_eq!(h.stored_blob(tenant, JOLLA_SHA256).expect("stored"), bytes);
    // Only the blob is left: the upload's files are gone.
    assert_eq!(kept(&h, tenant), vec![blob_entry(JOLLA_SHA256)]);

    // The same photo again (another phone, or this one after a reinstall): complete at once.
    let before = metrics(&h);
    let again = begin_ok(&h, &tok, &bytes);
    assert_eq!(again["received"], json!(size));
    assert_eq!(again["complete"], json!(true));
    let after = metrics(&h);
    assert!(
        after.1 - before.1 < 1000,
        "one small request, no bytes: {before:?} → {after:?}"
    );
    // A retried last chunk whose answer was lost is told the same, whatever its offset.
    let (st, body) = h.put_chunk(&tok, JOLLA_SHA256, 400_000, &bytes[400_000..]);
    assert_eq!((st, body["complete"].clone()), (200, json!(true)), "{body}");
    assert_eq!(
        status(&h, &tok, JOLLA_SHA256).1["complete"],
        json!(true),
        "GET says complete"
    );
}

/// (requests, bytes_in) from `/metrics`.
fn metrics(h: &Harness) -> (u64, u64) {
    let (_, m) = h.get("/metrics", None);
    (
        m["requests"].as_u64().expect("requests"),
        m["bytes_in"].as_u64().expect("bytes_in"),
    )
}

/// A deterministic RNG for cut points (SplitMix64), seeded by proptest.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// 0 ..< n
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A phone on a bad network uploads `bytes`: chunks of random sizes cut at random points,
/// some sent twice (overlapping what the server holds), some whose answer is lost (the phone
/// asks where it stands), some sent too far ahead (the server's `received` puts it right),
/// one running past the end, and a fresh `POST` now and then as after an app restart.
fn flaky_upload(h: &Harness, tok: &str, bytes: &[u8], seed: u64) {
    let sha256 = sha(bytes);
    let size = bytes.len() as u64;
    let mut rng = Rng(seed);
    let mut r = begin_ok(h, tok, bytes)["received"]
        .as_u64()
        .expect("received");
    assert_eq!(r, 0);
    let slice = |from: u64, to: u64| &bytes[from as usize..to.min(size) as usize];
    let mut steps = 0;
    let mut last = Value::Null;
    while r < size {
        steps += 1;
        assert!(steps < 5_000, "the upload makes progress");
        let max = [100, 4_096, 65_536, 300_000][rng.below(4) as usize];
        let len = 1 + rng.below(max.min(size - r));
        match rng.below(12) {
            0 => {
                // Too far ahead: refused, and told where to resume.
                let off = r + 1 + rng.below(10_000);
                let body = if off < size {
                    slice(off, off + len)
                } else {
                    b"x"
                };
                let got = h.put_chunk(tok, &sha256, off, body);
                assert_error(&got, 409, "offset_mismatch");
                assert_eq!(got.1["received"], json!(r), "{}", got.1);
            }
            1 | 2 => {
                // A retry reaching back over bytes the server already holds.
                let off = r - rng.below(r.min(100_000) + 1);
                let end = (off + 1 + rng.below(max)).min(size);
                let (st, body) = h.put_chunk(tok, &sha256, off, slice(off, end));
                assert_eq!(st, 200, "{body}");
                r = r.max(end);
                assert_eq!(body["received"], json!(r), "{body}");
                last = body;
            }
            3 => {
                // The answer is lost; the phone asks.
                let _ = h.put_chunk(tok, &sha256, r, slice(r, r + len));
                let (st, body) = status(h, tok, &sha256);
                assert_eq!(st, 200, "{body}");
                r += len;
                assert_eq!(body["received"], json!(r), "{body}");
                last = body;
            }
            4 => {
                // The app restarted: it asks again with POST and resumes.
                let body = begin_ok(h, tok, bytes);
                assert_eq!(body["received"], json!(r), "{body}");
            }
            5 => {
                // One byte past the end: refused, nothing written.
                let mut chunk = slice(r, r + (size - r).min(MAX_CHUNK_BYTES as u64 - 1)).to_vec();
                if r + chunk.len() as u64 == size {
                    chunk.push(0);
                    let got = h.put_chunk(tok, &sha256, r, &chunk);
                    assert_error(&got, 409, "size_mismatch");
                    assert_eq!(received(h, tok, &sha256), r);
                }
            }
            _ => {
                let (st, body) = h.put_chunk(tok, &sha256, r, slice(r, r + len));
                assert_eq!(st, 200, "{body}");
                r += len;
                assert_eq!(body["received"], json!(r), "{body}");
                last = body;
            }
        }
    }
    assert_eq!(last["complete"], json!(true), "{last}");
    assert_eq!(last["received"], json!(size), "{last}");
}

fn an_upload_cut_at_random_points_with_retries_and_gaps_stores_the_exact_bytes(h: Harness) {
    let (tenant, tok) = company(&h, "acme");
    let photo = jolla();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&any::<u64>(), |seed| {
            // Each case a different blob: the photo with the seed appended.
            let mut bytes = photo.clone();
            bytes.extend_from_slice(&seed.to_le_bytes());
            flaky_upload(&h, &tok, &bytes, seed);
            let stored = h.stored_blob(tenant, &sha(&bytes)).expect("stored");
            prop_assert!(stored == bytes, "stored bytes differ (seed {seed})");
            Ok(())
        })
        .expect("every cut");
    // Nothing is left half-done: only the blobs are kept.
    let kept = kept(&h, tenant);
    assert_eq!(kept.len(), 12, "{kept:?}");
    assert!(kept.iter().all(|f| !f.starts_with("uploads/")), "{kept:?}");
}

fn a_chunk_cut_off_mid_request_stores_none_of_it_and_the_upload_resumes(h: Harness) {
    use std::io::{Read, Write};
    let (tenant, tok) = company(&h, "acme");
    let bytes = jolla();
    begin_ok(&h, &tok, &bytes);
    let (st, _) = h.put_chunk(&tok, JOLLA_SHA256, 0, &bytes[..100_000]);
    assert_eq!(st, 200);

    // The connection drops after half of a 200 000-byte chunk was sent.
    let addr = h.url.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        conn,
        "PUT /v1/blobs/{JOLLA_SHA256}?offset=100000 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {tok}\r\nContent-Type: application/octet-stream\r\nContent-Length: 200000\r\n\r\n"
    )
    .expect("head");
    conn.write_all(&bytes[100_000..200_000]).expect("half");
    conn.shutdown(std::net::Shutdown::Write).expect("cut");
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "a cut chunk is not acknowledged"
    );

    assert_eq!(received(&h, &tok, JOLLA_SHA256), 100_000);
    let done = upload(&h, &tok, &bytes, 300_000);
    assert_eq!(done["complete"], json!(true));
    assert_eq!(h.stored_blob(tenant, JOLLA_SHA256).expect("stored"), bytes);
    assert!(h.healthy());
}

fn an_upload_interrupted_by_a_server_restart_resumes_where_it_stopped(mut h: Harness) {
    let (tenant, tok) = company(&h, "acme");
    let bytes = jolla();
    begin_ok(&h, &tok, &bytes);
    let (st, body) = h.put_chunk(&tok, JOLLA_SHA256, 0, &bytes[..333_333]);
    assert_eq!(st, 200, "{body}");

    h.restart();

    // Everything acknowledged before the restart is still there.
    let resumed = begin_ok(&h, &tok, &bytes);
    assert_eq!(resumed["received"], json!(333_333));
    let (st, body) = h.put_chunk(&tok, JOLLA_SHA256, 333_333, &bytes[333_333..]);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["complete"], json!(true));
    assert_eq!(h.stored_blob(tenant, JOLLA_SHA256).expect("stored"), bytes);
}

fn bytes_that_do_not_match_their_hash_are_refused_and_nothing_is_stored(h: Harness) {
    let (tenant, tok) = company(&h, "acme");
    let bytes = jolla();
    let mut forged = bytes.clone();
    forged[500_000] ^= 0x01;
    begin_ok(&h, &tok, &bytes);
    let (st, _) = h.put_chunk(&tok, JOLLA_SHA256, 0, &forged[..500_000]);
    assert_eq!(st, 200);
    let got = h.put_chunk(&tok, JOLLA_SHA256, 500_000, &forged[500_000..]);
    assert_error(&got, 422, "hash_mismatch");

    assert_error(&status(&h, &tok, JOLLA_SHA256), 404, "no_upload");
    assert_eq!(
        kept(&h, tenant),
        Vec::<String>::new(),
        "neither the blob nor the partial file is kept"
    );
    // The phone starts over, from zero, and the right bytes are accepted.
    assert_eq!(begin_ok(&h, &tok, &bytes)["received"], json!(0));
    assert_eq!(upload(&h, &tok, &bytes, 1 << 20)["complete"], json!(true));
}

fn a_tenant_never_sees_nor_writes_another_tenants_blobs(h: Harness) {
    let (a, tok_a) = company(&h, "acme");
    let (b, tok_b) = company(&h, "other");
    let bytes = jolla();
    upload(&h, &tok_a, &bytes, 1 << 20);
    // A's upload in progress of another photo.
    let mut other = bytes.clone();
    other.push(1);
    let other_sha = sha(&other);
    begin_ok(&h, &tok_a, &other);
    let (st, _) = h.put_chunk(&tok_a, &other_sha, 0, &other[..1000]);
    assert_eq!(st, 200);

    // B learns nothing of either.
    assert_error(&status(&h, &tok_b, JOLLA_SHA256), 404, "no_upload");
    assert_error(&status(&h, &tok_b, &other_sha), 404, "no_upload");
    // B cannot add to A's upload.
    assert_error(
        &h.put_chunk(&tok_b, &other_sha, 1000, &other[1000..2000]),
        404,
        "no_upload",
    );
    assert_eq!(received(&h, &tok_a, &other_sha), 1000);
    // The same bytes are not "already there" for B: B sends its own copy.
    let b_begin = begin_ok(&h, &tok_b, &bytes);
    assert_eq!(b_begin["received"], json!(0));
    assert_eq!(b_begin["complete"], json!(false));
    assert_eq!(received(&h, &tok_a, &other_sha), 1000);
    upload(&h, &tok_b, &bytes, 1 << 20);
    assert_eq!(h.stored_blob(b, JOLLA_SHA256).expect("B's copy"), bytes);
    assert_eq!(h.stored_blob(a, JOLLA_SHA256).expect("A's copy"), bytes);
    // And each reads only its own.
    let read = |t| {
        h.rt.block_on(h.blobs().read(t, &JOLLA_SHA256.parse().expect("hash")))
            .expect("read")
    };
    assert!(read(a).is_some() && read(b).is_some());
    assert_eq!(read(TenantId::new()), None);
}

fn hashes_and_paths_that_could_escape_the_store_are_refused(h: Harness) {
    let (_, tok) = company(&h, "acme");
    let good = JOLLA_SHA256;
    let bad_bodies = [
        good.to_uppercase(),
        good[..63].to_owned(),
        format!("{good}0"),
        format!("../../{}", &good[6..]),
        format!("{}/{}", &good[..2], &good[3..]),
        "..".to_owned(),
        String::new(),
        format!("{}z", &good[..63]),
        format!("{} ", &good[..63]),
    ];
    for bad in &bad_bodies {
        assert_error(&begin(&h, &tok, bad, 10, "image/jpeg"), 400, "invalid_hash");
    }
    let bad_paths = [
        good.to_uppercase(),
        good[..63].to_owned(),
        format!("{good}0"),
        format!("%2e%2e%2f%2e%2e%2f{}", &good[18..]),
        "..%2F..%2F..%2Fetc%2Fpasswd".to_owned(),
        format!("..%2f{}", &good[5..]),
        "%2e%2e".to_owned(),
        format!("{}%00", &good[..63]),
    ];
    for bad in &bad_paths {
        assert_error(&status(&h, &tok, bad), 400, "invalid_hash");
        assert_error(&h.put_chunk(&tok, bad, 0, b"\xff\xd8"), 400, "invalid_hash");
    }
    // Unencoded dot segments never reach a handler that would use them.
    for raw in ["/v1/blobs/..", "/v1/blobs/../..", "/v1/blobs/./x"] {
        let (st, body) = h.get(raw, Some(&tok));
        assert!(matches!(st, 400 | 404), "{raw}: {st} {body}");
    }
    assert!(h.nothing_stored(), "nothing touched the disk or the bucket");
}

fn oversized_empty_and_unsupported_uploads_are_refused_with_codes(h: Harness) {
    let (_, tok) = company(&h, "acme");
    let some = sha(b"some photo");

    assert_error(
        &begin(&h, &tok, &some, MAX_BLOB_BYTES + 1, "image/jpeg"),
        413,
        "blob_too_large",
    );
    assert_error(
        &begin(&h, &tok, &some, u64::MAX, "image/jpeg"),
        413,
        "blob_too_large",
    );
    assert_error(
        &begin(&h, &tok, &some, 0, "image/jpeg"),
        400,
        "invalid_size",
    );
    let heic = begin(&h, &tok, &some, 1000, "image/heic");
    assert_error(&heic, 415, "unsupported_format");
    assert!(
        heic.1["message"]
            .as_str()
            .is_some_and(|m| m.contains("JPEG")),
        "{}",
        heic.1
    );
    for mime in ["image/gif", "application/pdf", "text/html", ""] {
        assert_error(
            &begin(&h, &tok, &some, 1000, mime),
            415,
            "unsupported_format",
        );
    }
    assert_error(
        &h.post(
            "/v1/blobs",
            Some(&tok),
            &json!({"sha256": some, "size": -1, "mime": "image/jpeg"}),
        ),
        400,
        "invalid_request",
    );
    assert_error(
        &h.post(
            "/v1/blobs",
            None,
            &json!({"sha256": some, "size": 10, "mime": "image/jpeg"}),
        ),
        401,
        "missing_token",
    );
    assert!(h.nothing_stored(), "refused before touching the disk");

    // PUT without a session.
    assert_error(&h.put_chunk(&tok, &some, 0, b"x"), 404, "no_upload");

    // A 9 MiB photo: a chunk over 8 MiB is refused, one of 8 MiB is taken.
    let big: Vec<u8> = (0..9u32 << 20).map(|i| (i % 253) as u8).collect();
    let big_sha = sha(&big);
    let (st, body) = begin(&h, &tok, &big_sha, big.len() as u64, "image/png");
    assert_eq!(st, 200, "{body}");
    assert_error(
        &h.put_chunk(&tok, &big_sha, 0, &big[..MAX_CHUNK_BYTES + 1]),
        413,
        "chunk_too_large",
    );
    assert_eq!(received(&h, &tok, &big_sha), 0);
    let (st, body) = h.put_chunk(&tok, &big_sha, 0, &big[..MAX_CHUNK_BYTES]);
    assert_eq!(
        (st, body["received"].clone()),
        (200, json!(MAX_CHUNK_BYTES)),
        "{body}"
    );
    // Past the declared end.
    let mut past = big[MAX_CHUNK_BYTES..].to_vec();
    past.push(0);
    assert_error(
        &h.put_chunk(&tok, &big_sha, MAX_CHUNK_BYTES as u64, &past),
        409,
        "size_mismatch",
    );
    // Another size for the same hash.
    assert_error(
        &begin(&h, &tok, &big_sha, big.len() as u64 + 1, "image/png"),
        409,
        "size_mismatch",
    );
    // Not raw bytes, or no offset.
    assert_error(
        &h.put_raw(
            &format!("/v1/blobs/{big_sha}?offset={MAX_CHUNK_BYTES}"),
            &tok,
            "application/json",
            b"{}",
        ),
        415,
        "unsupported_media_type",
    );
    assert_error(
        &h.put_raw(
            &format!("/v1/blobs/{big_sha}"),
            &tok,
            "application/octet-stream",
            b"x",
        ),
        400,
        "invalid_query",
    );
    assert_error(
        &h.put_raw(
            &format!("/v1/blobs/{big_sha}?offset=-5"),
            &tok,
            "application/octet-stream",
            b"x",
        ),
        400,
        "invalid_query",
    );
    assert_eq!(received(&h, &tok, &big_sha), MAX_CHUNK_BYTES as u64);
    let (st, body) = h.put_chunk(
        &tok,
        &big_sha,
        MAX_CHUNK_BYTES as u64,
        &big[MAX_CHUNK_BYTES..],
    );
    assert_eq!((st, body["complete"].clone()), (200, json!(true)), "{body}");
}

fn uploads_of_the_same_photo_at_once_store_one_intact_copy_and_announce_it_once(mut h: Harness) {
    let (tenant, tok) = company(&h, "acme");
    let stored: Arc<Mutex<Vec<BlobRef>>> = Arc::default();
    let seen = stored.clone();
    h.restart_with(move |state| {
        state.on_blob_stored = Some(Arc::new(move |_, blob| {
            seen.lock().expect("lock").push(blob);
        }));
    });
    let bytes = jolla();
    // Four phones of the company (one token is enough: the server sees four uploaders) with
    // different chunk sizes, so their chunks overlap at every kind of boundary.
    std::thread::scope(|s| {
        for chunk in [7_919, 65_536, 100_003, 1 << 20] {
            let (h, tok, bytes) = (&h, &tok, &bytes);
            s.spawn(move || {
                let done = upload(h, tok, bytes, chunk);
                assert_eq!(done["complete"], json!(true), "{done}");
            });
        }
    });
    assert_eq!(h.stored_blob(tenant, JOLLA_SHA256).expect("stored"), bytes);
    assert_eq!(kept(&h, tenant), vec![blob_entry(JOLLA_SHA256)]);
    let announced = stored.lock().expect("lock").clone();
    assert_eq!(
        announced,
        vec![BlobRef {
            tenant,
            sha256: JOLLA_SHA256.parse().expect("hash"),
            size: bytes.len() as u64,
            mime: BlobMime::Jpeg,
        }]
    );
    // Uploaded again: nothing new to announce.
    upload(&h, &tok, &bytes, 1 << 20);
    assert_eq!(stored.lock().expect("lock").len(), 1);
}

#[test]
fn a_missing_bucket_is_a_clear_error_at_startup_without_credentials_in_it() {
    let Some(s3) = fieldsync_tests::S3Server::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store =
        fieldsync_server::blobs::BlobStore::s3(dir.path(), "s3://no-such-bucket/photos", s3.vars())
            .expect("a well-formed configuration");
    assert_eq!(store.location(), "s3://no-such-bucket/photos");
    let err = rt
        .block_on(store.check())
        .expect_err("the bucket does not exist");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("NoSuchBucket"), "{shown}");
    for (name, value) in s3.vars() {
        if name.contains("SECRET") {
            assert!(
                !shown.contains(&value),
                "the secret is never shown: {shown}"
            );
        }
    }
    assert!(!format!("{store:?}").contains("fieldsync-test-secret"));
    // The bucket the harness made answers.
    let good = fieldsync_server::blobs::BlobStore::s3(dir.path(), &s3.url(), s3.vars())
        .expect("configuration");
    rt.block_on(good.check()).expect("the test bucket answers");
    assert!(!dir.path().join("x").exists());
}

#[test]
fn an_upload_is_not_acknowledged_while_s3_is_down_and_a_fully_received_one_is_finished_later() {
    let Some(mut h) = Harness::start_s3() else {
        return;
    };
    let (tenant, tok) = company(&h, "acme");
    let stored: Arc<Mutex<Vec<BlobRef>>> = Arc::default();
    let seen = stored.clone();
    h.restart_with(move |state| {
        state.on_blob_stored = Some(Arc::new(move |_, blob| {
            seen.lock().expect("lock").push(blob);
        }));
    });
    let bytes = jolla();
    begin_ok(&h, &tok, &bytes);
    let (st, body) = h.put_chunk(&tok, JOLLA_SHA256, 0, &bytes[..400_000]);
    assert_eq!(st, 200, "{body}");

    // The bucket is unreachable while the last chunk arrives: the phone is not told
    // "complete", and nothing is announced.
    h.s3.as_mut().expect("S3").stop();
    let got = h.put_chunk(&tok, JOLLA_SHA256, 400_000, &bytes[400_000..]);
    assert_error(&got, 500, "internal_error");
    assert!(stored.lock().expect("lock").is_empty(), "nothing announced");

    // S3 is back. What was acknowledged is still held; as if the server had then written
    // the last chunk and stopped before storing it, the session holds every byte.
    h.s3.as_mut().expect("S3").restart();
    assert_eq!(received(&h, &tok, JOLLA_SHA256), 400_000);
    let part = h
        .blob_dir
        .join(tenant.to_string())
        .join("uploads")
        .join(format!("{JOLLA_SHA256}.part"));
    std::fs::write(&part, &bytes).expect("the whole session");
    // The phone's next POST finishes it without sending a byte: stored in the bucket,
    // the session gone, and announced once so its thumbnails are made.
    let again = begin_ok(&h, &tok, &bytes);
    assert_eq!(again["complete"], json!(true), "{again}");
    assert_eq!(h.stored_blob(tenant, JOLLA_SHA256).expect("stored"), bytes);
    assert_eq!(kept(&h, tenant), vec![blob_entry(JOLLA_SHA256)]);
    assert_eq!(
        *stored.lock().expect("lock"),
        vec![BlobRef {
            tenant,
            sha256: JOLLA_SHA256.parse().expect("hash"),
            size: bytes.len() as u64,
            mime: BlobMime::Jpeg,
        }]
    );
    assert_eq!(begin_ok(&h, &tok, &bytes)["complete"], json!(true));
    assert_eq!(stored.lock().expect("lock").len(), 1);
}

on_both_blob_stores!(
    a_photo_is_stored_under_its_hash_and_the_same_photo_again_costs_nothing,
    an_upload_cut_at_random_points_with_retries_and_gaps_stores_the_exact_bytes,
    a_chunk_cut_off_mid_request_stores_none_of_it_and_the_upload_resumes,
    an_upload_interrupted_by_a_server_restart_resumes_where_it_stopped,
    bytes_that_do_not_match_their_hash_are_refused_and_nothing_is_stored,
    a_tenant_never_sees_nor_writes_another_tenants_blobs,
    hashes_and_paths_that_could_escape_the_store_are_refused,
    oversized_empty_and_unsupported_uploads_are_refused_with_codes,
    uploads_of_the_same_photo_at_once_store_one_intact_copy_and_announce_it_once,
);
