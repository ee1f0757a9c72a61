//! The image operations of PanDerm's test-time augmentation, on float tensors in [0, 1] (CHW,
//! [`ImageTensor`]), with torchvision's tensor semantics (torchvision 0.19, the version PanDerm
//! pins):
//!
//! | op | torchvision | here |
//! |---|---|---|
//! | `ToTensor()` of the decoded RGB image | `/255` to float32 | [`to_unit_chw`] |
//! | `Resize(size)` on a tensor | `interpolate(bilinear, antialias=True)` | [`resize_shorter_side_aa`] |
//! | `CenterCrop(size)` | offsets `int(round((H-size)/2))` | [`center_crop_chw`] |
//! | `hflip`, `vflip` | reverse columns, rows | [`hflip`], [`vflip`] |
//! | `rotate(angle, NEAREST, expand=False, fill=0)` | affine grid + `grid_sample(nearest, zeros)` | [`rotate_nearest`] |
//! | `adjust_saturation(f)` | blend with the 0.2989/0.587/0.114 grey, clamp to [0, 1] | [`adjust_saturation`] |
//! | `adjust_hue(f)` | RGB → HSV, `h = (h + f) mod 1`, HSV → RGB | [`adjust_hue`] |
//! | `Normalize(mean, std)` | `(x - mean) / std` | [`normalize`] |
//!
//! Every op follows torchvision's (and ATen's CPU kernels') float32 formulas step by step,
//! including where ATen mixes float and double. Bit-identity with PyTorch is not claimed: its
//! kernels are vectorised and may contract multiply-adds, which moves results by an ulp; a
//! nearest-neighbour rotation can then pick the neighbouring pixel where a sampling point falls
//! within an ulp of a pixel boundary.

use crate::error::{Error, ErrorKind, Result};
use crate::preprocess::{ImageTensor, center_crop_offset, resized_dims};

/// `ToTensor()`: 8-bit RGB to float32 CHW in [0, 1] (`v / 255`).
pub fn to_unit_chw(img: &image::RgbImage) -> ImageTensor {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let plane = w * h;
    let mut data = vec![0f32; 3 * plane];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            data[c * plane + i] = f32::from(px.0[c]) / 255.0;
        }
    }
    ImageTensor { data, height: h, width: w }
}

/// One axis of ATen's antialiased bilinear resampling: for each output index, the first input
/// index and the normalised weights.
struct AaAxis {
    taps: Vec<(usize, Vec<f32>)>,
}

/// ATen's `_compute_index_ranges_weights` + `_compute_indices_min_size_weights_aa` for a float
/// tensor, bilinear (`interp_size = 2`, triangle filter), `align_corners=False`, with ATen's
/// float/double promotions: `scale`, `support`, `center` and `invscale` are float32; the window
/// bounds add 0.5 in double and truncate; each weight's argument is computed in double from a
/// float32 distance and rounded to float32; the weights are float32, normalised by their float32
/// sum.
fn aa_axis(input: usize, output: usize) -> AaAxis {
    let scale = input as f32 / output as f32;
    let support: f32 = if scale >= 1.0 { scale } else { 1.0 };
    let invscale: f32 = if scale >= 1.0 { (1.0 / f64::from(scale)) as f32 } else { 1.0 };
    let max_taps = (support.ceil() as i64) * 2 + 1;
    let taps = (0..output)
        .map(|i| {
            let center = (f64::from(scale) * (i as f64 + 0.5)) as f32;
            let xmin = ((f64::from(center - support) + 0.5) as i64).max(0);
            let xmax = ((f64::from(center + support) + 0.5) as i64).min(input as i64);
            let size = (xmax - xmin).clamp(0, max_taps);
            let mut weights: Vec<f32> = (0..size)
                .map(|j| {
                    let d = (j + xmin) as f32 - center;
                    let x = ((f64::from(d) + 0.5) * f64::from(invscale)) as f32;
                    let x = x.abs();
                    if x < 1.0 { 1.0 - x } else { 0.0 }
                })
                .collect();
            let total: f32 = weights.iter().sum();
            if total != 0.0 {
                weights.iter_mut().for_each(|w| *w /= total);
            }
            (xmin as usize, weights)
        })
        .collect();
    AaAxis { taps }
}

