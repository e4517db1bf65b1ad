//! The photo pipeline (`fieldsync_server::media`) on the real photos in
//! `shared/fixtures/photos/` (see the README there): GPS as the camera wrote it, upright
//! thumbnails for all eight EXIF orientations, phone photos at full size, maker EXIF layouts,
//! broken files, decompression bombs, metadata stripping, the perceptual hash and the stamp.
//!
//! The expected EXIF values were read with exiftool 12.57 (`exiftool -n`).

use fieldsync_server::media::{
    self, CaptureTime, Format, MAX_BYTES, MediaError, Options, decode_upright, hamming, probe,
    process, read_exif, stamp, stamp_image,
};
use image::RgbImage;
use std::path::{Path, PathBuf};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/photos");

fn fixture(rel: &str) -> Vec<u8> {
    let p = Path::new(FIXTURES).join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

fn files_in(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(FIXTURES).join(dir))
        .unwrap_or_else(|e| panic!("listing {dir}: {e}"))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no photos in {dir}");
    v
}

/// Writes `bytes` to `$FIELDSYNC_MEDIA_OUT/name` when that is set, to look at what a test made.
fn save(name: &str, bytes: &[u8]) {
    if let Some(dir) = std::env::var_os("FIELDSYNC_MEDIA_OUT") {
        std::fs::write(Path::new(&dir).join(name), bytes).expect("write to FIELDSYNC_MEDIA_OUT");
    }
}

fn thumbs(bytes: &[u8]) -> media::Processed {
    process(bytes, &Options::thumbnails()).expect("photo processes")
}

/// A sound photo: processed, and not flagged as damaged.
fn sound(bytes: &[u8]) -> media::Processed {
    let p = thumbs(bytes);
    assert!(!p.damaged, "a sound photo is flagged as damaged");
    p
}

fn decode(jpeg: &[u8]) -> RgbImage {
    image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
        .expect("our JPEG decodes")
        .into_rgb8()
}

/// Whether a JPEG carries an APP1 segment starting "Exif\0\0".
fn has_exif_segment(jpeg: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
        let marker = jpeg[i + 1];
        if marker == 0xDA {
            break; // start of scan: no more metadata segments
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if marker == 0xE1 && jpeg.get(i + 4..i + 10) == Some(b"Exif\0\0".as_slice()) {
            return true;
        }
        i += 2 + len;
    }
    false
}

// ---- GPS, time and camera ----

#[test]
fn gps_matches_what_the_nikon_wrote() {
    // file, latitude, longitude, DateTimeOriginal (exiftool -n; all N and E, no altitude value:
    // the camera wrote GPSAltitudeRef without GPSAltitude).
    let truth = [
        (
            "DSCN0010.jpg",
            43.4674483333333,
            11.8851266666639,
            "2008-10-22T16:28:39",
        ),
        (
            "DSCN0012.jpg",
            43.4671566666639,
            11.8853949999972,
            "2008-10-22T16:29:49",
        ),
        (
            "DSCN0021.jpg",
            43.4670816666639,
            11.8845383333306,
            "2008-10-22T16:38:20",
        ),
        (
            "DSCN0025.jpg",
            43.468365,
            11.8816349999722,
            "2008-10-22T16:43:21",
        ),
        (
            "DSCN0027.jpg",
            43.4684416666667,
            11.881515,
            "2008-10-22T16:44:01",
        ),
        (
            "DSCN0029.jpg",
            43.4682433333306,
            11.8801716666389,
            "2008-10-22T16:46:53",
        ),
        (
            "DSCN0038.jpg",
            43.4672549999972,
            11.8792133333333,
            "2008-10-22T16:52:15",
        ),
        (
            "DSCN0040.jpg",
            43.4660116666389,
            11.8791116666389,
            "2008-10-22T16:55:37",
        ),
        (
            "DSCN0042.jpg",
            43.464455,
            11.8814783333333,
            "2008-10-22T17:00:07",
        ),
    ];
    assert_eq!(
        truth.len(),
        files_in("gps").len(),
        "a gps/ file is not checked"
    );
    for (file, lat, lon, time) in truth {
        let exif = read_exif(&fixture(&format!("gps/{file}")));
        let fix = exif.gps.unwrap_or_else(|| panic!("{file}: no GPS"));
        assert!(
            (fix.lat - lat).abs() < 1e-6,
            "{file}: lat {} vs {lat}",
            fix.lat
        );
        assert!(
            (fix.lon - lon).abs() < 1e-6,
            "{file}: lon {} vs {lon}",
            fix.lon
        );
        assert_eq!(fix.altitude_m, None, "{file}");
        let at = exif.captured_at.expect("capture time");
        assert_eq!(at.local.format("%Y-%m-%dT%H:%M:%S").to_string(), time);
        assert_eq!(
            at.offset_minutes, None,
            "{file}: the Nikon writes no offset"
        );
        assert_eq!(at.utc_ms(), None);
        assert_eq!(exif.make.as_deref(), Some("NIKON"));
        assert_eq!(exif.model.as_deref(), Some("COOLPIX P6000"));
        assert_eq!(exif.orientation, Some(1));
    }
}

