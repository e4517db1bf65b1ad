//! The photo pipeline: pure functions from a photo's bytes to what the server keeps and serves
//! (issue 4). No I/O, no async: the upload route runs them on a blocking thread.
//!
//! - [`probe`] reads the format and the size from the header and refuses, before anything is
//!   decoded, what the server will not take: more than [`MAX_BYTES`], more than [`MAX_PIXELS`]
//!   (a decompression bomb is a small file that declares a huge image), HEIC and any format other
//!   than JPEG, PNG and WebP.
//! - [`read_exif`] reads capture time, GPS, orientation and camera; broken EXIF is not an error.
//! - [`process`] decodes, with decoder limits on size and allocation as a second line of
//!   defence (zune-jpeg's own for JPEG, [`image::Limits`] for PNG and WebP); a damaged JPEG is
//!   decoded as far as it goes and flagged. It makes the thumbnails upright, with no EXIF in
//!   them, and computes a perceptual hash ([`phash`], compared with [`hamming`]).
//! - [`stamp`] makes the "watermark camera" copy with a few lines drawn in a corner.
//!
//! ```no_run
//! use fieldsync_server::media;
//! # fn run(bytes: &[u8]) -> Result<(), media::MediaError> {
//! let p = media::process(bytes, &media::Options::default())?;
//! for t in &p.thumbnails {
//!     println!("{} px: {}x{}, {} bytes", t.long_side, t.width, t.height, t.jpeg.len());
//! }
//! if let Some(fix) = p.exif.gps {
//!     println!("taken at {}, {}", fix.lat, fix.lon);
//! }
//! # Ok(()) }
//! ```

mod exif;
mod phash;
mod resize;
mod stamp;

pub use exif::{CaptureTime, ExifData, GpsFix, read_exif};
pub use phash::{hamming, phash};
pub use resize::{box_shrink, downscale};
pub use stamp::{Rect, stamp_image};

use image::{DynamicImage, ImageError, ImageFormat, ImageReader, Limits, RgbImage};
use std::io::Cursor;

/// The largest photo file taken, in bytes (the same cap as the photo record's `size`).
pub const MAX_BYTES: usize = 40 << 20;
/// The most pixels a photo may declare: 100 megapixels, more than any phone takes.
pub const MAX_PIXELS: u64 = 100_000_000;
/// The longest side a photo may declare.
pub const MAX_SIDE: u32 = 30_000;
/// What a decoder may allocate for one photo: 100 MP of RGBA at 8 bits, plus its working room.
const MAX_ALLOC: u64 = 512 << 20;
/// What reading a header may allocate (metadata chunks before the pixels).
const MAX_HEADER_ALLOC: u64 = 16 << 20;

/// The thumbnails' long sides, largest first.
pub const THUMB_SIZES: [u32; 2] = [1600, 320];
/// JPEG quality of the thumbnails.
pub const THUMB_QUALITY: u8 = 82;
/// JPEG quality of the stamped copy, which stands in for the photo when shared.
pub const STAMP_QUALITY: u8 = 90;

/// Why a photo was refused or could not be processed. Every variant but [`MediaError::Encode`]
/// is the sender's file; [`MediaError::code`] is the stable machine-readable code and the
/// `Display` text a sentence for a person.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("The file is empty.")]
    Empty,
    #[error("The file is {} MiB; a photo may be at most {} MiB.", .size.div_ceil(1 << 20), MAX_BYTES >> 20)]
    FileTooLarge { size: usize },
    #[error("{}", unsupported_sentence(.found))]
    UnsupportedFormat { found: &'static str },
    #[error(
        "The image is {width} x {height} pixels; a photo may have at most {} megapixels and {MAX_SIDE} pixels a side.",
        MAX_PIXELS / 1_000_000
    )]
    ImageTooLarge { width: u32, height: u32 },
    #[error("The image could not be read: its data is damaged or cut short ({source}).")]
    Undecodable {
        #[source]
        source: ImageError,
    },
    #[error("The server could not encode a thumbnail ({source}).")]
    Encode {
        #[source]
        source: jpeg_encoder::EncodingError,
    },
}

