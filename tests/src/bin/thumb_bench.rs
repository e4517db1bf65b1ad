//! fieldsync thumbnail benchmark (issue 4): both thumbnails (1600 and 320 px on the long side)
//! of a phone photo, beside ImageMagick on the same files, on the same machine, in the same run.
//!
//! **Ours** (`fieldsync_server::media::process`, from the bytes in memory, one thread): probe,
//! EXIF, decode (image / zune-jpeg) to RGB, box pre-shrink + Catmull-Rom to 1600, the 320 from
//! the 1600, each turned upright and encoded as JPEG quality 82, and the perceptual hash. Also
//! each step alone, to show where the time goes.
//!
//! **ImageMagick** (`convert`, the distribution's package; each timing includes the process
//! start and reading the file from the page cache and writing the thumbnails to a temp dir):
//! - `two commands`: `convert FILE -auto-orient -thumbnail 1600x1600 a.jpg` then the same with
//!   `320x320`, as a shell script would make them; the output quality is ImageMagick's default
//!   (the input's estimated quality).
//! - `one command`: both from one decode, `convert FILE -auto-orient ( +clone -thumbnail
//!   1600x1600 -write a.jpg +delete ) -thumbnail 320x320 b.jpg`.
//! - `one command, jpeg:size`: the same with `-define jpeg:size=WxH` before the file, WxH the
//!   1600 thumbnail's size (1600x1200 for the Jolla, 1600x686 for the Nokia), which lets
//!   libjpeg-turbo decode at the smallest DCT scale (n/8) that still covers it: ImageMagick's
//!   fastest way. (A larger hint such as 3200x3200 is slower: libjpeg-turbo also scales *up*,
//!   to 11/8 for the Jolla, and the decoded image no longer fits ImageMagick's memory limit.)
//!
//! Each figure is the median of `--runs` (after one untimed warm-up), wall time per photo for
//! both sizes.
//!
//! ```text
//! cargo build --release -p fieldsync-tests --bin fieldsync-thumb-bench
//! ./target/release/fieldsync-thumb-bench --runs 15
//! ```

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use fieldsync_server::media::{self, Options};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "fieldsync-thumb-bench",
    about = "Thumbnails per second (1600 + 320 px) for phone photos, beside ImageMagick"
)]
struct Args {
    /// Timed runs per measurement; medians are reported.
    #[arg(long, default_value_t = 11)]
    runs: usize,
    /// Photos, relative to --fixtures unless absolute.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "mobile/jolla.jpg,mobile/HMD_Nokia_8.3_5G.jpg"
    )]
    photos: Vec<PathBuf>,
    /// The photo fixtures folder.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/photos"))]
    fixtures: PathBuf,
    /// ImageMagick's convert (the real one: /usr/local/bin/convert may be a stand-in).
    #[arg(long, default_value = "/usr/bin/convert")]
    convert: PathBuf,
    /// Skip ImageMagick.
    #[arg(long)]
    no_imagemagick: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.runs > 0, "--runs must be at least 1");
    let tmp = tempfile::tempdir()?;
    let im = if args.no_imagemagick {
        None
    } else {
        let out = Command::new(&args.convert)
            .arg("-version")
            .output()
            .with_context(|| format!("running {}", args.convert.display()))?;
        let version = String::from_utf8_lossy(&out.stdout);
        let first = version.lines().next().unwrap_or("").to_owned();
        ensure!(
            first.contains("ImageMagick"),
            "{} is not ImageMagick ({first:?}); apt-get install imagemagick",
            args.convert.display()
        );
        Some(first)
    };
    println!("machine: {} cores, {}", cores(), cpu_model());
    if let Some(v) = &im {
        println!("imagemagick: {v}");
    }
    println!("runs: {} (medians)\n", args.runs);

    let mut rows = Vec::new();
    for photo in &args.photos {
        let path = if photo.is_absolute() {
            photo.clone()
        } else {
            args.fixtures.join(photo)
        };
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let p = media::probe(&bytes)?;
        println!(
            "== {name}: {}x{}, {:.1} MP, {} KiB",
            p.width,
            p.height,
            f64::from(p.width) * f64::from(p.height) / 1e6,
            bytes.len() / 1024
        );

        let opts = Options::thumbnails();
        let out = media::process(&bytes, &opts)?;
        let sizes: Vec<String> = out
            .thumbnails
            .iter()
            .map(|t| format!("{}x{} {} KiB", t.width, t.height, t.jpeg.len() / 1024))
            .collect();
        println!("   ours: {}", sizes.join(", "));
        let ours = median(args.runs, || {
            let t = Instant::now();
            let out = media::process(&bytes, &opts)?;
            ensure!(out.thumbnails.len() == 2);
            Ok(t.elapsed())
        })?;
        steps(&bytes, args.runs)?;

        let mut row = Row {
            name,
            ours,
            im: Vec::new(),
        };
        if im.is_some() {
            let dir = tmp.path();
            let (a, b) = (dir.join("a.jpg"), dir.join("b.jpg"));
            let two = median(args.runs, || {
                let t = Instant::now();
                convert(
                    &args.convert,
                    &[
                        path.as_os_str(),
                        os("-auto-orient"),
                        os("-thumbnail"),
                        os("1600x1600"),
                        a.as_os_str(),
                    ],
                )?;
                convert(
                    &args.convert,
                    &[
                        path.as_os_str(),
                        os("-auto-orient"),
                        os("-thumbnail"),
                        os("320x320"),
                        b.as_os_str(),
                    ],
                )?;
                Ok(t.elapsed())
            })?;
            println!("   imagemagick: {} KiB, {} KiB", file_kib(&a), file_kib(&b));
            let big = out.thumbnails[0].clone();
            let hint = format!("jpeg:size={}x{}", big.width, big.height);
            let one = |define: bool| {
                let mut argv: Vec<&std::ffi::OsStr> = Vec::new();
                if define {
                    argv.extend([os("-define"), os(&hint)]);
                }
                argv.extend([
                    path.as_os_str(),
                    os("-auto-orient"),
                    os("("),
                    os("+clone"),
                    os("-thumbnail"),
                    os("1600x1600"),
                    os("-write"),
                    a.as_os_str(),
                    os("+delete"),
                    os(")"),
                    os("-thumbnail"),
                    os("320x320"),
                    b.as_os_str(),
                ]);
                median(args.runs, || {
                    let t = Instant::now();
                    convert(&args.convert, &argv)?;
                    Ok(t.elapsed())
                })
            };
            row.im.push(("two commands", two));
            row.im.push(("one command", one(false)?));
            row.im.push(("one command, jpeg:size", one(true)?));
        }
        rows.push(row);
        println!();
    }

    println!("| photo | fieldsync | photos/s | thumbnails/s |{}", {
        let names: Vec<&str> = rows
            .first()
            .map(|r| r.im.iter().map(|(n, _)| *n).collect())
            .unwrap_or_default();
        names
            .iter()
            .map(|n| format!(" ImageMagick, {n} | ours faster by |"))
            .collect::<String>()
    });
    let cols = 4 + 2 * rows.first().map_or(0, |r| r.im.len());
    println!("|{}", "---|".repeat(cols));
    for r in &rows {
        let per_s = 1.0 / r.ours.as_secs_f64();
        let mut line = format!(
            "| {} | {} | {:.1} | {:.1} |",
            r.name,
            ms(r.ours),
            per_s,
            2.0 * per_s
        );
        for (_, d) in &r.im {
            line += &format!(
                " {} | {:.2}x |",
                ms(*d),
                d.as_secs_f64() / r.ours.as_secs_f64()
            );
        }
        println!("{line}");
    }
    Ok(())
}

