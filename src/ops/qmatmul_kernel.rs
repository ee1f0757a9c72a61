//! The int8 GEMM of a weight MatMul and its float rescale, in one pass:
//!
//! ```text
//! y[m, n] = f32(Σ_k (a[m, k] − a0) · w[k, n]) · scale[n]  (+ bias[n])
//! ```
//!
//! `a`: the activation codes (uint8, or int8 taken as uint8 with `a0 + 128`), `w`: constant int8
//! weights, `a0`: the activation zero point; the sum is exact in i32, then rounded to f32, multiplied
//! and added exactly as the graph's `Cast → Mul → Add` does (two roundings, no FMA), so the result is
//! bit-identical to tract's unfused chain.
//!
//! Kernels, chosen at run time ([`Kernel::detect`]):
//! * [`Kernel::Amx`] (AMX-INT8, Sapphire Rapids and later Xeons): `tdpbusd` on 16 × 64-byte tiles,
//!   32 rows × 32 columns per block (four accumulator tiles), through inline assembly (Rust's AMX
//!   intrinsics are unstable); the process asks Linux for the tile state once
//!   (`arch_prctl(ARCH_REQ_XCOMP_PERM)`), and a CPU or kernel that refuses gets the VNNI kernel.
//! * [`Kernel::Vnni512`] (AVX-512 VNNI): `vpdpbusd` (uint8 × int8, four products per i32 lane, exact),
//!   8 rows × 48 columns per block; the zero point as a per-column correction `a0 · Σ_k w[k, n]`
//!   computed when the weights are packed.
//! * [`Kernel::Avx2`] (AVX2 without VNNI): `vpmaddwd` on int16 (the zero point subtracted from the
//!   activations first, weights widened when packed), 6 rows × 16 columns. `vpmaddubsw`, ONNX
//!   Runtime's AVX2 instruction, saturates its int16 pair sums with uint8 × int8 operands (ONNX
//!   Runtime's `reduce_range` exists for that); int16 operands are exact.
//! * [`Kernel::Scalar`]: the definition, for tests and as the reference.
//!
//! Weights are packed once, when the model is loaded. The column panels are split across tract's
//! inference threads (its rayon pool).

use std::sync::Arc;

use super::OutPtr;

/// Which implementation runs the GEMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// AMX-INT8 `tdpbusd`.
    Amx,
    /// AVX-512 VNNI `vpdpbusd`.
    Vnni512,
    /// AVX2 `vpmaddwd` on int16.
    Avx2,
    /// Plain Rust.
    Scalar,
}

