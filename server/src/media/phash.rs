//! A 64-bit perceptual hash (the DCT "pHash"): the image, grey and shrunk to 32x32, through a
//! 2-D DCT; the 8x8 lowest frequencies are compared with their median, one bit each. Resizing,
//! recompressing, mild colour or brightness changes move only a few bits; a different photo
//! differs in about half of them. Compare two hashes with [`hamming`].

use image::RgbImage;
use std::sync::OnceLock;

const N: usize = 32;
const K: usize = 8;

/// The perceptual hash of an (upright) image.
pub fn phash(img: &RgbImage) -> u64 {
    let grey = shrink_grey(img);
    let cos = cos_table();
    // Rows first: tmp[y][u] = sum_x grey[y][x] * cos[u][x], only the K lowest u.
    let mut tmp = [[0f64; K]; N];
    for (y, row) in grey.iter().enumerate() {
        for u in 0..K {
            tmp[y][u] = row.iter().zip(&cos[u]).map(|(g, c)| g * c).sum();
        }
    }
    let mut coef = [0f64; K * K];
    for v in 0..K {
        for u in 0..K {
            coef[v * K + u] = (0..N).map(|y| tmp[y][u] * cos[v][y]).sum();
        }
    }
    // The DC term is the mean brightness: leave it out of the median, which is what the other
    // 63 bits are compared against.
    let mut ac: Vec<f64> = coef[1..].to_vec();
    ac.sort_by(f64::total_cmp);
    let median = (ac[ac.len() / 2 - 1] + ac[ac.len() / 2]) / 2.0;
    coef.iter()
        .enumerate()
        .fold(0u64, |h, (i, c)| if *c > median { h | (1 << i) } else { h })
}

/// How many bits differ: 0 for the same picture, about 32 for unrelated ones.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Luma (BT.601) averaged over a 32x32 grid of areas; the aspect ratio is not kept, on purpose:
/// a copy that was resized keeps its grid.
fn shrink_grey(img: &RgbImage) -> [[f64; N]; N] {
    let (w, h) = img.dimensions();
    let mut sum = [[0f64; N]; N];
    let mut count = [[0u32; N]; N];
    if w == 0 || h == 0 {
        return sum;
    }
    // Column and row of the grid each pixel falls in.
    let gx: Vec<usize> = (0..w).map(|x| (x as usize * N) / w as usize).collect();
    for (y, row) in img.rows().enumerate() {
        let gy = (y * N) / h as usize;
        for (x, p) in row.enumerate() {
            let [r, g, b] = p.0;
            let l = 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
            sum[gy][gx[x]] += l;
            count[gy][gx[x]] += 1;
        }
    }
    // An image smaller than 32 px a side leaves cells empty: take the cell of the pixel nearest
    // to them, which is never empty.
    let (w, h) = (w as usize, h as usize);
    let mut out = [[0f64; N]; N];
    for (y, out_row) in out.iter_mut().enumerate() {
        for (x, o) in out_row.iter_mut().enumerate() {
            let (cy, cx) = if count[y][x] > 0 {
                (y, x)
            } else {
                ((y * h / N) * N / h, (x * w / N) * N / w)
            };
            *o = sum[cy][cx] / f64::from(count[cy][cx].max(1));
        }
    }
    out
}

/// cos((2x + 1) u π / 2N) for the K lowest frequencies u.
fn cos_table() -> &'static [[f64; N]; K] {
    static TABLE: OnceLock<[[f64; N]; K]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [[0f64; N]; K];
        for (u, row) in t.iter_mut().enumerate() {
            for (x, c) in row.iter_mut().enumerate() {
                *c = (((2 * x + 1) * u) as f64 * std::f64::consts::PI / (2 * N) as f64).cos();
            }
        }
        t
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth but busy picture (several waves), the same at any size.
    fn waves(w: u32, h: u32, mirrored: bool) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let fx = if mirrored { w - 1 - x } else { x } as f64 / f64::from(w);
            let fy = f64::from(y) / f64::from(h);
            let v = 128.0
                + 50.0 * (5.0 * fx + 1.0).sin() * (3.0 * fy).cos()
                + 40.0 * (7.0 * fy * fx + 2.0).sin()
                + 30.0 * (11.0 * fy - 4.0 * fx).cos();
            image::Rgb([v as u8, (v * 0.8) as u8, 40])
        })
    }

    #[test]
    fn same_picture_at_another_size_hashes_alike() {
        let a = phash(&waves(640, 480, false));
        let b = phash(&waves(200, 150, false));
        assert!(hamming(a, b) <= 4, "{}", hamming(a, b));
        let c = phash(&waves(640, 480, true));
        assert!(hamming(a, c) >= 16, "{}", hamming(a, c));
    }

    #[test]
    fn tiny_and_empty_images_do_not_panic() {
        phash(&RgbImage::new(1, 1));
        phash(&RgbImage::new(3, 40));
        phash(&RgbImage::new(0, 0));
    }

    #[test]
    fn hamming_counts_differing_bits() {
        assert_eq!(hamming(0, 0), 0);
        assert_eq!(hamming(0b1011, 0b0001), 2);
        assert_eq!(hamming(0, u64::MAX), 64);
    }
}
