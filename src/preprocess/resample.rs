//! A port of Pillow's antialiased bilinear resampling (`Image.resize(size, BILINEAR)`,
//! `libImaging/Resample.c`) for 8-bit RGB images.
//!
//! PanDerm's eval transform resizes with torchvision's `Resize(256)` on a PIL image, which
//! calls Pillow. Pillow's algorithm is reproduced step by step so that our pixels match
//! PanDerm's bit for bit on the same decoded input:
//!
//! * a triangle filter whose support is scaled by the downscale factor (antialiasing);
//! * window bounds `int(center ± support + 0.5)`, clipped to the image;
//! * weights normalised to sum 1, then converted to 22-bit fixed point with rounding away
//!   from zero;
//! * a horizontal pass first (only over the rows the vertical pass needs), rounded and
//!   clipped to `u8`, then a vertical pass.
//!
//! `fast_image_resize` and `image::imageops` differ from Pillow by up to one grey level,
//! which is why this ~100-line port exists (see `docs/preprocessing.md`).

use image::RgbImage;

/// Fixed-point precision of the weights, as in Pillow (`32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;

/// Per-output-pixel filter windows for one axis.
struct Coefficients {
    /// Maximum window length (row stride of `weights`).
    ksize: usize,
    /// `(first input index, window length)` per output index.
    bounds: Vec<(usize, usize)>,
    /// Fixed-point weights, `ksize` per output index.
    weights: Vec<i32>,
}

fn bilinear_filter(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`.
fn precompute(in_size: usize, out_size: usize) -> Coefficients {
    const SUPPORT: f64 = 1.0; // bilinear
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = SUPPORT * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C casts truncate toward zero; the values can be negative only for xmin.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let len = xmax.saturating_sub(xmin);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(len) {
            let w = bilinear_filter((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        let row = &mut weights[xx * ksize..(xx + 1) * ksize];
        for x in 0..len {
            let w = if ww != 0.0 { k[x] / ww } else { k[x] };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            row[x] = if w < 0.0 { (-0.5 + fixed) as i32 } else { (0.5 + fixed) as i32 };
        }
        bounds.push((xmin, len));
    }
    Coefficients { ksize, bounds, weights }
}

#[inline]
fn clip8(v: i32) -> u8 {
    if v >= (1 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// Resizes an RGB image to `out_w × out_h` exactly as Pillow's `BILINEAR` resize does.
///
/// Returns a copy when the size is unchanged (Pillow does the same).
pub fn resize_bilinear_pillow(src: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    let (in_w, in_h) = src.dimensions();
    if (in_w, in_h) == (out_w, out_h) {
        return src.clone();
    }
    let (in_w, in_h, ow, oh) = (in_w as usize, in_h as usize, out_w as usize, out_h as usize);
    let horiz = precompute(in_w, ow);
    let vert = precompute(in_h, oh);
    let need_horizontal = ow != in_w;
    let need_vertical = oh != in_h;
    let half = 1i32 << (PRECISION_BITS - 1);
    let input = src.as_raw();

    // Horizontal pass over the rows the vertical pass will read.
    let (first_row, last_row) = if need_vertical {
        let (f, _) = vert.bounds[0];
        let (l, len) = vert.bounds[oh - 1];
        (f, l + len)
    } else {
        (0, in_h)
    };
    let (tmp, tmp_w) = if need_horizontal {
        let rows = last_row - first_row;
        let mut tmp = vec![0u8; rows * ow * 3];
        for y in 0..rows {
            let src_row = &input[(y + first_row) * in_w * 3..(y + first_row + 1) * in_w * 3];
            let dst_row = &mut tmp[y * ow * 3..(y + 1) * ow * 3];
            for (xx, &(xmin, len)) in horiz.bounds.iter().enumerate() {
                let k = &horiz.weights[xx * horiz.ksize..xx * horiz.ksize + len];
                let (mut s0, mut s1, mut s2) = (half, half, half);
                for (x, &w) in k.iter().enumerate() {
                    let p = (xmin + x) * 3;
                    s0 += i32::from(src_row[p]) * w;
                    s1 += i32::from(src_row[p + 1]) * w;
                    s2 += i32::from(src_row[p + 2]) * w;
                }
                dst_row[xx * 3] = clip8(s0);
                dst_row[xx * 3 + 1] = clip8(s1);
                dst_row[xx * 3 + 2] = clip8(s2);
            }
        }
        (tmp, ow)
    } else {
        (input[first_row * in_w * 3..last_row * in_w * 3].to_vec(), in_w)
    };

    if !need_vertical {
        return RgbImage::from_raw(tmp_w as u32, oh as u32, tmp)
            .expect("buffer length matches the dimensions by construction");
    }
    let mut out = vec![0u8; oh * tmp_w * 3];
    for (yy, &(ymin, len)) in vert.bounds.iter().enumerate() {
        let k = &vert.weights[yy * vert.ksize..yy * vert.ksize + len];
        let ymin = ymin - first_row;
        let dst_row = &mut out[yy * tmp_w * 3..(yy + 1) * tmp_w * 3];
        for (c, dst) in dst_row.iter_mut().enumerate() {
            let mut s = half;
            for (y, &w) in k.iter().enumerate() {
                s += i32::from(tmp[(ymin + y) * tmp_w * 3 + c]) * w;
            }
            *dst = clip8(s);
        }
    }
    RgbImage::from_raw(tmp_w as u32, oh as u32, out).expect("buffer length matches the dimensions by construction")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_a_copy() {
        let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8, y as u8, 3]));
        assert_eq!(resize_bilinear_pillow(&img, 7, 5), img);
    }

    #[test]
    fn constant_image_stays_constant() {
        // Weights are normalised, so a flat image must stay flat under any scale.
        let img = RgbImage::from_pixel(517, 333, image::Rgb([200, 17, 99]));
        for (w, h) in [(397, 256), (256, 256), (1000, 700), (3, 2)] {
            let out = resize_bilinear_pillow(&img, w, h);
            assert_eq!(out.dimensions(), (w, h));
            assert!(out.pixels().all(|p| p.0 == [200, 17, 99]), "{w}x{h}");
        }
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(517, 256), (333, 256), (1528, 287), (100, 256)] {
            let c = precompute(i, o);
            for (xx, &(_, len)) in c.bounds.iter().enumerate() {
                let s: i64 = c.weights[xx * c.ksize..xx * c.ksize + len].iter().map(|&w| i64::from(w)).sum();
                assert!((s - (1 << PRECISION_BITS)).abs() <= len as i64, "{i}->{o} at {xx}: {s}");
            }
        }
    }
}
