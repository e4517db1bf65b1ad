//! Downscaling for thumbnails. Two steps: a box filter shrinks by a whole factor to no less than
//! twice the target (fast: each source pixel is read once and added), then a Catmull-Rom
//! filter makes the exact size from there. The box step averages every pixel it drops, so the
//! result does not alias; the Catmull-Rom step keeps the edges sharp.

use image::RgbImage;

/// Fixed-point precision of the filter weights.
const BITS: u32 = 14;

/// `img` scaled down to exactly `w` x `h` (each no larger than the image's; a side that would
/// grow is kept).
pub fn downscale(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (sw, sh) = img.dimensions();
    let (w, h) = (w.clamp(1, sw.max(1)), h.clamp(1, sh.max(1)));
    if (sw, sh) == (w, h) || sw == 0 || sh == 0 {
        return img.clone();
    }
    let k = ((sw / w).min(sh / h) / PRE_SHRINK_DIVISOR).min(256);
    if k > 1 {
        let pre = box_shrink(img, k);
        if pre.dimensions() == (w, h) {
            return pre;
        }
        return catmull_rom(&pre, w, h);
    }
    catmull_rom(img, w, h)
}

/// The box step shrinks by the whole part of (ratio / this): 1 leaves the Catmull-Rom step a
/// ratio under 2, where it reads at most 8 source pixels per output pixel on each axis.
const PRE_SHRINK_DIVISOR: u32 = 1;

/// Separable Catmull-Rom resampling with 14-bit integer weights. Columns first: that pass
/// weighs and adds whole rows, which the compiler vectorises, and it leaves the scalar pass
/// (along each row, three channels interleaved) fewer rows to do.
fn catmull_rom(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (sw, sh) = img.dimensions();
    let horiz = Weights::new(sw, w);
    let vert = Weights::new(sh, h);
    let src = img.as_raw();
    let (sw, w, h) = (sw as usize, w as usize, h as usize);

    // Columns: h x sw.
    let mut mid = vec![0u8; h * sw * 3];
    let mut acc = vec![0i32; sw * 3];
    for (oy, out_row) in mid.chunks_exact_mut(sw * 3).enumerate() {
        let (start, ws) = vert.of(oy);
        acc.fill(1 << (BITS - 1));
        for (i, &wt) in ws.iter().enumerate() {
            let wt = i32::from(wt);
            let row = &src[(start + i) * sw * 3..(start + i + 1) * sw * 3];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += i32::from(p) * wt;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clamp(a);
        }
    }

    // Rows: h x w.
    let mut out = vec![0u8; h * w * 3];
    for (row, out_row) in mid.chunks_exact(sw * 3).zip(out.chunks_exact_mut(w * 3)) {
        for (ox, px) in out_row.chunks_exact_mut(3).enumerate() {
            let (start, ws) = horiz.of(ox);
            let mut sum = [1i32 << (BITS - 1); 3];
            for (p, &wt) in row[start * 3..(start + ws.len()) * 3]
                .chunks_exact(3)
                .zip(ws)
            {
                let wt = i32::from(wt);
                sum[0] += i32::from(p[0]) * wt;
                sum[1] += i32::from(p[1]) * wt;
                sum[2] += i32::from(p[2]) * wt;
            }
            px[0] = clamp(sum[0]);
            px[1] = clamp(sum[1]);
            px[2] = clamp(sum[2]);
        }
    }
    RgbImage::from_raw(w as u32, h as u32, out).expect("BUG: buffer sized for the image")
}

fn clamp(acc: i32) -> u8 {
    (acc >> BITS).clamp(0, 255) as u8
}

/// For each output pixel on one axis: the first source pixel it reads and its weights.
struct Weights {
    starts: Vec<usize>,
    taps: usize,
    lens: Vec<usize>,
    weights: Vec<i16>,
}