#[test]
fn phone_photo_has_gps_and_a_capture_time_with_its_offset() {
    let exif = read_exif(&fixture("mobile/HMD_Nokia_8.3_5G.jpg"));
    let fix = exif.gps.expect("GPS");
    assert!((fix.lat - 60.1467055555556).abs() < 1e-6, "{}", fix.lat);
    assert!((fix.lon - 24.9067722222222).abs() < 1e-6, "{}", fix.lon);
    let at = exif.captured_at.expect("capture time");
    assert_eq!(at.offset_minutes, Some(180));
    // 14:12:31 at +03:00 is 11:12:31 UTC; the phone's GPS time stamp says 11:12:32.
    let utc = chrono::DateTime::from_timestamp_millis(at.utc_ms().expect("offset known"))
        .expect("valid time");
    assert_eq!(utc.to_rfc3339(), "2022-08-14T11:12:31+00:00");
    assert_eq!(exif.make.as_deref(), Some("HMD Global"));
    assert_eq!(exif.model.as_deref(), Some("Nokia 8.3 5G"));

    // No offset written: a local time, placed on the UTC line only with an assumed zone.
    let jolla = read_exif(&fixture("mobile/jolla.jpg"));
    let at: CaptureTime = jolla.captured_at.expect("capture time");
    assert_eq!(at.offset_minutes, None);
    assert_eq!(at.utc_ms(), None);
    let utc = chrono::DateTime::from_timestamp_millis(at.utc_ms_assuming(120).expect("valid"))
        .expect("valid time");
    assert_eq!(utc.to_rfc3339(), "2014-09-21T14:00:56+00:00");
    assert_eq!(jolla.gps, None);
}

#[test]
fn cameras_give_make_and_model() {
    let truth = [
        (
            "Canon_40D.jpg",
            Some("Canon"),
            Some("Canon EOS 40D"),
            Some("2008-05-30 15:56:01"),
        ),
        (
            "Fujifilm_FinePix_E500.jpg",
            Some("FUJIFILM"),
            Some("FinePix E500"),
            Some("2006-08-17 09:24:48"),
        ),
        (
            "Nikon_D70.jpg",
            Some("NIKON CORPORATION"),
            Some("NIKON D70"),
            Some("2008-03-15 09:52:01"),
        ),
        (
            "Pentax_K10D.jpg",
            Some("PENTAX Corporation"),
            Some("PENTAX K10D"),
            Some("2008-05-04 16:47:24"),
        ),
        // The Reconyx trail camera writes neither Make nor Model, and keeps its capture time in
        // its maker note, which is not read: nothing, rather than a guess.
        ("Reconyx_HC500_Hyperfire.jpg", None, None, None),
    ];
    assert_eq!(
        truth.len(),
        files_in("cameras").len(),
        "a cameras/ file is not checked"
    );
    for (file, make, model, time) in truth {
        let bytes = fixture(&format!("cameras/{file}"));
        let exif = read_exif(&bytes);
        assert_eq!(exif.make.as_deref(), make, "{file}");
        assert_eq!(exif.model.as_deref(), model, "{file}");
        let at = exif
            .captured_at
            .map(|t| t.local.format("%Y-%m-%d %H:%M:%S").to_string());
        assert_eq!(at.as_deref(), time, "{file}");
        // And each one makes its thumbnails, never larger than the photo.
        let p = sound(&bytes);
        for t in &p.thumbnails {
            assert_eq!(
                t.width.max(t.height),
                t.long_side.min(p.width.max(p.height)),
                "{file}"
            );
        }
    }
}