impl MediaError {
    /// The stable code: `empty_file`, `file_too_large`, `unsupported_format`,
    /// `image_too_large`, `undecodable_image`, or (a server fault) `thumbnail_failed`.
    pub fn code(&self) -> &'static str {
        match self {
            MediaError::Empty => "empty_file",
            MediaError::FileTooLarge { .. } => "file_too_large",
            MediaError::UnsupportedFormat { .. } => "unsupported_format",
            MediaError::ImageTooLarge { .. } => "image_too_large",
            MediaError::Undecodable { .. } => "undecodable_image",
            MediaError::Encode { .. } => "thumbnail_failed",
        }
    }

    /// True when the file, not the server, is at fault.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, MediaError::Encode { .. })
    }
}

fn unsupported_sentence(found: &str) -> String {
    match found {
        "HEIC" | "HEIF" => format!(
            "This is a {found} photo, which the server does not read; send JPEG, PNG or WebP \
             (export it as JPEG, or set the camera to 'Most Compatible')."
        ),
        "unknown" => "This is not a JPEG, PNG or WebP image.".to_owned(),
        _ => format!("This is a {found} file; photos must be JPEG, PNG or WebP."),
    }
}

/// The formats the server decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jpeg,
    Png,
    WebP,
}

impl Format {
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::WebP => "image/webp",
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Png => ImageFormat::Png,
            Format::WebP => ImageFormat::WebP,
        }
    }
}

/// What the header says, read without decoding any pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Probe {
    pub format: Format,
    /// As stored, before the EXIF orientation is applied.
    pub width: u32,
    pub height: u32,
}

/// The format from the first bytes. Anything but JPEG, PNG and WebP is named when known, so the
/// refusal can say what was sent.
pub fn sniff(bytes: &[u8]) -> Result<Format, MediaError> {
    if bytes.is_empty() {
        return Err(MediaError::Empty);
    }
    let found = match bytes {
        [0xFF, 0xD8, 0xFF, ..] => return Ok(Format::Jpeg),
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => return Ok(Format::Png),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => {
            return Ok(Format::WebP);
        }
        [_, _, _, _, b'f', b't', b'y', b'p', brand @ ..] => match brand.get(..4) {
            Some(b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis") => "HEIC",
            Some(b"mif1" | b"msf1" | b"mif2") => "HEIF",
            Some(b"avif" | b"avis") => "AVIF",
            _ => "video or ISO media",
        },
        [b'G', b'I', b'F', b'8', ..] => "GIF",
        [b'B', b'M', ..] => "BMP",
        [b'I', b'I', 42, 0, ..] | [b'M', b'M', 0, 42, ..] => "TIFF or camera raw",
        [0xFF, 0x0A, ..] | [0, 0, 0, 0x0C, b'J', b'X', b'L', b' ', ..] => "JPEG XL",
        [b'%', b'P', b'D', b'F', ..] => "PDF",
        _ => "unknown",
    };
    Err(MediaError::UnsupportedFormat { found })
}

/// Reads format and size from the header and refuses what is too large or not a photo format,
/// before any pixel is decoded.
pub fn probe(bytes: &[u8]) -> Result<Probe, MediaError> {
    if bytes.len() > MAX_BYTES {
        return Err(MediaError::FileTooLarge { size: bytes.len() });
    }
    let format = sniff(bytes)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_HEADER_ALLOC);
    reader.limits(limits);
    let (width, height) = reader
        .into_dimensions()
        .map_err(|source| MediaError::Undecodable { source })?;
    if width == 0
        || height == 0
        || width > MAX_SIDE
        || height > MAX_SIDE
        || u64::from(width) * u64::from(height) > MAX_PIXELS
    {
        return Err(MediaError::ImageTooLarge { width, height });
    }
    Ok(Probe {
        format,
        width,
        height,
    })
}