impl Kernel {
    /// The kernel's name in plans and profiles.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Amx => "avx512amx_i8_32x32",
            Kernel::Vnni512 => "avx512vnni_i8_8x48",
            Kernel::Avx2 => "avx2_i16_6x16",
            Kernel::Scalar => "scalar",
        }
    }

    /// Whether this CPU can run it.
    pub fn available(self) -> bool {
        match self {
            Kernel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Amx => Kernel::Vnni512.available() && x86::amx_ready(),
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// This CPU's choice: [`Kernel::Amx`] with AMX-INT8 (and the kernel's permission for its tile
    /// state), else [`Kernel::Vnni512`] with AVX-512 VNNI; tract's own GEMM (`None`) with
    /// AVX-VNNI but no AVX-512 (tract's `avxvnni_mmm_i32_8x8` does 32 products per instruction,
    /// our int16 kernel 16); [`Kernel::Avx2`] with AVX2 only; tract's on ARM (its NEON kernels,
    /// SDOT where present) and on x86 without AVX2.
    pub fn best() -> Option<Kernel> {
        if Kernel::Amx.available() {
            return Some(Kernel::Amx);
        }
        if Kernel::Vnni512.available() {
            return Some(Kernel::Vnni512);
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avxvnni") {
            return None;
        }
        Kernel::Avx2.available().then_some(Kernel::Avx2)
    }

    /// Columns per packed panel.
    fn nr(self) -> usize {
        match self {
            Kernel::Amx => AMX_NR,
            Kernel::Vnni512 => VNNI_NR,
            Kernel::Avx2 => AVX2_NR,
            Kernel::Scalar => 1,
        }
    }

    /// What k is padded to a multiple of: a whole AMX tile, a VNNI group of 4, an AVX2 pair.
    fn k_multiple(self) -> usize {
        match self {
            Kernel::Amx => AMX_KB,
            Kernel::Vnni512 => 4,
            Kernel::Avx2 => 2,
            Kernel::Scalar => 1,
        }
    }

    /// The kernel the engine installs on this CPU ([`Kernel::best`]), or `None` to keep tract's
    /// own int8 GEMM.
    /// `PANDERM_INT8_GEMM=tract` keeps tract's; `amx`, `vnni`, `avx2` or `scalar` force one of ours (for
    /// A/B measurements: an AVX2-only CPU's kernel on a VNNI machine); a kernel this CPU cannot run
    /// is refused.
    pub fn detect() -> Result<Option<Kernel>, String> {
        let forced = std::env::var("PANDERM_INT8_GEMM").unwrap_or_default();
        let wanted = match forced.as_str() {
            "" => return Ok(Kernel::best()),
            "tract" => return Ok(None),
            "amx" => Kernel::Amx,
            "vnni" => Kernel::Vnni512,
            "avx2" => Kernel::Avx2,
            "scalar" => Kernel::Scalar,
            other => {
                return Err(format!("PANDERM_INT8_GEMM={other}: expected tract, amx, vnni, avx2 or scalar"));
            }
        };
        if wanted.available() {
            Ok(Some(wanted))
        } else {
            Err(format!("PANDERM_INT8_GEMM: this CPU cannot run the {} kernel", wanted.name()))
        }
    }
}

/// Columns per packed panel and rows per block of each kernel.
const VNNI_NV: usize = 3;
const VNNI_NR: usize = 16 * VNNI_NV;
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const VNNI_MR: usize = 8;
const AMX_NR: usize = 32;
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const AMX_MR: usize = 32;
/// k per tile: 16 rows of 4-byte groups.
const AMX_KB: usize = 64;
const AVX2_NR: usize = 16;
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const AVX2_MR: usize = 6;

#[derive(Debug)]
enum Packed {
    /// `[K, N]` row-major, as given.
    Plain(Vec<i8>),
    /// Panels of 48 columns (AMX: 32, with k padded to whole tiles of 64); per group of 4 k:
    /// 48 × 4 bytes (`w[4g..4g+4, n]` per column).
    Vnni(Vec<i8>),
    /// Panels of 16 columns; per pair of k: 16 × 2 int16 (`w[2g..2g+2, n]` per column).
    Avx2(Vec<i16>),
}

/// A weight matrix packed for one kernel, with its zero point, scales and bias.
#[derive(Debug)]
pub struct Weights {
    kernel: Kernel,
    k: usize,
    n: usize,
    a0: i32,
    packed: Packed,
    /// `a0 · Σ_k w[k, n]`, padded to whole panels (VNNI and AMX; empty otherwise).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    correction: Vec<i32>,
    /// Per column, padded to whole panels.
    scale: Vec<f32>,
    /// Per column, padded to whole panels; `None` when the graph has no bias Add.
    bias: Option<Vec<f32>>,
}

/// Where a [`Weights`] is shared: the op clones cheaply.
pub type SharedWeights = Arc<Weights>;

fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

impl Weights {
    /// Packs `w` (`[k, n]` row-major) for `kernel`. `scale` and `bias` have `n` values;
    /// `a0` is the activation zero point (uint8 codes).
    pub fn pack(kernel: Kernel, w: &[i8], k: usize, n: usize, a0: i32, scale: &[f32], bias: Option<&[f32]>) -> Weights {
        assert!(k > 0 && n > 0, "an empty weight matrix");
        assert_eq!(w.len(), k * n, "weights are not k × n");
        assert_eq!(scale.len(), n, "one scale per column");
        assert!(bias.is_none_or(|b| b.len() == n), "one bias per column");
        let nr = kernel.nr();
        let np = round_up(n, nr);
        let pad = |v: &[f32]| {
            let mut p = v.to_vec();
            p.resize(np, 0.0);
            p
        };
        let kp = round_up(k, kernel.k_multiple());
        let mut correction = Vec::new();
        let packed = match kernel {
            Kernel::Scalar => Packed::Plain(w.to_vec()),
            Kernel::Vnni512 | Kernel::Amx => {
                correction = (0..np)
                    .map(|col| if col < n { a0 * (0..k).map(|kk| i32::from(w[kk * n + col])).sum::<i32>() } else { 0 })
                    .collect();
                Packed::Vnni(pack_panels::<i8, 4>(w, k, n, nr, kp))
            }
            Kernel::Avx2 => Packed::Avx2(pack_panels::<i16, 2>(w, k, n, nr, kp)),
        };
        Weights { kernel, k, n, a0, packed, correction, scale: pad(scale), bias: bias.map(pad) }
    }

    /// The kernel it was packed for.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// `(k, n)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// Whether a bias is added.
    pub fn has_bias(&self) -> bool {
        self.bias.is_some()
    }

    /// Bytes held by the packed weights.
    pub fn packed_bytes(&self) -> usize {
        match &self.packed {
            Packed::Plain(v) | Packed::Vnni(v) => v.len(),
            Packed::Avx2(v) => v.len() * 2,
        }
    }

    /// `y = rescale(a · w)` for `a`: `[m, k]` uint8 codes, `y`: `[m, n]`, on tract's inference
    /// threads: each takes a share of the column panels, so each reads only its share of the
    /// weights (with AMX the GEMM is bound by streaming them: a split by rows, which makes every
    /// thread read all of them, ran no faster on 2 threads than on 1). Panics if the lengths do not
    /// match (a bug in the caller).
    pub fn gemm(&self, a: &[u8], y: &mut [f32]) {
        assert_eq!(a.len() % self.k, 0, "activation length is not a multiple of k");
        let m = a.len() / self.k;
        assert_eq!(y.len(), m * self.n, "output is not m × n");
        if m == 0 {
            return;
        }
        let panels = self.n.div_ceil(self.kernel.nr());
        // One contiguous share of the panels per thread.
        let per = panels.div_ceil(super::pool_threads());
        let input = self.prepare(a, m);
        let out = OutPtr(y.as_mut_ptr());
        super::spread(panels.div_ceil(per), |share| {
            let range = share * per..((share + 1) * per).min(panels);
            // SAFETY: `y` holds m × n floats; the shares write disjoint column panels of it, and
            // `y` outlives them (spread returns after all have run).
            unsafe { self.run(&input, m, out, range) }
        });
    }

    /// The activations as the kernel reads them: padded to whole groups of k, or widened to int16
    /// with the zero point subtracted (AVX2).
    fn prepare<'a>(&self, a: &'a [u8], m: usize) -> Prepared<'a> {
        let kp = round_up(self.k, self.kernel.k_multiple());
        if self.kernel == Kernel::Avx2 {
            let mut a16 = vec![0i16; m * kp];
            for (row16, row) in a16.chunks_exact_mut(kp).zip(a.chunks_exact(self.k)) {
                for (d, &s) in row16.iter_mut().zip(row) {
                    // |a − a0| ≤ 255: exact in int16.
                    *d = (i32::from(s) - self.a0) as i16;
                }
            }
            return Prepared { kp, codes: std::borrow::Cow::Borrowed(&[]), wide: a16 };
        }
        // Rows padded with zeros (which meet zero weights) to whole groups when k is not.
        let codes = if kp == self.k {
            std::borrow::Cow::Borrowed(a)
        } else {
            std::borrow::Cow::Owned(pad_rows(a, self.k, kp, 0u8))
        };
        Prepared { kp, codes, wide: Vec::new() }
    }

    /// The column panels `panels` of `y`.
    ///
    /// # Safety
    /// `y` points to `m × n` floats that no other thread writes in these panels' columns.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    unsafe fn run(&self, input: &Prepared, m: usize, y: OutPtr, panels: std::ops::Range<usize>) {
        let kp = input.kp;
        match (&self.packed, self.kernel) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `available()` was checked when the kernel was chosen; the buffers hold
            // m × kp codes, the packed panels, and m × n outputs.
            (Packed::Vnni(w), Kernel::Vnni512) => unsafe { x86::gemm_vnni(self, w, &input.codes, kp, m, y.0, panels) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above; `available()` includes AMX-INT8 and the tile permission.
            (Packed::Vnni(w), Kernel::Amx) => unsafe { x86::gemm_amx(self, w, &input.codes, kp, m, y.0, panels) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, with m × kp int16 activations.
            (Packed::Avx2(w), Kernel::Avx2) => unsafe { x86::gemm_avx2(self, w, &input.wide, kp, m, y.0, panels) },
            // SAFETY: as for the caller.
            (Packed::Plain(w), _) => unsafe { self.gemm_scalar(w, &input.codes, m, y.0, panels) },
            _ => unreachable!("weights are packed for the kernel that runs them"),
        }
    }

    /// # Safety
    /// As [`Weights::run`] (a panel is one column here).
    unsafe fn gemm_scalar(&self, w: &[i8], a: &[u8], m: usize, y: *mut f32, cols: std::ops::Range<usize>) {
        let (k, n) = (self.k, self.n);
        for (r, row) in a.chunks_exact(k).take(m).enumerate() {
            for c in cols.clone() {
                let acc: i32 = (0..k).map(|kk| (i32::from(row[kk]) - self.a0) * i32::from(w[kk * n + c])).sum();
                // SAFETY: r < m, c < n.
                unsafe { *y.add(r * n + c) = self.rescale(acc, c) };
            }
        }
    }

    /// The float value of one accumulator of column `c`: the graph's Cast, Mul, Add.
    #[inline]
    fn rescale(&self, acc: i32, c: usize) -> f32 {
        let v = acc as f32 * self.scale[c];
        match &self.bias {
            Some(b) => v + b[c],
            None => v,
        }
    }
}

