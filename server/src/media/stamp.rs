//! The "watermark camera" copy: a few lines of text (time, coordinates, project) drawn in the
//! bottom-left corner on a semi-transparent dark box, the way field crews expect their photos to
//! look when they share them.
//!
//! The text is drawn with a 5x7 bitmap font defined below (our own design: one `u8` per row,
//! bit 4 the leftmost column), scaled by an integer factor to the image size. Printable ASCII
//! only; anything else is drawn as '?'. Write coordinates as `43.467448 N` rather than with a
//! degree sign.

use image::RgbImage;

/// The glyph cell: 5x7 pixels of glyph, one column and two rows of spacing.
const GLYPH_W: u32 = 5;
const GLYPH_H: u32 = 7;
const CELL_W: u32 = GLYPH_W + 1;
const CELL_H: u32 = GLYPH_H + 2;

/// How much of the background shows through the box (out of 256).
const BOX_KEEP: u32 = 100;

/// Where [`stamp_image`] drew, in pixels of the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x && y >= self.y && x - self.x < self.width && y - self.y < self.height
    }
}

/// Draws `lines` in the bottom-left corner of `img`. The text's scale follows the shorter side
/// (about 30 lines would fill it) and shrinks so that the longest line fits in the width; what
/// still does not fit is cut at the image's edge. Returns the box drawn, or `None` when there
/// was nothing to draw or no room.
pub fn stamp_image(img: &mut RgbImage, lines: &[String]) -> Option<Rect> {
    let lines: Vec<&str> = lines.iter().map(|l| l.trim_end()).collect();
    let longest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    let (w, h) = img.dimensions();
    if lines.is_empty() || longest == 0 || w < 2 * CELL_W || h < 2 * CELL_H {
        return None;
    }
    let mut scale = ((w.min(h) as f32 / (30 * CELL_H) as f32).round() as u32).max(1);
    while scale > 1 && (longest * CELL_W + 2) * scale > w * 19 / 20 {
        scale -= 1;
    }
    let pad = 2 * scale;
    let margin = (w.min(h) / 50).max(scale);
    let box_w = (longest * CELL_W * scale + 2 * pad - scale).min(w.saturating_sub(margin));
    let box_h =
        (lines.len() as u32 * CELL_H * scale + 2 * pad - 2 * scale).min(h.saturating_sub(margin));
    let rect = Rect {
        x: margin.min(w - box_w),
        y: h.saturating_sub(margin + box_h),
        width: box_w,
        height: box_h,
    };
    for y in rect.y..rect.y + rect.height {
        for x in rect.x..rect.x + rect.width {
            let p = img.get_pixel_mut(x, y);
            for c in &mut p.0 {
                *c = ((u32::from(*c) * BOX_KEEP) >> 8) as u8;
            }
        }
    }
    for (row, line) in lines.iter().enumerate() {
        let top = rect.y + pad + row as u32 * CELL_H * scale;
        for (col, ch) in line.chars().enumerate() {
            let left = rect.x + pad + col as u32 * CELL_W * scale;
            draw_glyph(img, &rect, left, top, scale, ch);
        }
    }
    Some(rect)
}

/// Draws one glyph in white, clipped to `clip`.
fn draw_glyph(img: &mut RgbImage, clip: &Rect, left: u32, top: u32, scale: u32, ch: char) {
    let rows = glyph(ch);
    for (gy, bits) in rows.iter().enumerate() {
        for gx in 0..GLYPH_W {
            if bits & (1 << (GLYPH_W - 1 - gx)) == 0 {
                continue;
            }
            for dy in 0..scale {
                for dx in 0..scale {
                    let x = left + gx * scale + dx;
                    let y = top + gy as u32 * scale + dy;
                    if clip.contains(x, y) {
                        img.put_pixel(x, y, image::Rgb([255, 255, 255]));
                    }
                }
            }
        }
    }
}

/// The rows of `ch`'s glyph; '?' for anything outside printable ASCII.
fn glyph(ch: char) -> &'static [u8; 7] {
    let i = match u32::from(ch) {
        c @ 0x20..=0x7E => (c - 0x20) as usize,
        _ => usize::from(b'?' - 0x20),
    };
    &FONT[i]
}