/// What [`process`] makes.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Long sides of the thumbnails to make. A photo smaller than a size is not enlarged: that
    /// thumbnail is the photo at its own size.
    pub sizes: Vec<u32>,
    /// JPEG quality, 1 to 100.
    pub quality: u8,
}

impl Options {
    /// The server's thumbnails: [`THUMB_SIZES`] at [`THUMB_QUALITY`].
    pub fn thumbnails() -> Self {
        Options {
            sizes: THUMB_SIZES.to_vec(),
            quality: THUMB_QUALITY,
        }
    }
}

/// One thumbnail: an upright JPEG without metadata.
#[derive(Clone, Debug)]
pub struct Thumbnail {
    /// The long side asked for.
    pub long_side: u32,
    pub width: u32,
    pub height: u32,
    pub jpeg: Vec<u8>,
}

/// A processed photo.
#[derive(Clone, Debug)]
pub struct Processed {
    pub format: Format,
    /// Upright size, after the EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub exif: ExifData,
    /// The image data is damaged (a JPEG cut short, a corrupt scan): the thumbnails show what
    /// could be decoded, the rest grey. Worth a word to the reviewer.
    pub damaged: bool,
    /// In the order of [`Options::sizes`].
    pub thumbnails: Vec<Thumbnail>,
    /// Perceptual hash of the upright image; compare with [`hamming`].
    pub phash: u64,
}

/// Probes, decodes, reads the EXIF, and makes upright thumbnails and the perceptual hash.
/// `Options::default()` (no sizes, quality 0) means [`Options::thumbnails`].
pub fn process(bytes: &[u8], opts: &Options) -> Result<Processed, MediaError> {
    let defaults = Options::thumbnails();
    let opts = if opts.sizes.is_empty() {
        &defaults
    } else {
        opts
    };
    let quality = match opts.quality {
        0 => THUMB_QUALITY,
        q => q.min(100),
    };
    let probe = probe(bytes)?;
    let exif = read_exif(bytes);
    let orientation = exif.orientation.unwrap_or(1);
    let (img, damaged) = decode(bytes, probe)?;
    let (sw, sh) = img.dimensions();

    // Resize first and turn the small result, rather than turning the full-size image. The
    // long side does not change when the image turns, so the sizes can be worked out before.
    let mut order: Vec<usize> = (0..opts.sizes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(opts.sizes[i]));
    let mut made: Vec<Option<Thumbnail>> = vec![None; opts.sizes.len()];
    let mut smallest: Option<RgbImage> = None;
    for i in order {
        let long = opts.sizes[i].max(1);
        let (w, h) = fit(sw, sh, long);
        // Each thumbnail is made from the next larger one: the same quality, much less work.
        let source = smallest.as_ref().unwrap_or(&img);
        let small = downscale(source, w, h);
        let (jpeg, (tw, th)) = if orientation == 1 {
            (encode_jpeg(&small, quality)?, small.dimensions())
        } else {
            let upright = orient(small.clone(), orientation);
            (encode_jpeg(&upright, quality)?, upright.dimensions())
        };
        made[i] = Some(Thumbnail {
            long_side: long,
            width: tw,
            height: th,
            jpeg,
        });
        smallest = Some(small);
    }
    let hash_source = orient(smallest.unwrap_or(img), orientation);
    let (width, height) = if orientation >= 5 { (sh, sw) } else { (sw, sh) };
    Ok(Processed {
        format: probe.format,
        width,
        height,
        exif,
        damaged,
        thumbnails: made.into_iter().flatten().collect(),
        phash: phash(&hash_source),
    })
}

/// The size that fits `w` x `h` in a `long` x `long` square, never larger than it is.
fn fit(w: u32, h: u32, long: u32) -> (u32, u32) {
    if w.max(h) <= long {
        return (w, h);
    }
    let scale = f64::from(long) / f64::from(w.max(h));
    let side = |s: u32| ((f64::from(s) * scale).round() as u32).clamp(1, long);
    if w >= h {
        (long, side(h))
    } else {
        (side(w), long)
    }
}