/// Activations as a kernel reads them.
struct Prepared<'a> {
    /// Row length in the buffer (k padded).
    kp: usize,
    /// uint8 codes (VNNI, AMX, scalar).
    codes: std::borrow::Cow<'a, [u8]>,
    /// int16, zero point subtracted (AVX2).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    wide: Vec<i16>,
}

/// `w` (`[k, n]` row-major) in panels of `nr` columns with k padded to `kp`: per group of `G`
/// consecutive k, the panel's columns one after the other, each with its `G` values (what one
/// `vpdpbusd`/`tdpbusd` lane reads with G = 4, one `vpmaddwd` lane with G = 2); zeros past k and n.
fn pack_panels<T: From<i8> + Copy + Default, const G: usize>(
    w: &[i8],
    k: usize,
    n: usize,
    nr: usize,
    kp: usize,
) -> Vec<T> {
    let (np, groups) = (round_up(n, nr), kp / G);
    let mut out = vec![T::default(); np * kp];
    for panel in 0..np / nr {
        for g in 0..groups {
            for c in 0..nr {
                let col = panel * nr + c;
                for d in 0..G {
                    let kk = G * g + d;
                    if col < n && kk < k {
                        out[(panel * groups + g) * nr * G + c * G + d] = T::from(w[kk * n + col]);
                    }
                }
            }
        }
    }
    out
}