/// One pass along an axis: `count` lines of `len` samples spaced `stride` apart, line `l`
/// starting at `start(l)`; writes `output` samples per line, line-major, with the same layout
/// rule `out_start(l)` and `out_stride`. Accumulates in float32 in tap order, as ATen's
/// `interpolate_aa_single_dim`.
struct Pass<'a> {
    axis: &'a AaAxis,
    stride: usize,
    out_stride: usize,
}

impl Pass<'_> {
    fn run(&self, src: &[f32], src_start: usize, dst: &mut [f32], dst_start: usize) {
        for (o, (first, weights)) in self.axis.taps.iter().enumerate() {
            let mut acc = 0f32;
            for (j, w) in weights.iter().enumerate() {
                let v = src[src_start + (first + j) * self.stride] * w;
                acc = if j == 0 { v } else { acc + v };
            }
            dst[dst_start + o * self.out_stride] = acc;
        }
    }
}

/// `Resize(size)` of a float tensor: the shorter side becomes `size` (the longer
/// `int(size · long / short)`, [`resized_dims`]), with ATen's antialiased bilinear filter
/// (`interpolate(mode='bilinear', antialias=True, align_corners=False)`): the width pass first,
/// then the height pass, in float32 without rounding in between (unlike Pillow's 8-bit
/// passes). An axis whose size does not change is left alone, as ATen does.
pub fn resize_shorter_side_aa(t: &ImageTensor, size: u32) -> Result<ImageTensor> {
    if t.width == 0 || t.height == 0 || t.data.len() != 3 * t.width * t.height {
        return Err(Error::new(ErrorKind::InvalidInput, format!("bad {}x{} tensor", t.width, t.height)));
    }
    let (w_u32, h_u32) = (
        u32::try_from(t.width).map_err(|_| Error::new(ErrorKind::InvalidInput, "image too wide"))?,
        u32::try_from(t.height).map_err(|_| Error::new(ErrorKind::InvalidInput, "image too tall"))?,
    );
    let (out_w, out_h) = resized_dims(w_u32, h_u32, size);
    let (out_w, out_h) = (out_w as usize, out_h as usize);
    let (in_w, in_h) = (t.width, t.height);
    let mut cur = t.data.clone();
    if out_w != in_w {
        let axis = aa_axis(in_w, out_w);
        let pass = Pass { axis: &axis, stride: 1, out_stride: 1 };
        let mut next = vec![0f32; 3 * in_h * out_w];
        for line in 0..3 * in_h {
            pass.run(&cur, line * in_w, &mut next, line * out_w);
        }
        cur = next;
    }
    if out_h != in_h {
        let axis = aa_axis(in_h, out_h);
        let pass = Pass { axis: &axis, stride: out_w, out_stride: out_w };
        let mut next = vec![0f32; 3 * out_h * out_w];
        for c in 0..3 {
            for x in 0..out_w {
                pass.run(&cur, c * in_h * out_w + x, &mut next, c * out_h * out_w + x);
            }
        }
        cur = next;
    }
    Ok(ImageTensor { data: cur, height: out_h, width: out_w })
}

/// `CenterCrop(size)` of a tensor (torchvision's offsets, Python rounding). Fails when the
/// tensor is smaller than the crop (torchvision would pad).
pub fn center_crop_chw(t: &ImageTensor, size: usize) -> Result<ImageTensor> {
    let (w, h) = (t.width, t.height);
    if w < size || h < size {
        return Err(Error::new(ErrorKind::InvalidInput, format!("image {w}x{h} is smaller than the {size}px crop")));
    }
    let (top, left) = (center_crop_offset(h, size), center_crop_offset(w, size));
    let mut data = Vec::with_capacity(3 * size * size);
    for c in 0..3 {
        for y in top..top + size {
            let row = c * h * w + y * w;
            data.extend_from_slice(&t.data[row + left..row + left + size]);
        }
    }
    Ok(ImageTensor { data, height: size, width: size })
}