/// Probes, decodes and turns the photo upright, at full size.
pub fn decode_upright(bytes: &[u8]) -> Result<RgbImage, MediaError> {
    let probe = probe(bytes)?;
    let orientation = read_exif(bytes).orientation.unwrap_or(1);
    Ok(orient(decode(bytes, probe)?.0, orientation))
}

/// A copy of the photo, upright and full size, with `lines` drawn in the bottom-left corner
/// (see [`stamp_image`]), as JPEG without metadata.
pub fn stamp(bytes: &[u8], lines: &[String]) -> Result<Vec<u8>, MediaError> {
    let mut img = decode_upright(bytes)?;
    stamp_image(&mut img, lines);
    encode_jpeg(&img, STAMP_QUALITY)
}

/// Decodes to 8-bit RGB with limits on size and allocation; the flag is true when the data was
/// damaged and only what could be read was decoded. Transparency is laid over white (a JPEG
/// thumbnail has none).
fn decode(bytes: &[u8], probe: Probe) -> Result<(RgbImage, bool), MediaError> {
    if probe.format == Format::Jpeg {
        return decode_jpeg(bytes, probe);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), probe.format.image_format());
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let img = reader.decode().map_err(|source| match source {
        ImageError::Limits(_) => MediaError::ImageTooLarge {
            width: probe.width,
            height: probe.height,
        },
        source => MediaError::Undecodable { source },
    })?;
    let rgb = match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        img if img.color().has_alpha() => over_white(&img.into_rgba8()),
        img => img.into_rgb8(),
    };
    Ok((rgb, false))
}

/// JPEG through zune-jpeg (image's own JPEG decoder) directly: strictly first, and when that
/// finds the data damaged (cut short, a corrupt scan), again leniently, which decodes what it
/// can and leaves the rest grey, as browsers show such a file. The lenient pass only runs on
/// damaged files, so a sound photo is decoded once.
fn decode_jpeg(bytes: &[u8], probe: Probe) -> Result<(RgbImage, bool), MediaError> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;

    let attempt = |strict: bool| -> Result<RgbImage, MediaError> {
        let options = DecoderOptions::default()
            .set_strict_mode(strict)
            .set_max_width(MAX_SIDE as usize)
            .set_max_height(MAX_SIDE as usize)
            .jpeg_set_out_colorspace(ColorSpace::RGB);
        let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
        let failed = |e: zune_jpeg::errors::DecodeErrors| jpeg_error(e.to_string());
        decoder.decode_headers().map_err(failed)?;
        // The probe read the same header and capped it: the output is at most MAX_PIXELS x 3.
        let (w, h) = decoder.dimensions().expect("BUG: headers decoded");
        if (w, h) != (probe.width as usize, probe.height as usize) {
            return Err(jpeg_error(format!(
                "the frame header says {w}x{h}, the probe read {}x{}",
                probe.width, probe.height
            )));
        }
        let mut px = vec![0u8; w * h * 3];
        decoder.decode_into(&mut px).map_err(failed)?;
        Ok(RgbImage::from_raw(probe.width, probe.height, px)
            .expect("BUG: buffer sized for the image"))
    };
    match attempt(true) {
        Ok(img) => Ok((img, false)),
        Err(MediaError::Undecodable { .. }) => attempt(false).map(|img| (img, true)),
        Err(e) => Err(e),
    }
}

fn jpeg_error(message: String) -> MediaError {
    MediaError::Undecodable {
        source: ImageError::Decoding(image::error::DecodingError::new(
            ImageFormat::Jpeg.into(),
            message,
        )),
    }
}

fn over_white(rgba: &image::RgbaImage) -> RgbImage {
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let a = u32::from(a);
        let mix = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([mix(r), mix(g), mix(b)])
    })
}