struct Row {
    name: String,
    ours: Duration,
    im: Vec<(&'static str, Duration)>,
}

/// Each step of `process` alone, on the same photo, to show where the time goes.
fn steps(bytes: &[u8], runs: usize) -> Result<()> {
    let probe = median(runs, || {
        let t = Instant::now();
        media::probe(bytes)?;
        Ok(t.elapsed())
    })?;
    let exif = median(runs, || {
        let t = Instant::now();
        std::hint::black_box(media::read_exif(bytes));
        Ok(t.elapsed())
    })?;
    let decode = median(runs, || {
        let t = Instant::now();
        media::decode_upright(bytes)?;
        Ok(t.elapsed())
    })?;
    let img = media::decode_upright(bytes)?;
    let fit = |long: u32, (w, h): (u32, u32)| {
        let s = f64::from(long) / f64::from(w.max(h));
        (
            ((f64::from(w) * s).round() as u32).max(1),
            ((f64::from(h) * s).round() as u32).max(1),
        )
    };
    let (w1, h1) = fit(1600, img.dimensions());
    let big_t = median(runs, || {
        let t = Instant::now();
        std::hint::black_box(media::downscale(&img, w1, h1));
        Ok(t.elapsed())
    })?;
    let k = (img.width() / w1).min(img.height() / h1);
    let box_t = median(runs, || {
        let t = Instant::now();
        std::hint::black_box(media::box_shrink(&img, k));
        Ok(t.elapsed())
    })?;
    let big = media::downscale(&img, w1, h1);
    let (w2, h2) = fit(320, big.dimensions());
    let small_t = median(runs, || {
        let t = Instant::now();
        std::hint::black_box(media::downscale(&big, w2, h2));
        Ok(t.elapsed())
    })?;
    let small = media::downscale(&big, w2, h2);
    let enc_big = median(runs, || {
        let t = Instant::now();
        media::encode_jpeg(&big, media::THUMB_QUALITY)?;
        Ok(t.elapsed())
    })?;
    let enc_small = median(runs, || {
        let t = Instant::now();
        media::encode_jpeg(&small, media::THUMB_QUALITY)?;
        Ok(t.elapsed())
    })?;
    let hash = median(runs, || {
        let t = Instant::now();
        std::hint::black_box(media::phash(&small));
        Ok(t.elapsed())
    })?;
    println!(
        "   steps: probe {}, exif {}, decode {}, resize to 1600 {} (of which the {k}x{k} box pre-shrink {}), 1600 to 320 {}, encode 1600 {}, encode 320 {}, phash {}",
        ms(probe),
        ms(exif),
        ms(decode),
        ms(big_t),
        ms(box_t),
        ms(small_t),
        ms(enc_big),
        ms(enc_small),
        ms(hash)
    );
    Ok(())
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

fn convert(bin: &Path, argv: &[&std::ffi::OsStr]) -> Result<()> {
    let out = Command::new(bin).args(argv).output()?;
    if !out.status.success() {
        bail!(
            "convert failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// One untimed warm-up, then the median of `runs` timings.
fn median(runs: usize, mut f: impl FnMut() -> Result<Duration>) -> Result<Duration> {
    f()?;
    let mut t = (0..runs).map(|_| f()).collect::<Result<Vec<_>>>()?;
    t.sort();
    Ok(t[t.len() / 2])
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn file_kib(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len() / 1024).unwrap_or(0)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}