fn pad_rows<T: Copy>(a: &[T], k: usize, kp: usize, zero: T) -> Vec<T> {
    let mut out = vec![zero; a.len() / k * kp];
    for (dst, src) in out.chunks_exact_mut(kp).zip(a.chunks_exact(k)) {
        dst[..k].copy_from_slice(src);
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use std::arch::asm;
    use std::sync::OnceLock;

    use super::{AMX_KB, AMX_MR, AMX_NR, AVX2_MR, AVX2_NR, VNNI_MR, VNNI_NR, VNNI_NV, Weights};

    /// Whether this CPU has AMX-INT8 and Linux gave the process the tile state (asked once).
    pub fn amx_ready() -> bool {
        static READY: OnceLock<bool> = OnceLock::new();
        *READY.get_or_init(|| {
            // CPUID.(EAX=7, ECX=0):EDX bit 24 AMX-TILE, bit 25 AMX-INT8.
            let edx = std::arch::x86_64::__cpuid_count(7, 0).edx;
            if edx & (1 << 24) == 0 || edx & (1 << 25) == 0 {
                return false;
            }
            const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
            const XFEATURE_XTILEDATA: libc::c_long = 18;
            // SAFETY: arch_prctl with these arguments only changes the process's permission.
            let r = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) };
            if r != 0 {
                log::info!(
                    "AMX: Linux refused the tile state ({}); int8 GEMM on AVX-512 VNNI",
                    std::io::Error::last_os_error()
                );
            }
            r == 0
        })
    }

    /// The tile configuration (palette 1): tmm0–3 accumulators 16 × 16 i32, tmm4–5 A 16 rows ×
    /// 64 codes, tmm6–7 B 16 groups × 16 columns × 4 bytes: every tile 16 rows of 64 bytes.
    #[repr(C, align(64))]
    struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        colsb: [u16; 16],
        rows: [u8; 16],
    }

    #[repr(C, align(64))]
    struct Block([i32; AMX_MR * AMX_NR]);

    /// # Safety
    /// AMX-INT8 with the tile permission ([`amx_ready`]) and AVX-512 F/BW present; `a` holds
    /// `m × kp` codes (`kp` a multiple of 64), `w` the 32-column panels of `wts` with k padded to
    /// `kp`, `y` `m × n` floats.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn gemm_amx(
        wts: &Weights,
        w: &[i8],
        a: &[u8],
        kp: usize,
        m: usize,
        y: *mut f32,
        panels: std::ops::Range<usize>,
    ) {
        let mut cfg = TileConfig { palette: 1, start_row: 0, reserved: [0; 14], colsb: [0; 16], rows: [0; 16] };
        for t in 0..8 {
            cfg.colsb[t] = 64;
            cfg.rows[t] = 16;
        }
        // SAFETY: a valid palette-1 configuration; tiles are this thread's state.
        unsafe { asm!("ldtilecfg [{}]", in(reg) &cfg, options(nostack, readonly)) };
        let groups = kp / 4;
        let n = wts.n;
        let mut acc = Block([0; AMX_MR * AMX_NR]);
        // The last, partial block of rows, zero-padded to 32 (its extra rows are not stored).
        let tail_rows = m % AMX_MR;
        let tail: Vec<u8> = if tail_rows == 0 {
            Vec::new()
        } else {
            let mut t = vec![0u8; AMX_MR * kp];
            t[..tail_rows * kp].copy_from_slice(&a[(m - tail_rows) * kp..m * kp]);
            t
        };
        for panel in panels {
            let c0 = panel * AMX_NR;
            let cols = (n - c0).min(AMX_NR);
            let panel_len = groups * AMX_NR * 4;
            let wp = unsafe { w.as_ptr().add(panel * panel_len) };
            let mut r = 0;
            while r < m {
                let rows = (m - r).min(AMX_MR);
                let ap = if rows == AMX_MR { unsafe { a.as_ptr().add(r * kp) } } else { tail.as_ptr() };
                // SAFETY: A tiles read 16 rows of 64 codes at stride kp within the 32 rows at ap;
                // B tiles 16 groups of 128 bytes (stride) within the panel; the block buffer holds
                // 32 × 32 i32 (stride 128 bytes).
                unsafe {
                    asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
                    for kb in 0..kp / AMX_KB {
                        let a0 = ap.add(kb * AMX_KB);
                        let a1 = a0.add(16 * kp);
                        let b0 = wp.add(kb * 16 * AMX_NR * 4);
                        let b1 = b0.add(64);
                        asm!(
                            "tileloadd tmm4, [{a0} + {sa}*1]",
                            "tileloadd tmm5, [{a1} + {sa}*1]",
                            "tileloadd tmm6, [{b0} + {sb}*1]",
                            "tileloadd tmm7, [{b1} + {sb}*1]",
                            "tdpbusd tmm0, tmm4, tmm6",
                            "tdpbusd tmm1, tmm4, tmm7",
                            "tdpbusd tmm2, tmm5, tmm6",
                            "tdpbusd tmm3, tmm5, tmm7",
                            a0 = in(reg) a0,
                            a1 = in(reg) a1,
                            b0 = in(reg) b0,
                            b1 = in(reg) b1,
                            sa = in(reg) kp,
                            sb = in(reg) AMX_NR * 4,
                            options(nostack, readonly),
                        );
                    }
                    let c = acc.0.as_mut_ptr();
                    asm!(
                        "tilestored [{c0} + {s}*1], tmm0",
                        "tilestored [{c1} + {s}*1], tmm1",
                        "tilestored [{c2} + {s}*1], tmm2",
                        "tilestored [{c3} + {s}*1], tmm3",
                        c0 = in(reg) c,
                        c1 = in(reg) c.add(16),
                        c2 = in(reg) c.add(16 * AMX_NR),
                        c3 = in(reg) c.add(16 * AMX_NR + 16),
                        s = in(reg) AMX_NR * 4,
                        options(nostack),
                    );
                }
                for row in 0..rows {
                    for h in 0..2 {
                        let first = 16 * h;
                        if first >= cols {
                            break;
                        }
                        let valid = (cols - first).min(16);
                        let col = c0 + first;
                        // SAFETY: the block buffer holds 32 × 32 i32; the output row has `cols`
                        // columns from c0.
                        unsafe {
                            let v = _mm512_loadu_si512(acc.0.as_ptr().add(row * AMX_NR + first) as *const _);
                            rescale_store_16(wts, v, col, y.add((r + row) * n + col), valid);
                        }
                    }
                }
                r += rows;
            }
        }
        // SAFETY: releases this thread's tile state.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }

    /// # Safety
    /// AVX-512 F, BW and VNNI present; `a` holds `m × kp` codes (`kp` a multiple of 4), `w` the
    /// VNNI panels of `wts`, `y` `m × n` floats.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn gemm_vnni(
        wts: &Weights,
        w: &[i8],
        a: &[u8],
        kp: usize,
        m: usize,
        y: *mut f32,
        panels: std::ops::Range<usize>,
    ) {
        let groups = kp / 4;
        let n = wts.n;
        for panel in panels {
            let c0 = panel * VNNI_NR;
            let cols = (n - c0).min(VNNI_NR);
            let panel_len = groups * VNNI_NR * 4;
            let wp = unsafe { w.as_ptr().add(panel * panel_len) };
            let mut r = 0;
            while r < m {
                let rows = (m - r).min(VNNI_MR);
                let ap = unsafe { a.as_ptr().add(r * kp) };
                let yp = unsafe { y.add(r * n + c0) };
                macro_rules! block {
                    ($($mr:literal)*) => {
                        match rows {
                            $($mr => unsafe { vnni_block::<$mr>(wts, wp, ap, kp, groups, c0, cols, yp, n) },)*
                            _ => unreachable!("1 ..= VNNI_MR rows"),
                        }
                    };
                }
                block!(1 2 3 4 5 6 7 8);
                r += rows;
            }
        }
    }

    /// The epilogue of the VNNI and AMX kernels: `(acc − a0·Σw) · scale (+ bias)` for the 16
    /// columns from `col`, rounded as the graph's Cast, Mul, Add; the first `valid` stored at `dst`.
    ///
    /// # Safety
    /// AVX-512F present; `col + 16` within the padded per-column vectors; `dst` valid for `valid`
    /// floats.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn rescale_store_16(wts: &Weights, acc: __m512i, col: usize, dst: *mut f32, valid: usize) {
        // SAFETY: correction, scale and bias are padded to whole panels (multiples of 16); the
        // caller's contract for dst.
        unsafe {
            let v = _mm512_sub_epi32(acc, _mm512_loadu_si512(wts.correction.as_ptr().add(col) as *const _));
            let f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_loadu_ps(wts.scale.as_ptr().add(col)));
            let f = match &wts.bias {
                Some(b) => _mm512_add_ps(f, _mm512_loadu_ps(b.as_ptr().add(col))),
                None => f,
            };
            crate::ops::x86_store::store_ps512_first(dst, f, valid);
        }
    }

    /// One block of `MR` rows × one panel of up to `VNNI_NR` columns.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn vnni_block<const MR: usize>(
        wts: &Weights,
        wp: *const i8,
        ap: *const u8,
        lda: usize,
        groups: usize,
        c0: usize,
        cols: usize,
        yp: *mut f32,
        ldy: usize,
    ) {
        let mut acc = [[_mm512_setzero_si512(); VNNI_NV]; MR];
        for g in 0..groups {
            // SAFETY (whole loop): the panel holds `groups` × 4 · VNNI_NR bytes; each row `lda` ≥
            // 4g + 4 codes.
            let mut b = [_mm512_setzero_si512(); VNNI_NV];
            for (v, b) in b.iter_mut().enumerate() {
                *b = unsafe { _mm512_loadu_si512(wp.add(g * 4 * VNNI_NR + 64 * v) as *const _) };
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let four = unsafe { (ap.add(r * lda + 4 * g) as *const i32).read_unaligned() };
                let av = _mm512_set1_epi32(four);
                for (acc, &b) in acc.iter_mut().zip(&b) {
                    *acc = _mm512_dpbusd_epi32(*acc, av, b);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (h, &v) in acc.iter().enumerate() {
                let first = 16 * h;
                if first >= cols {
                    break;
                }
                let valid = (cols - first).min(16);
                // SAFETY: row r of the output has `cols` ≥ first + valid columns from c0.
                unsafe { rescale_store_16(wts, v, c0 + first, yp.add(r * ldy + first), valid) };
            }
        }
    }

    /// Prefetches share `part` of `parts` of the `len` bytes at `next` (the next weight panel)
    /// into L2. The weights are read once per image, from memory, and the hardware prefetchers
    /// stop at page boundaries: with the next panel's lines requested a few at a time while this
    /// panel's row blocks run, they arrive at the pace the kernel consumes them (measured on a
    /// 768×768 GEMM: cold weights ran at half the speed of cached ones).
    #[inline(always)]
    fn prefetch_share(next: *const u8, len: usize, part: usize, parts: usize) {
        let lines = len.div_ceil(64);
        let per = lines.div_ceil(parts);
        for line in part * per..((part + 1) * per).min(lines) {
            // SAFETY: a hint; the address is inside the next panel.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(next.wrapping_add(line * 64) as *const i8) };
        }
    }

    /// # Safety
    /// AVX2 present; `a` holds `m × kp` int16 activations (`kp` even, zero point subtracted), `w`
    /// the AVX2 panels of `wts`, `y` `m × n` floats.
    #[target_feature(enable = "avx2")]
    pub unsafe fn gemm_avx2(
        wts: &Weights,
        w: &[i16],
        a: &[i16],
        kp: usize,
        m: usize,
        y: *mut f32,
        panels: std::ops::Range<usize>,
    ) {
        let pairs = kp / 2;
        let n = wts.n;
        let last = panels.end;
        for panel in panels {
            let c0 = panel * AVX2_NR;
            let cols = (n - c0).min(AVX2_NR);
            let panel_len = pairs * AVX2_NR * 2;
            let wp = unsafe { w.as_ptr().add(panel * panel_len) };
            let mut r = 0;
            while r < m {
                let rows = (m - r).min(AVX2_MR);
                let ap = unsafe { a.as_ptr().add(r * kp) };
                let yp = unsafe { y.add(r * n + c0) };
                if panel + 1 < last {
                    prefetch_share(
                        unsafe { wp.add(panel_len) } as *const u8,
                        panel_len * 2,
                        r / AVX2_MR,
                        m.div_ceil(AVX2_MR),
                    );
                }
                unsafe {
                    match rows {
                        6 => avx2_block::<6>(wts, wp, ap, kp, pairs, c0, cols, yp, n),
                        5 => avx2_block::<5>(wts, wp, ap, kp, pairs, c0, cols, yp, n),
                        4 => avx2_block::<4>(wts, wp, ap, kp, pairs, c0, cols, yp, n),
                        3 => avx2_block::<3>(wts, wp, ap, kp, pairs, c0, cols, yp, n),
                        2 => avx2_block::<2>(wts, wp, ap, kp, pairs, c0, cols, yp, n),
                        _ => avx2_block::<1>(wts, wp, ap, kp, pairs, c0, cols, yp, n),
                    }
                }
                r += rows;
            }
        }
    }

    /// One block of `MR` rows × one panel of up to 16 columns.
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn avx2_block<const MR: usize>(
        wts: &Weights,
        wp: *const i16,
        ap: *const i16,
        lda: usize,
        pairs: usize,
        c0: usize,
        cols: usize,
        yp: *mut f32,
        ldy: usize,
    ) {
        let mut acc = [[_mm256_setzero_si256(); 2]; MR];
        for g in 0..pairs {
            // SAFETY (whole loop): the panel holds `pairs` × 32 int16; each row `lda` ≥ 2g + 2.
            let b0 = unsafe { _mm256_loadu_si256(wp.add(g * 32) as *const _) };
            let b1 = unsafe { _mm256_loadu_si256(wp.add(g * 32 + 16) as *const _) };
            for (r, acc) in acc.iter_mut().enumerate() {
                let two = unsafe { (ap.add(r * lda + 2 * g) as *const i32).read_unaligned() };
                let av = _mm256_set1_epi32(two);
                acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(av, b0));
                acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(av, b1));
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (h, &v) in acc.iter().enumerate() {
                let first = 8 * h;
                if first >= cols {
                    break;
                }
                let valid = (cols - first).min(8);
                let c = c0 + first;
                // SAFETY: scale and bias are padded to whole panels.
                let f = unsafe {
                    let f = _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(wts.scale.as_ptr().add(c)));
                    match &wts.bias {
                        Some(b) => _mm256_add_ps(f, _mm256_loadu_ps(b.as_ptr().add(c))),
                        None => f,
                    }
                };
                // SAFETY: row r of the output has at least `first + valid` columns from c0.
                unsafe { crate::ops::x86_store::store_ps256_first(yp.add(r * ldy + first), f, valid) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tract_linalg::multithread::{Executor, multithread_tract_scope};

    use super::*;

    fn lcg(seed: &mut u64) -> u32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*seed >> 33) as u32
    }

    /// Every kernel this CPU has equals the scalar definition bit for bit, over shapes that hit
    /// every tail (rows not a multiple of the block, columns not of the panel, k not of 4), the
    /// extreme codes (0 and 255 against ±127 and −128 weights) and with and without a bias.
    #[test]
    fn every_kernel_equals_the_definition() {
        let mut seed = 7u64;
        for &(m, k, n) in &[
            (1, 4, 1),
            (197, 128, 128),
            (9, 3, 17),
            (13, 130, 33),
            (8, 768, 64),
            (7, 5, 48),
            (30, 64, 1),
            (64, 192, 96),
            (33, 100, 40),
        ] {
            for extreme in [false, true] {
                let a: Vec<u8> = (0..m * k)
                    .map(|i| if extreme { if i % 2 == 0 { 255 } else { 0 } } else { lcg(&mut seed) as u8 })
                    .collect();
                let w: Vec<i8> = (0..k * n)
                    .map(|i| if extreme { if i % 3 == 0 { -128 } else { 127 } } else { lcg(&mut seed) as i8 })
                    .collect();
                let scale: Vec<f32> = (0..n).map(|i| 1e-4 * (1.0 + i as f32 * 0.37)).collect();
                let bias: Vec<f32> = (0..n).map(|i| (i as f32 - 3.5) * 0.013).collect();
                for a0 in [128, 0, 37] {
                    for b in [None, Some(bias.as_slice())] {
                        let reference = Weights::pack(Kernel::Scalar, &w, k, n, a0, &scale, b);
                        let mut want = vec![0f32; m * n];
                        reference.gemm(&a, &mut want);
                        for kernel in [Kernel::Amx, Kernel::Vnni512, Kernel::Avx2] {
                            if !kernel.available() {
                                eprintln!("SKIPPED: {} not on this CPU", kernel.name());
                                continue;
                            }
                            let packed = Weights::pack(kernel, &w, k, n, a0, &scale, b);
                            // One thread, and three (columns split between them).
                            for threads in [1, 3] {
                                let mut got = vec![f32::NAN; m * n];
                                let executor =
                                    if threads == 1 { Executor::SingleThread } else { Executor::multithread(threads) };
                                multithread_tract_scope(executor, || packed.gemm(&a, &mut got));
                                let same = want.iter().zip(&got).all(|(x, y)| x.to_bits() == y.to_bits());
                                assert!(
                                    same,
                                    "{} m={m} k={k} n={n} a0={a0} bias={} extreme={extreme} threads={threads}",
                                    kernel.name(),
                                    b.is_some()
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_definition_is_the_integer_sum_then_mul_then_add() {
        // [[1, 2]] · [[3], [4]] with a0 = 1: (0·3 + 1·4) = 4 → 4 · 0.5 + 0.25.
        let w = Weights::pack(Kernel::Scalar, &[3, 4], 2, 1, 1, &[0.5], Some(&[0.25]));
        let mut y = [0f32];
        w.gemm(&[1, 2], &mut y);
        assert_eq!(y, [2.25]);
    }
}