/// Applies an EXIF orientation (1-8) so the image is upright.
pub fn orient(img: RgbImage, orientation: u8) -> RgbImage {
    use image::imageops::{flip_horizontal, flip_vertical, rotate90, rotate180, rotate270};
    match orientation {
        2 => flip_horizontal(&img),
        3 => rotate180(&img),
        4 => flip_vertical(&img),
        // Transpose: mirrored along the top-left to bottom-right diagonal.
        5 => flip_horizontal(&rotate90(&img)),
        6 => rotate90(&img),
        // Transverse: mirrored along the other diagonal.
        7 => flip_horizontal(&rotate270(&img)),
        8 => rotate270(&img),
        _ => img,
    }
}

/// Baseline JPEG at `quality` (4:2:0 below 90, chroma averaged; 4:4:4 from 90). Only a JFIF
/// header is written: no EXIF nor any other metadata, so what this makes is stripped.
pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, MediaError> {
    let (w, h) = img.dimensions();
    let too_large = |_| MediaError::ImageTooLarge {
        width: w,
        height: h,
    };
    let (w16, h16) = (
        u16::try_from(w).map_err(too_large)?,
        u16::try_from(h).map_err(too_large)?,
    );
    let mut out = Vec::with_capacity((w as usize * h as usize / 4).max(1024));
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    encoder.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
    encoder
        .encode(img.as_raw(), w16, h16, jpeg_encoder::ColorType::Rgb)
        .map_err(|source| MediaError::Encode { source })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_the_aspect_and_never_enlarges() {
        assert_eq!(fit(4608, 1976, 1600), (1600, 686));
        assert_eq!(fit(1976, 4608, 320), (137, 320));
        assert_eq!(fit(640, 480, 1600), (640, 480));
        assert_eq!(fit(30_000, 1, 320), (320, 1));
    }

    #[test]
    fn sniff_names_what_it_refuses() {
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
        let e = sniff(heic).expect_err("HEIC is refused");
        assert_eq!(e.code(), "unsupported_format");
        assert!(e.to_string().contains("HEIC") && e.to_string().contains("JPEG"));
        assert_eq!(
            sniff(b"GIF89a....")
                .map_err(|e| e.to_string())
                .err()
                .as_deref(),
            Some("This is a GIF file; photos must be JPEG, PNG or WebP.")
        );
        assert_eq!(sniff(b"").map_err(|e| e.code()).err(), Some("empty_file"));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0").ok(), Some(Format::Jpeg));
    }

    #[test]
    fn every_orientation_is_turned_upright() {
        // An upright 3x2 picture with every pixel different, stored the way the EXIF spec
        // describes each orientation (which side of the picture the stored row 0 and column 0
        // are); orient() must give the upright picture back.
        let (w, h) = (3u32, 2u32);
        let up = RgbImage::from_fn(w, h, |x, y| image::Rgb([(10 * x + y) as u8, 0, 0]));
        let px = |x: u32, y: u32| *up.get_pixel(x, y);
        let stored = |o: u8| match o {
            1 => RgbImage::from_fn(w, h, &px),
            2 => RgbImage::from_fn(w, h, |x, y| px(w - 1 - x, y)), // row 0 top, column 0 right
            3 => RgbImage::from_fn(w, h, |x, y| px(w - 1 - x, h - 1 - y)), // bottom, right
            4 => RgbImage::from_fn(w, h, |x, y| px(x, h - 1 - y)), // bottom, left
            5 => RgbImage::from_fn(h, w, |x, y| px(y, x)),         // left, top
            6 => RgbImage::from_fn(h, w, |x, y| px(w - 1 - y, x)), // right, top
            7 => RgbImage::from_fn(h, w, |x, y| px(w - 1 - y, h - 1 - x)), // right, bottom
            _ => RgbImage::from_fn(h, w, |x, y| px(y, h - 1 - x)), // 8: left, bottom
        };
        for o in 1..=8 {
            assert_eq!(orient(stored(o), o), up, "orientation {o}");
        }
    }
}