// ---- orientation ----

/// Pearson correlation of the two images' luma: 1 for the same picture whatever its brightness
/// (the orientation photos differ in exposure, and each carries its own number), near 0 for
/// unrelated pictures.
fn correlation(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let luma = |img: &RgbImage| -> Vec<f64> {
        img.pixels()
            .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
            .collect()
    };
    let (x, y) = (luma(a), luma(b));
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(&y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

#[test]
fn every_orientation_gives_an_upright_thumbnail() {
    for set in ["landscape", "portrait"] {
        let reference = thumbs(&fixture(&format!("orientation/{set}_1.jpg")));
        let ref_img = decode(&reference.thumbnails[1].jpeg);
        assert_eq!(reference.exif.orientation, Some(1));
        if set == "landscape" {
            assert!(ref_img.width() > ref_img.height());
        } else {
            assert!(ref_img.width() < ref_img.height());
        }
        for o in 1..=8u8 {
            let bytes = fixture(&format!("orientation/{set}_{o}.jpg"));
            let p = sound(&bytes);
            assert_eq!(p.exif.orientation, Some(o), "{set}_{o}");
            assert_eq!(
                (p.width, p.height),
                (reference.width, reference.height),
                "{set}_{o}"
            );
            for (t, r) in p.thumbnails.iter().zip(&reference.thumbnails) {
                assert_eq!((t.width, t.height), (r.width, r.height), "{set}_{o} size");
            }
            save(&format!("{set}_{o}-320.jpg"), &p.thumbnails[1].jpeg);
            let img = decode(&p.thumbnails[1].jpeg);
            let ours = correlation(&img, &ref_img);
            assert!(
                ours > 0.9,
                "{set}_{o}: correlation {ours:.3} with the upright one"
            );
            let bits = hamming(p.phash, reference.phash);
            assert!(
                bits <= 8,
                "{set}_{o}: phash {bits} bits from the upright one"
            );

            // The check can fail: every other way of turning the stored pixels is far from
            // upright.
            let stored = decode_raw(&bytes);
            for wrong in (1..=8u8).filter(|w| *w != o) {
                let turned = media::orient(stored.clone(), wrong);
                if turned.dimensions() != (p.width, p.height) {
                    continue;
                }
                let small = media::downscale(&turned, img.width(), img.height());
                let c = correlation(&small, &ref_img);
                assert!(c < 0.6, "{set}_{o} turned as {wrong}: correlation {c:.3}");
            }
        }
    }
}

/// The stored pixels, with no orientation applied.
fn decode_raw(bytes: &[u8]) -> RgbImage {
    image::load_from_memory(bytes).expect("decodes").into_rgb8()
}

// ---- phone photos ----

#[test]
fn phone_photos_decode_and_thumbnail_at_both_sizes() {
    for (file, w, h) in [
        ("jolla.jpg", 3264, 2448),
        ("HMD_Nokia_8.3_5G.jpg", 4608, 1976),
    ] {
        let bytes = fixture(&format!("mobile/{file}"));
        let pr = probe(&bytes).expect("probe");
        assert_eq!((pr.format, pr.width, pr.height), (Format::Jpeg, w, h));
        let p = sound(&bytes);
        assert_eq!((p.width, p.height), (w, h), "{file}: orientation 1");
        assert_eq!(p.thumbnails.len(), 2);
        for (t, long) in p.thumbnails.iter().zip([1600, 320]) {
            assert_eq!(t.long_side, long);
            assert_eq!(t.width, long, "{file}: landscape, long side exact");
            let expect_h = (f64::from(h) * f64::from(long) / f64::from(w)).round() as u32;
            assert_eq!(t.height, expect_h, "{file}");
            let img = decode(&t.jpeg);
            assert_eq!(img.dimensions(), (t.width, t.height));
            assert!(!has_exif_segment(&t.jpeg), "{file} {long}: EXIF left in");
        }
    }
}

#[test]
fn thumbnails_and_stamps_carry_no_exif() {
    let bytes = fixture("gps/DSCN0010.jpg");
    assert!(
        has_exif_segment(&bytes),
        "the source has EXIF (else this proves nothing)"
    );
    let p = thumbs(&bytes);
    for t in &p.thumbnails {
        assert!(!has_exif_segment(&t.jpeg));
        let exif = read_exif(&t.jpeg);
        assert_eq!((exif.gps, exif.make, exif.captured_at), (None, None, None));
    }
    let s = stamp(&bytes, &["x".to_owned()]).expect("stamp");
    assert!(!has_exif_segment(&s));
    assert_eq!(read_exif(&s).gps, None);
}

#[test]
fn small_photos_are_not_enlarged() {
    // Fujifilm sample: 59 x 100.
    let p = thumbs(&fixture("cameras/Fujifilm_FinePix_E500.jpg"));
    assert_eq!((p.width, p.height), (59, 100));
    for t in &p.thumbnails {
        assert_eq!((t.width, t.height), (59, 100));
    }
    // A 640x480 photo: the 1600 is the photo's own size, the 320 is 320x240.
    let p = thumbs(&fixture("gps/DSCN0010.jpg"));
    let sizes: Vec<_> = p.thumbnails.iter().map(|t| (t.width, t.height)).collect();
    assert_eq!(sizes, [(640, 480), (320, 240)]);
}

// ---- bad input ----

#[test]
fn every_invalid_file_gives_a_clear_error_or_a_best_effort() {
    for path in files_in("invalid") {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = std::fs::read(&path).expect("read");
        let outcome = std::panic::catch_unwind(|| {
            let exif = read_exif(&bytes);
            (exif, process(&bytes, &Options::thumbnails()))
        });
        let (exif, result) = outcome.unwrap_or_else(|_| panic!("{name}: panicked"));
        match result {
            Ok(p) => {
                // A best effort must still be a correct thumbnail of the declared size.
                let pr = probe(&bytes).expect("probed before");
                assert_eq!((p.width, p.height), (pr.width, pr.height), "{name}");
                for t in &p.thumbnails {
                    assert_eq!(decode(&t.jpeg).dimensions(), (t.width, t.height), "{name}");
                }
                println!(
                    "{name}: {}, {}x{}, exif {exif:?}",
                    if p.damaged {
                        "damaged, best effort"
                    } else {
                        "sound"
                    },
                    p.width,
                    p.height
                );
                save(&format!("invalid-{name}"), &p.thumbnails[0].jpeg);
            }
            Err(e) => {
                assert!(e.is_client_error(), "{name}: {e}");
                assert!(!e.to_string().is_empty());
                println!("{name}: {} ({e})", e.code());
            }
        }
    }
}

#[test]
fn the_cut_off_olympus_photo_shows_what_it_holds() {
    // corrupted.jpg: a 10 MP Olympus photo whose scan data stops about an eighth of the way
    // down (the file still ends with an EOI marker). Its EXIF is intact.
    let p = thumbs(&fixture("invalid/corrupted.jpg"));
    assert!(p.damaged);
    assert_eq!((p.width, p.height), (3648, 2736));
    assert_eq!(p.exif.make.as_deref(), Some("OLYMPUS IMAGING CORP."));
    assert_eq!(p.exif.model.as_deref(), Some("u1020,S1020"));
    let at = p.exif.captured_at.expect("capture time").local;
    assert_eq!(at.to_string(), "2015-09-08 11:02:17");
    let img = decode(&p.thumbnails[1].jpeg);
    let (w, h) = img.dimensions();
    let grey = |y: u32| {
        (0..w)
            .map(|x| img.get_pixel(x, y).0)
            .filter(|px| px.iter().all(|c| c.abs_diff(128) <= 3))
            .count()
    };
    assert!(grey(2) < w as usize / 4, "the top was decoded");
    assert_eq!(grey(h - 2), w as usize, "the missing rest is grey");
}

#[test]
fn truncated_photo_gives_a_thumbnail_or_a_clear_error() {
    let full = fixture("mobile/jolla.jpg");
    // Cut in the header, in the middle of the scan, and near the end. (The last few bytes
    // can go unnoticed: the decoder pads the final bits, and what it shows is complete.)
    for cut in [300, 5_000, full.len() / 2, full.len() - 20_000] {
        let bytes = &full[..cut];
        let result = std::panic::catch_unwind(|| process(bytes, &Options::thumbnails()))
            .unwrap_or_else(|_| panic!("cut at {cut}: panicked"));
        match result {
            Ok(p) => {
                assert_eq!(p.thumbnails[0].width, 1600, "cut at {cut}");
                assert!(p.damaged, "cut at {cut}: not flagged as damaged");
            }
            Err(e) => assert!(
                ["undecodable_image", "image_too_large"].contains(&e.code()),
                "cut at {cut}: {e}"
            ),
        }
    }
}

/// A PNG declaring `w` x `h` (IHDR with a correct CRC) whose IDAT holds an empty zlib stream:
/// what a decoder reads before the pixels is real, the pixels are not there.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter method, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(13u32.to_be_bytes());
    out.extend(&ihdr);
    out.extend(crc32(&ihdr).to_be_bytes());
    let idat = b"IDAT\x78\x01\x01\x00\x00\xFF\xFF\x00\x00\x00\x01";
    out.extend(((idat.len() - 4) as u32).to_be_bytes());
    out.extend(idat);
    out.extend(crc32(idat).to_be_bytes());
    out.extend(0u32.to_be_bytes());
    out.extend(b"IEND");
    out.extend(crc32(b"IEND").to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A real small JPEG (the Canon sample) whose frame header is changed to declare `w` x `h`.
fn jpeg_declaring(w: u16, h: u16) -> Vec<u8> {
    let mut jpeg = fixture("cameras/Canon_40D.jpg");
    let mut i = 2;
    while i + 9 < jpeg.len() && jpeg[i] == 0xFF {
        let marker = jpeg[i + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if (0xC0..=0xC2).contains(&marker) {
            jpeg[i + 5..i + 7].copy_from_slice(&h.to_be_bytes());
            jpeg[i + 7..i + 9].copy_from_slice(&w.to_be_bytes());
            return jpeg;
        }
        i += 2 + len;
    }
    panic!("no frame header in the Canon sample");
}

#[test]
fn a_decompression_bomb_is_refused_before_decoding() {
    let bomb = png_header(100_000, 100_000);
    let e = probe(&bomb).expect_err("a 10-gigapixel PNG is refused");
    assert_eq!(e.code(), "image_too_large", "{e}");
    assert!(e.to_string().contains("100000 x 100000"), "{e}");
    let e = process(&bomb, &Options::thumbnails()).expect_err("refused");
    assert_eq!(e.code(), "image_too_large", "{e}");

    // Nothing was allocated for the pixels: the same calls in a process of their own (this test
    // binary, running only `bomb_child`) peak at a few MiB, where decoding even the 400 MP bomb
    // would take 1.2 GB.
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "media::bomb_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FIELDSYNC_BOMB_CHILD", "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    let peak_kib: u64 = stdout
        .lines()
        .find_map(|l| l.split("peak_rss_kib=").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in the child's output: {stdout}"));
    assert!(
        peak_kib < 64 * 1024,
        "probing bombs peaked at {peak_kib} KiB"
    );

    // Just over the pixel cap, and one side over the side cap.
    assert_eq!(
        probe(&png_header(10_001, 10_000)).map_err(|e| e.code()),
        Err("image_too_large")
    );
    assert_eq!(
        probe(&png_header(30_001, 10)).map_err(|e| e.code()),
        Err("image_too_large")
    );
    // A JPEG declaring 65,000 x 65,000 in 200 bytes.
    let e = probe(&jpeg_declaring(65_000, 65_000)).expect_err("refused");
    assert_eq!(e.code(), "image_too_large", "{e}");
    // A PNG that declares a modest size but holds no pixels is not too large, just broken.
    let e = process(&png_header(640, 480), &Options::thumbnails()).expect_err("no pixels");
    assert_eq!(e.code(), "undecodable_image", "{e}");
}

/// Run by `a_decompression_bomb_is_refused_before_decoding` in a process of its own.
#[test]
fn bomb_child() {
    if std::env::var_os("FIELDSYNC_BOMB_CHILD").is_none() {
        return;
    }
    for bomb in [
        png_header(100_000, 100_000),
        png_header(20_000, 20_000),
        jpeg_declaring(20_000, 20_000),
    ] {
        assert_eq!(probe(&bomb).map_err(|e| e.code()), Err("image_too_large"));
        let r = process(&bomb, &Options::thumbnails()).map(|_| ());
        assert_eq!(r.map_err(|e| e.code()), Err("image_too_large"));
    }
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM");
    println!("peak_rss_kib={peak}");
}

#[test]
fn other_formats_are_refused_with_a_reason() {
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heicmiaf\0\0\0\0".to_vec();
    let e = probe(&heic).expect_err("HEIC refused");
    assert_eq!(e.code(), "unsupported_format");
    assert!(
        e.to_string().contains("HEIC") && e.to_string().contains("JPEG"),
        "{e}"
    );
    let e = process(b"GIF89a\x01\0\x01\0\0\0\0;", &Options::thumbnails()).expect_err("GIF");
    assert_eq!(e.code(), "unsupported_format");
    assert!(e.to_string().contains("GIF"), "{e}");
    assert_eq!(probe(b"").map_err(|e| e.code()), Err("empty_file"));
    assert_eq!(
        probe(b"hello, world").map_err(|e| e.code()),
        Err("unsupported_format")
    );
    let huge = vec![0xFFu8; MAX_BYTES + 1];
    let e = probe(&huge).expect_err("too large");
    assert_eq!(e.code(), "file_too_large");
    assert_eq!(
        e.to_string(),
        "The file is 41 MiB; a photo may be at most 40 MiB."
    );
    // JPEG magic and nothing else.
    assert_eq!(
        probe(&[0xFF, 0xD8, 0xFF]).map_err(|e| e.code()),
        Err("undecodable_image")
    );
}

#[test]
fn png_and_webp_are_processed_with_transparency_over_white() {
    let mut rgba = image::RgbaImage::from_pixel(400, 300, image::Rgba([0, 0, 255, 255]));
    for (x, _, p) in rgba.enumerate_pixels_mut() {
        if x < 200 {
            *p = image::Rgba([0, 0, 0, 0]); // transparent half
        }
    }
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(rgba.clone())
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encode PNG");
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .encode(rgba.as_raw(), 400, 300, image::ExtendedColorType::Rgba8)
        .expect("encode WebP");
    for (bytes, format) in [(png, Format::Png), (webp, Format::WebP)] {
        let p = thumbs(&bytes);
        assert_eq!(p.format, format);
        assert_eq!((p.width, p.height), (400, 300));
        let small = decode(&p.thumbnails[1].jpeg);
        assert_eq!(small.dimensions(), (320, 240));
        let left = small.get_pixel(40, 120).0;
        let right = small.get_pixel(280, 120).0;
        assert!(
            left.iter().all(|c| *c > 240),
            "{format:?}: transparent is white, got {left:?}"
        );
        assert!(
            right[2] > 200 && right[0] < 40,
            "{format:?}: blue stays blue, got {right:?}"
        );
    }
}

// ---- perceptual hash ----

#[test]
fn phash_finds_a_resized_recompressed_copy_and_tells_photos_apart() {
    let photos = [
        "gps/DSCN0010.jpg",
        "gps/DSCN0025.jpg",
        "gps/DSCN0042.jpg",
        "orientation/landscape_1.jpg",
        "orientation/portrait_1.jpg",
        "cameras/Canon_40D.jpg",
        "cameras/Reconyx_HC500_Hyperfire.jpg",
    ];
    let hashes: Vec<u64> = photos.iter().map(|f| thumbs(&fixture(f)).phash).collect();
    for (i, f) in photos.iter().enumerate() {
        // The 1600 thumbnail (resized, recompressed at quality 82), and its own 320 again
        // at quality 40: a copy someone saved and sent on.
        let p = thumbs(&fixture(f));
        let copy = process(
            &p.thumbnails[0].jpeg,
            &Options {
                sizes: vec![500],
                quality: 40,
            },
        )
        .expect("copy");
        let again = thumbs(&copy.thumbnails[0].jpeg);
        for (what, h) in [("copy", copy.phash), ("copy of the copy", again.phash)] {
            let bits = hamming(hashes[i], h);
            assert!(bits <= 6, "{f}: {what} is {bits} bits away");
        }
        for (j, g) in photos.iter().enumerate().skip(i + 1) {
            let bits = hamming(hashes[i], hashes[j]);
            assert!(bits >= 14, "{f} and {g} are only {bits} bits apart");
        }
    }
}

// ---- stamp ----

#[test]
fn stamp_draws_in_the_corner_only() {
    let bytes = fixture("orientation/portrait_6.jpg");
    let lines = vec![
        "2026-11-24 10:31:05 +03:00".to_owned(),
        "43.467448 N  11.885127 E".to_owned(),
        "Project: Renmin Road depot - fa\u{e7}ade".to_owned(), // the c-cedilla is drawn as '?'
    ];
    let out = stamp(&bytes, &lines).expect("stamp");
    let stamped = decode(&out);
    let original = decode_upright(&bytes).expect("decode");
    assert_eq!(stamped.dimensions(), original.dimensions());
    assert!(
        stamped.height() > stamped.width(),
        "portrait_6 stamped upright"
    );
    let mut canvas = original.clone();
    let rect = stamp_image(&mut canvas, &lines).expect("room");
    assert!(
        rect.x < original.width() / 10 && rect.y > original.height() / 2,
        "{rect:?}"
    );
    assert!(
        rect.width < original.width() && rect.height < original.height() / 4,
        "{rect:?}"
    );
    let (mut inside, mut outside, mut n_in, mut n_out) = (0u64, 0u64, 0u64, 0u64);
    for (x, y, p) in stamped.enumerate_pixels() {
        let d: u64 =
            p.0.iter()
                .zip(original.get_pixel(x, y).0)
                .map(|(a, b)| u64::from(a.abs_diff(b)))
                .sum();
        if rect.contains(x, y) {
            inside += d;
            n_in += 1;
        } else {
            outside += d;
            n_out += 1;
        }
    }
    let (inside, outside) = (
        inside as f64 / n_in as f64 / 3.0,
        outside as f64 / n_out as f64 / 3.0,
    );
    assert!(
        outside < 3.0,
        "outside the box: mean difference {outside:.2} (recompression only)"
    );
    assert!(inside > 25.0, "inside the box: mean difference {inside:.2}");
    save("stamped.jpg", &out);
}

#[test]
fn errors_have_stable_codes_and_sentences() {
    let cases: Vec<(MediaError, &str)> = vec![
        (probe(b"").expect_err("empty"), "empty_file"),
        (probe(b"BM....").expect_err("bmp"), "unsupported_format"),
        (
            probe(&png_header(100_000, 100_000)).expect_err("bomb"),
            "image_too_large",
        ),
        (
            probe(&[0xFF, 0xD8, 0xFF, 0xE0]).expect_err("cut"),
            "undecodable_image",
        ),
    ];
    for (e, code) in cases {
        assert_eq!(e.code(), code);
        let s = e.to_string();
        assert!(
            s.ends_with('.') && s.chars().next().is_some_and(char::is_uppercase),
            "{s}"
        );
    }
}