impl Weights {
    fn new(src: u32, dst: u32) -> Self {
        let scale = (f64::from(src) / f64::from(dst)).max(1.0);
        // Catmull-Rom reaches 2 pixels either side, stretched by the scale when shrinking.
        let support = 2.0 * scale;
        let taps = (2.0 * support).ceil() as usize + 2;
        let mut w = Weights {
            starts: Vec::with_capacity(dst as usize),
            taps,
            lens: Vec::with_capacity(dst as usize),
            weights: vec![0; dst as usize * taps],
        };
        let mut f = Vec::with_capacity(taps);
        for i in 0..dst as usize {
            let center = (i as f64 + 0.5) * f64::from(src) / f64::from(dst);
            let left = ((center - support).floor().max(0.0)) as usize;
            let right = ((center + support).ceil() as usize)
                .min(src as usize)
                .min(left + taps);
            f.clear();
            f.extend((left..right).map(|j| kernel((j as f64 + 0.5 - center) / scale)));
            let sum: f64 = f.iter().sum();
            let one = f64::from(1u32 << BITS);
            let slot = &mut w.weights[i * taps..i * taps + f.len()];
            let mut total = 0i32;
            for (s, v) in slot.iter_mut().zip(&f) {
                *s = (v / sum * one).round() as i16;
                total += i32::from(*s);
            }
            // Rounding may leave the sum a little off one: give the difference to the
            // largest weight, so a flat area stays exactly flat.
            if let Some(max) = slot.iter_mut().max_by_key(|s| **s) {
                *max += ((1 << BITS) - total) as i16;
            }
            w.starts.push(left);
            w.lens.push(f.len());
        }
        w
    }

    fn of(&self, i: usize) -> (usize, &[i16]) {
        (
            self.starts[i],
            &self.weights[i * self.taps..i * self.taps + self.lens[i]],
        )
    }
}

/// Catmull-Rom (the cubic with B = 0, C = 0.5).
fn kernel(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.5 * x * x * x - 2.5 * x * x + 1.0
    } else if x < 2.0 {
        -0.5 * x * x * x + 2.5 * x * x - 4.0 * x + 2.0
    } else {
        0.0
    }
}