/// `hflip`: mirror left–right.
pub fn hflip(t: &ImageTensor) -> ImageTensor {
    let mut out = t.clone();
    for row in out.data.chunks_exact_mut(t.width.max(1)) {
        row.reverse();
    }
    out
}

/// `vflip`: mirror top–bottom.
pub fn vflip(t: &ImageTensor) -> ImageTensor {
    let (w, h) = (t.width, t.height);
    let mut data = Vec::with_capacity(t.data.len());
    for c in 0..3 {
        for y in (0..h).rev() {
            let row = c * h * w + y * w;
            data.extend_from_slice(&t.data[row..row + w]);
        }
    }
    ImageTensor { data, height: h, width: w }
}

/// `rotate(angle_degrees, NEAREST, expand=False, center=None, fill=0)` of a float tensor:
/// counter-clockwise about the image centre, same size, pixels from outside the image are 0.
///
/// torchvision builds the inverse rotation in double (`_get_inverse_affine_matrix` with angle
/// `-angle`: `[cos r, sin r, 0; -sin r, cos r, 0]`, `r = radians(-angle)`), stores it as float32,
/// maps each output pixel centre `(x, y)` (relative to the image centre) to
/// `grid = (θ·[x, y, 1]) / (W/2, H/2)`, and `grid_sample` (nearest, zeros padding,
/// `align_corners=False`) reads input pixel `round_half_even((grid + 1)·size/2 − 0.5)`. The fill
/// of 0 goes through torchvision's mask channel, which for nearest sampling is the same as zero
/// padding.
pub fn rotate_nearest(t: &ImageTensor, angle_degrees: f32) -> ImageTensor {
    let (w, h) = (t.width, t.height);
    let r = (-f64::from(angle_degrees)).to_radians();
    let theta = [r.cos() as f32, r.sin() as f32, 0f32, (-r.sin()) as f32, r.cos() as f32, 0f32];
    let (half_w, half_h) = (0.5 * w as f32, 0.5 * h as f32);
    // rescaled_theta = theta^T / [W/2, H/2]: the x row divided by W/2, the y row by H/2.
    let tx = [theta[0] / half_w, theta[1] / half_w, theta[2] / half_w];
    let ty = [theta[3] / half_h, theta[4] / half_h, theta[5] / half_h];
    let mut data = vec![0f32; t.data.len()];
    let plane = w * h;
    for i in 0..h {
        // torch.linspace(-H/2 + 0.5, H/2 - 0.5, H): exact half-integers (or integers).
        let y = i as f32 - half_h + 0.5;
        for j in 0..w {
            let x = j as f32 - half_w + 0.5;
            let gx = x * tx[0] + y * tx[1] + tx[2];
            let gy = x * ty[0] + y * ty[1] + ty[2];
            // grid_sample's unnormalize (align_corners=False), then nearest: round half to even.
            let ix = ((gx + 1.0) * half_w - 0.5).round_ties_even();
            let iy = ((gy + 1.0) * half_h - 0.5).round_ties_even();
            if ix >= 0.0 && iy >= 0.0 && ix < w as f32 && iy < h as f32 {
                let src = iy as usize * w + ix as usize;
                for c in 0..3 {
                    data[c * plane + i * w + j] = t.data[c * plane + src];
                }
            }
        }
    }
    ImageTensor { data, height: h, width: w }
}

/// `adjust_saturation(factor)`: `clamp(factor·img + (1 − factor)·grey, 0, 1)` with
/// `grey = 0.2989 r + 0.587 g + 0.114 b` (torchvision's `rgb_to_grayscale`), in float32.
/// A factor of 1 returns the image unchanged.
pub fn adjust_saturation(t: &ImageTensor, factor: f32) -> ImageTensor {
    let plane = t.width * t.height;
    let other = (1.0 - f64::from(factor)) as f32;
    let mut data = t.data.clone();
    for i in 0..plane {
        let (r, g, b) = (t.data[i], t.data[plane + i], t.data[2 * plane + i]);
        let grey = 0.2989f32 * r + 0.587f32 * g + 0.114f32 * b;
        for c in 0..3 {
            data[c * plane + i] = (factor * t.data[c * plane + i] + other * grey).clamp(0.0, 1.0);
        }
    }
    ImageTensor { data, height: t.height, width: t.width }
}