/// Printable ASCII, 0x20 (space) to 0x7E (tilde), 5x7.
#[rustfmt::skip]
const FONT: [[u8; 7]; 95] = [
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // ' '
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00100], // !
    [0b01010, 0b01010, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // "
    [0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010], // #
    [0b00100, 0b01111, 0b10100, 0b01110, 0b00101, 0b11110, 0b00100], // $
    [0b11001, 0b11010, 0b00010, 0b00100, 0b01000, 0b01011, 0b10011], // %
    [0b01100, 0b10010, 0b10100, 0b01000, 0b10101, 0b10010, 0b01101], // &
    [0b00100, 0b00100, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // '
    [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010], // (
    [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000], // )
    [0b00000, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0b00000], // *
    [0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000], // +
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00110, 0b00100, 0b01000], // ,
    [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000], // -
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100], // .
    [0b00001, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b10000], // /
    [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110], // 0
    [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // 1
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111], // 2
    [0b11110, 0b00001, 0b00001, 0b01110, 0b00001, 0b00001, 0b11110], // 3
    [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010], // 4
    [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110], // 5
    [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110], // 6
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000], // 7
    [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110], // 8
    [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100], // 9
    [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000], // :
    [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b00100, 0b01000], // ;
    [0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010], // <
    [0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000], // =
    [0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000], // >
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100], // ?
    [0b01110, 0b10001, 0b10111, 0b10101, 0b10111, 0b10000, 0b01110], // @
    [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // A
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110], // B
    [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110], // C
    [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100], // D
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111], // E
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000], // F
    [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111], // G
    [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // H
    [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // I
    [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100], // J
    [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001], // K
    [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111], // L
    [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001], // M
    [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001], // N
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // O
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000], // P
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101], // Q
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001], // R
    [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110], // S
    [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100], // T
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // U
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // V
    [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010], // W
    [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001], // X
    [0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00100], // Y
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111], // Z
    [0b01110, 0b01000, 0b01000, 0b01000, 0b01000, 0b01000, 0b01110], // [
    [0b10000, 0b10000, 0b01000, 0b00100, 0b00010, 0b00001, 0b00001], // backslash
    [0b01110, 0b00010, 0b00010, 0b00010, 0b00010, 0b00010, 0b01110], // ]
    [0b00100, 0b01010, 0b10001, 0b00000, 0b00000, 0b00000, 0b00000], // ^
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111], // _
    [0b01000, 0b00100, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // `
    [0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111], // a
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110], // b
    [0b00000, 0b00000, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110], // c
    [0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111], // d
    [0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110], // e
    [0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000], // f
    [0b00000, 0b01111, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110], // g
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001], // h
    [0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110], // i
    [0b00010, 0b00000, 0b00110, 0b00010, 0b00010, 0b10010, 0b01100], // j
    [0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010], // k
    [0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // l
    [0b00000, 0b00000, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001], // m
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001], // n
    [0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110], // o
    [0b00000, 0b00000, 0b11110, 0b10001, 0b11110, 0b10000, 0b10000], // p
    [0b00000, 0b00000, 0b01101, 0b10011, 0b01111, 0b00001, 0b00001], // q
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000], // r
    [0b00000, 0b00000, 0b01110, 0b10000, 0b01110, 0b00001, 0b11110], // s
    [0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110], // t
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101], // u
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // v
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010], // w
    [0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001], // x
    [0b00000, 0b00000, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110], // y
    [0b00000, 0b00000, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111], // z
    [0b00010, 0b00100, 0b00100, 0b01000, 0b00100, 0b00100, 0b00010], // {
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100], // |
    [0b01000, 0b00100, 0b00100, 0b00010, 0b00100, 0b00100, 0b01000], // }
    [0b00000, 0b00000, 0b01000, 0b10101, 0b00010, 0b00000, 0b00000], // ~
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printable_ascii_has_its_own_glyph() {
        for (i, a) in FONT.iter().enumerate() {
            assert!(a.iter().all(|row| *row < 32), "glyph {i} is wider than 5");
            for b in &FONT[i + 1..] {
                assert_ne!(
                    a,
                    b,
                    "two glyphs are the same as {:?}",
                    (i as u8 + 0x20) as char
                );
            }
        }
        assert!(FONT[0].iter().all(|r| *r == 0));
    }

    #[test]
    fn non_ascii_draws_a_question_mark() {
        assert_eq!(glyph('°'), glyph('?'));
        assert_eq!(glyph('\n'), glyph('?'));
        assert_eq!(glyph('A'), &FONT[33]);
    }

    #[test]
    fn stamp_stays_in_the_bottom_left_corner() {
        let mut img = RgbImage::from_pixel(640, 480, image::Rgb([200, 180, 160]));
        let before = img.clone();
        let lines = ["2026-11-24 10:31 +03:00".to_owned(), "Site 12".to_owned()];
        let rect = stamp_image(&mut img, &lines).expect("room to draw");
        assert_eq!(rect.x, rect.x.min(640 / 10));
        assert_eq!(rect.y + rect.height + 480 / 50, 480);
        for (x, y, p) in img.enumerate_pixels() {
            if !rect.contains(x, y) {
                assert_eq!(
                    p,
                    before.get_pixel(x, y),
                    "changed outside the box at {x},{y}"
                );
            }
        }
        let white = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
        assert!(white > 50, "no text drawn");
    }

    #[test]
    fn nothing_to_draw_leaves_the_image_alone() {
        let mut img = RgbImage::new(100, 100);
        assert_eq!(stamp_image(&mut img, &[]), None);
        assert_eq!(stamp_image(&mut img, &[String::new()]), None);
        let mut tiny = RgbImage::new(4, 4);
        assert_eq!(stamp_image(&mut tiny, &["x".to_owned()]), None);
    }
}