/// Averages each `k` x `k` block into one pixel; the last row and column of blocks may be
/// narrower, and are averaged over what they hold. Every step works on whole rows, so the
/// compiler vectorises it: the `k` rows of a block are added (in 16 bits), then `k` copies of
/// that sum, each shifted by one more pixel, so every position holds the sum of the `k` pixels
/// from there; each block's first position is its total. The mean is a multiplication by the
/// block's reciprocal rather than a division per channel.
pub fn box_shrink(img: &RgbImage, k: u32) -> RgbImage {
    let (sw, sh) = img.dimensions();
    // 255 x 256 rows still fits a u16.
    let (k, sw, sh) = (k.clamp(1, 256) as usize, sw as usize, sh as usize);
    let (ow, oh) = (sw.div_ceil(k), sh.div_ceil(k));
    let full = sw / k; // blocks k pixels wide; a narrower last one when k does not divide sw
    let span = if full > 0 {
        (full * k - (k - 1)) * 3
    } else {
        0
    };
    let src = img.as_raw();
    let mut out = vec![0u8; ow * oh * 3];
    let mut rows_sum = vec![0u16; sw * 3];
    let mut run_sum = vec![0u32; span];
    // ceil(2^32 / n): (sum * inv) >> 32 is sum / n, within half a level once rounded.
    let inverse = |n: usize| (1u64 << 32).div_ceil(n as u64);
    for (oy, out_row) in out.chunks_exact_mut(ow * 3).enumerate() {
        let (y0, y1) = (oy * k, ((oy + 1) * k).min(sh));
        let rows = y1 - y0;
        rows_sum.fill(0);
        for row in src[y0 * sw * 3..y1 * sw * 3].chunks_exact(sw * 3) {
            for (a, &p) in rows_sum.iter_mut().zip(row) {
                *a += u16::from(p);
            }
        }
        for (r, &a) in run_sum.iter_mut().zip(&rows_sum) {
            *r = u32::from(a);
        }
        // (With no full block, k > sw, there is nothing to shift.)
        for shift in 1..k.min(sw) {
            for (r, &a) in run_sum.iter_mut().zip(&rows_sum[shift * 3..]) {
                *r += u32::from(a);
            }
        }
        let inv = inverse(rows * k);
        for (ox, px) in out_row.chunks_exact_mut(3).take(full).enumerate() {
            for (c, o) in px.iter_mut().enumerate() {
                let total = u64::from(run_sum[ox * k * 3 + c]);
                *o = ((total * inv + (1 << 31)) >> 32).min(255) as u8;
            }
        }
        if full < ow {
            // The narrower last block.
            let cols = sw - full * k;
            let inv = inverse(rows * cols);
            for c in 0..3 {
                let total: u64 = (full * k..sw).map(|x| u64::from(rows_sum[x * 3 + c])).sum();
                out_row[full * 3 + c] = ((total * inv + (1 << 31)) >> 32).min(255) as u8;
            }
        }
    }
    RgbImage::from_raw(ow as u32, oh as u32, out).expect("BUG: buffer sized for the image")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_shrink_averages_blocks_and_keeps_the_edge() {
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([(x * 10 + y) as u8, 0, 255]));
        let out = box_shrink(&img, 2);
        assert_eq!(out.dimensions(), (3, 2));
        // Block (0,0): x 0..2, y 0..2 -> (0+10+1+11)/4 = 5.5, rounded to 6.
        assert_eq!(out.get_pixel(0, 0).0, [6, 0, 255]);
        // Last column holds x = 4 only: (40 + 41) / 2.
        assert_eq!(out.get_pixel(2, 0).0, [41, 0, 255]);
        // Last row holds y = 2 only.
        assert_eq!(out.get_pixel(0, 1).0, [7, 0, 255]);
    }

    #[test]
    fn catmull_rom_matches_image_crates_filter() {
        // A busy picture: a bug in the weights or their positions shows as a large difference.
        let img = RgbImage::from_fn(300, 200, |x, y| {
            let v = (x * 7 + y * 13 + (x * y) % 31) % 256;
            image::Rgb([v as u8, (255 - v) as u8, ((x * 3) % 256) as u8])
        });
        for (w, h) in [(97, 61), (150, 100), (299, 199)] {
            let ours = catmull_rom(&img, w, h);
            let theirs =
                image::imageops::resize(&img, w, h, image::imageops::FilterType::CatmullRom);
            let diff: u64 = ours
                .as_raw()
                .iter()
                .zip(theirs.as_raw())
                .map(|(a, b)| u64::from(a.abs_diff(*b)))
                .sum();
            let mean = diff as f64 / ours.as_raw().len() as f64;
            assert!(mean < 1.0, "{w}x{h}: mean difference {mean}");
        }
    }

    #[test]
    fn box_shrink_equals_the_plain_average() {
        let img = RgbImage::from_fn(37, 23, |x, y| {
            image::Rgb([(x * 7 + y * 3) as u8, (x * y) as u8, (255 - x * 5) as u8])
        });
        for k in [1, 2, 3, 5, 8, 23, 40] {
            let out = box_shrink(&img, k);
            let (ow, oh) = (37u32.div_ceil(k), 23u32.div_ceil(k));
            assert_eq!(out.dimensions(), (ow, oh), "k = {k}");
            for (ox, oy, p) in out.enumerate_pixels() {
                for c in 0..3 {
                    let (mut sum, mut n) = (0u32, 0u32);
                    for y in oy * k..((oy + 1) * k).min(23) {
                        for x in ox * k..((ox + 1) * k).min(37) {
                            sum += u32::from(img.get_pixel(x, y)[c]);
                            n += 1;
                        }
                    }
                    let want = (f64::from(sum) / f64::from(n)).round() as i32;
                    assert!((i32::from(p[c]) - want).abs() <= 1, "k {k} at {ox},{oy}");
                }
            }
        }
    }

    #[test]
    fn downscale_gives_the_exact_size() {
        let img = RgbImage::from_pixel(1200, 515, image::Rgb([10, 20, 30]));
        for (w, h) in [(400, 172), (100, 43), (700, 300), (1200, 515), (1, 1)] {
            let out = downscale(&img, w, h);
            assert_eq!(out.dimensions(), (w, h));
            assert_eq!(out.get_pixel(w / 2, h / 2).0, [10, 20, 30]);
        }
    }
}