/// torchvision's `_rgb2hsv` for one pixel (float32): `(h, s, v)` with `h` in [0, 1).
fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let eqc = maxc == minc;
    let cr = maxc - minc;
    let s = cr / if eqc { 1.0 } else { maxc };
    let divisor = if eqc { 1.0 } else { cr };
    let rc = (maxc - r) / divisor;
    let gc = (maxc - g) / divisor;
    let bc = (maxc - b) / divisor;
    let hr = if maxc == r { bc - gc } else { 0.0 };
    let hg = if maxc == g && maxc != r { 2.0 + rc - bc } else { 0.0 };
    let hb = if maxc != g && maxc != r { 4.0 + gc - rc } else { 0.0 };
    let h = hr + hg + hb;
    ((h / 6.0 + 1.0) % 1.0, s, maxc)
}

/// torchvision's `_hsv2rgb` for one pixel (float32).
fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let i = (i as i32).rem_euclid(6);
    let p = (v * (1.0 - s)).clamp(0.0, 1.0);
    let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
    let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
    match i {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

/// `torch.remainder(a, 1.0)` for float32: `fmod`, plus 1 when the result is negative.
fn remainder_one(a: f32) -> f32 {
    let m = a % 1.0;
    if m != 0.0 && m < 0.0 { m + 1.0 } else { m }
}

/// One pixel of [`adjust_hue`]: `rgb` in [0, 1] with its hue rotated by `factor` of the circle
/// (torchvision's float32 RGB → HSV → RGB). Also the training augmentation's hue jitter
/// (`panderm-tools finetune`), on 8-bit pixels scaled to [0, 1].
pub fn hue_shifted(rgb: [f32; 3], factor: f32) -> [f32; 3] {
    let (h, s, v) = rgb_to_hsv(rgb[0], rgb[1], rgb[2]);
    let (r, g, b) = hsv_to_rgb(remainder_one(h + factor), s, v);
    [r, g, b]
}

/// `adjust_hue(factor)` (`factor` in [−0.5, 0.5]): RGB → HSV, `h = (h + factor) mod 1`,
/// HSV → RGB, in float32 with torchvision's formulas. A factor of 0 returns the image up to
/// float32 rounding of the round trip.
pub fn adjust_hue(t: &ImageTensor, factor: f32) -> ImageTensor {
    let plane = t.width * t.height;
    let mut data = t.data.clone();
    for i in 0..plane {
        let [r, g, b] = hue_shifted([t.data[i], t.data[plane + i], t.data[2 * plane + i]], factor);
        data[i] = r;
        data[plane + i] = g;
        data[2 * plane + i] = b;
    }
    ImageTensor { data, height: t.height, width: t.width }
}

/// `Normalize(mean, std)`: `(x − mean) / std` per channel, in float32.
pub fn normalize(t: &ImageTensor, mean: [f32; 3], std: [f32; 3]) -> ImageTensor {
    let plane = t.width * t.height;
    let mut data = t.data.clone();
    for (c, chunk) in data.chunks_exact_mut(plane.max(1)).enumerate().take(3) {
        for v in chunk {
            *v = (*v - mean[c]) / std[c];
        }
    }
    ImageTensor { data, height: t.height, width: t.width }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `w`×`h` tensor whose value at (c, y, x) is distinct and in [0, 1].
    fn ramp(w: usize, h: usize) -> ImageTensor {
        let n = 3 * w * h;
        ImageTensor { data: (0..n).map(|i| i as f32 / n as f32).collect(), height: h, width: w }
    }

    fn at(t: &ImageTensor, c: usize, y: usize, x: usize) -> f32 {
        t.data[c * t.width * t.height + y * t.width + x]
    }

    fn max_diff(a: &ImageTensor, b: &ImageTensor) -> f32 {
        a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn rotation_by_90_is_transpose_then_vflip() {
        for (w, h) in [(6, 6), (7, 7), (224, 224)] {
            let t = ramp(w, h);
            let r = rotate_nearest(&t, 90.0);
            // Counter-clockwise: out[y][x] = in[x][S-1-y], i.e. vflip(transpose(in)).
            for c in 0..3 {
                for y in 0..h {
                    for x in 0..w {
                        assert_eq!(at(&r, c, y, x), at(&t, c, x, w - 1 - y), "{w}x{h} at {c},{y},{x}");
                    }
                }
            }
            // 180 degrees: both flips; 0 degrees: identity.
            assert_eq!(rotate_nearest(&t, 180.0), vflip(&hflip(&t)));
            assert_eq!(rotate_nearest(&t, 0.0), t);
        }
    }

    #[test]
    fn rotation_by_45_leaves_black_corners_and_keeps_the_centre() {
        let t = ImageTensor { data: vec![1.0; 3 * 8 * 8], height: 8, width: 8 };
        let r = rotate_nearest(&t, 45.0);
        // Corner pixel centre (-3.5, -3.5) maps 4.95 px from the centre: outside the 8x8 image.
        assert_eq!(at(&r, 0, 0, 0), 0.0);
        assert_eq!(at(&r, 2, 7, 7), 0.0);
        // The pixels next to the centre stay inside.
        assert_eq!(at(&r, 1, 3, 4), 1.0);
        // Hand-derived: output (row 0, col 3) is (x, y) = (-0.5, -3.5) from the centre; the inverse
        // rotation gives (x cos45 - y sin45, x sin45 + y cos45) = (2.12, -2.83), i.e. input
        // (col 5.62, row 0.67) -> pixel (row 1, col 6): inside, so 1.
        assert_eq!(at(&r, 0, 0, 3), 1.0);
    }

    #[test]
    fn flips_mirror() {
        let t = ramp(3, 2);
        assert_eq!(at(&hflip(&t), 1, 1, 0), at(&t, 1, 1, 2));
        assert_eq!(at(&vflip(&t), 2, 0, 1), at(&t, 2, 1, 1));
        assert_eq!(hflip(&hflip(&t)), t);
    }

    #[test]
    fn neutral_colour_factors_are_identity() {
        let t = ramp(16, 9);
        assert_eq!(adjust_saturation(&t, 1.0), t);
        // The HSV round trip costs at most a few float32 ulps.
        assert!(max_diff(&adjust_hue(&t, 0.0), &t) < 1e-6);
        // A full turn of hue is the identity too (h + 0.5 + 0.5 wraps).
        assert!(max_diff(&adjust_hue(&adjust_hue(&t, 0.5), 0.5), &t) < 1e-5);
    }

    #[test]
    fn colour_ops_hand_derived_values() {
        // Pure red (1, 0, 0): grey = 0.2989. Saturation 0.5 -> 0.5 + 0.5 * 0.2989 for R, and
        // 0.5 * 0.2989 for G and B.
        let red = ImageTensor { data: vec![1.0, 0.0, 0.0], height: 1, width: 1 };
        let s = adjust_saturation(&red, 0.5);
        assert!((s.data[0] - 0.64945).abs() < 1e-6 && (s.data[1] - 0.14945).abs() < 1e-6, "{:?}", s.data);
        // Saturation 0 gives the grey for every channel; 2 overshoots and clamps G and B at 0.
        assert!(adjust_saturation(&red, 0.0).data.iter().all(|v| (v - 0.2989).abs() < 1e-6));
        assert_eq!(adjust_saturation(&red, 2.0).data[1], 0.0);
        // Hue +1/3 turns red into green, +2/3 (= -1/3) into blue.
        let g = adjust_hue(&red, 1.0 / 3.0);
        assert!(max_diff(&g, &ImageTensor { data: vec![0.0, 1.0, 0.0], ..red.clone() }) < 1e-6, "{:?}", g.data);
        let b = adjust_hue(&red, -1.0 / 3.0);
        assert!(max_diff(&b, &ImageTensor { data: vec![0.0, 0.0, 1.0], ..red.clone() }) < 1e-6, "{:?}", b.data);
        // (0.8, 0.4, 0.2): h = (bc - gc)/6 = ((0.6 - 0.4)/0.6)/6 = 1/18, s = 0.75, v = 0.8.
        // Shift by 1/6: h = 4/18 -> i = 1, f = 1/3: (q, v, p) = (0.8(1 - 0.25), 0.8, 0.2).
        let px = ImageTensor { data: vec![0.8, 0.4, 0.2], height: 1, width: 1 };
        let out = adjust_hue(&px, 1.0 / 6.0);
        assert!(max_diff(&out, &ImageTensor { data: vec![0.6, 0.8, 0.2], ..px.clone() }) < 1e-6, "{:?}", out.data);
        // Grey has no hue.
        let grey = ImageTensor { data: vec![0.3, 0.3, 0.3], height: 1, width: 1 };
        assert_eq!(adjust_hue(&grey, 0.2), grey);
    }

    #[test]
    fn antialiased_resize_hand_derived() {
        // 4 -> 2 (scale 2, support 2): output 0 has centre 1.0 and taps x = 0, 1, 2 at
        // |x - 1 + 0.5| / 2 = 0.25, 0.25, 0.75, i.e. triangle weights 0.75, 0.75, 0.25.
        let row = [0.0f32, 1.0, 2.0, 3.0];
        let mut data = Vec::new();
        for _ in 0..3 {
            for _ in 0..4 {
                data.extend_from_slice(&row);
            }
        }
        let t = ImageTensor { data, height: 4, width: 4 };
        let r = resize_shorter_side_aa(&t, 2).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.width, r.height), (2, 2));
        // Output 0: taps x = 0, 1, 2 weights 0.75, 0.75, 0.25 (sum 1.75) -> (0 + 0.75 + 0.5) / 1.75.
        let o0 = (0.75 * 1.0 + 0.25 * 2.0) / 1.75;
        // Output 1: center 3.0, taps x = 1, 2, 3 weights 0.25, 0.75, 0.75 -> (0.25 + 1.5 + 2.25) / 1.75.
        let o1 = (0.25 * 1.0 + 0.75 * 2.0 + 0.75 * 3.0) / 1.75;
        for c in 0..3 {
            for y in 0..2 {
                assert!((at(&r, c, y, 0) - o0).abs() < 1e-6 && (at(&r, c, y, 1) - o1).abs() < 1e-6, "{:?}", r.data);
            }
        }
        // A constant image stays constant; an unchanged size is left alone.
        let flat = ImageTensor { data: vec![0.5; 3 * 30 * 20], height: 20, width: 30 };
        let r = resize_shorter_side_aa(&flat, 11).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.width, r.height), (16, 11));
        assert!(r.data.iter().all(|v| (v - 0.5).abs() < 1e-6));
        assert_eq!(resize_shorter_side_aa(&flat, 20).unwrap_or_else(|e| panic!("{e}")), flat);
    }

    #[test]
    fn upscaling_is_plain_bilinear() {
        // 2 -> 4 (scale 0.5): support 1, centres 0.25, 0.75, 1.25, 1.75; align_corners=False
        // bilinear gives 0, 0.25, 0.75, 1 for input (0, 1) (edges clamp).
        let t = ImageTensor { data: [0.0f32, 1.0].repeat(3 * 2), height: 2, width: 2 };
        let r = resize_shorter_side_aa(&t, 4).unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<f32> = (0..4).map(|x| at(&r, 0, 0, x)).collect();
        assert_eq!(got, vec![0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn crop_and_normalize() {
        let t = ramp(5, 4);
        let c = center_crop_chw(&t, 3).unwrap_or_else(|e| panic!("{e}"));
        // (5-3)/2 = 1 -> left 1; (4-3)/2 = 0.5 -> round half even -> top 0.
        assert_eq!(at(&c, 2, 0, 0), at(&t, 2, 0, 1));
        assert!(center_crop_chw(&t, 6).is_err());
        let n = normalize(&ImageTensor { data: vec![0.5; 3], height: 1, width: 1 }, [0.5, 0.25, 0.0], [1.0, 0.5, 0.25]);
        assert_eq!(n.data, vec![0.0, 0.5, 2.0]);
    }
}
