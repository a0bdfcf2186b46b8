//! int8 quantization: the per-dimension affine quantizer, the per-slot codes
//! and the u8 x i8 integer dot-product kernels the int8 walk runs on
//! (quant_search.rs).
//!
//! A stored vector x becomes u8 codes c with x_i ~ offset_i + scale_i * c_i,
//! where offset/scale span each dimension's [min, max] over the training
//! vectors; values outside that range clamp to 0 or 255. A query q is folded
//! with the scales (w_i = q_i * scale_i) and quantized symmetrically to i8
//! t_i ~ w_i / alpha, so
//!
//! ```text
//! q.x ~ sum_i q_i * offset_i + alpha * sum_i t_i * c_i
//! ```
//!
//! where the first term is the same for every slot and the second is one
//! integer dot product. l2 adds the slot's exact |x|^2 (4 bytes per slot);
//! cosine and dot need nothing per slot. The query codes are limited to
//! [-64, 64] so that AVX2's `maddubs` (two u8 x i8 products summed into a
//! saturating i16) can never saturate (2 * 255 * 64 = 32640): every kernel
//! then computes the exact same integer, and the walk is identical whichever
//! kernel the machine picks.

use super::arena::Arena;
use std::sync::OnceLock;

use super::distance::Metric;

/// How an index's search walk measures distances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Quantization {
    /// The walk uses the f32 vectors.
    #[default]
    None,
    /// The walk uses 8-bit codes; the final candidates are re-ranked in f32.
    Int8,
}

impl Quantization {
    pub fn as_str(self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::Int8 => "int8",
        }
    }

    pub fn parse(s: &str) -> Option<Quantization> {
        match s {
            "none" => Some(Quantization::None),
            "int8" => Some(Quantization::Int8),
            _ => None,
        }
    }

    /// The C ABI value (`VECTORD_QUANTIZATION_*`).
    pub fn code(self) -> u32 {
        match self {
            Quantization::None => 0,
            Quantization::Int8 => 1,
        }
    }

    pub fn from_code(code: u32) -> Option<Quantization> {
        match code {
            0 => Some(Quantization::None),
            1 => Some(Quantization::Int8),
            _ => None,
        }
    }
}

/// An int8 index trains its quantizer when it first holds this many slots
/// (at the end of the add that gets it there, on every vector it holds);
/// below that its searches walk the f32 vectors. Compaction retrains on the
/// live vectors (or forgets the quantizer below this size), which is the
/// only other point where the quantizer changes.
pub const QUANT_TRAIN_MIN: usize = 1000;

/// Largest |query code|: keeps `maddubs` from saturating (module docs).
pub const QUERY_CODE_MAX: i32 = 64;

/// Per-dimension affine ranges: x_i ~ offset_i + scale_i * code_i.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantizer {
    pub offset: Vec<f32>,
    pub scale: Vec<f32>,
}

impl Quantizer {
    /// Each dimension's [min, max] over `vectors` (rows of `dim`), split in
    /// 255 steps. The width is taken in f64 so that a range as wide as f32
    /// allows still gives a finite scale.
    pub fn train(vectors: &[f32], dim: usize) -> Quantizer {
        let mut lo = vec![f32::INFINITY; dim];
        let mut hi = vec![f32::NEG_INFINITY; dim];
        for row in vectors.chunks_exact(dim) {
            for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                *l = l.min(x);
                *h = h.max(x);
            }
        }
        let scale = lo
            .iter()
            .zip(&hi)
            .map(|(&l, &h)| {
                if h > l {
                    ((h as f64 - l as f64) / 255.0) as f32
                } else {
                    0.0
                }
            })
            .collect();
        for l in lo.iter_mut() {
            if !l.is_finite() {
                *l = 0.0;
            }
        }
        Quantizer { offset: lo, scale }
    }

    /// Whether a quantizer read from a blob is one `train` could have made.
    pub fn check(&self, dim: usize) -> Result<(), String> {
        if self.offset.len() != dim || self.scale.len() != dim {
            return Err(format!(
                "quantizer has {} offsets and {} scales for dim {dim}",
                self.offset.len(),
                self.scale.len()
            ));
        }
        if let Some(i) = self.offset.iter().position(|o| !o.is_finite()) {
            return Err(format!("quantizer offset {i} is not finite"));
        }
        if let Some(i) = self
            .scale
            .iter()
            .position(|s| !s.is_finite() || *s < 0.0 || s.is_sign_negative())
        {
            return Err(format!(
                "quantizer scale {i} is not a finite non-negative number"
            ));
        }
        Ok(())
    }

    /// The codes of one vector; values outside the trained range clamp.
    /// Plain scalar f32 arithmetic: the same row always gives the same codes,
    /// so codes are never stored, only re-derived.
    pub fn encode(&self, row: &[f32], out: &mut [u8]) {
        for (((o, &x), &lo), &s) in out.iter_mut().zip(row).zip(&self.offset).zip(&self.scale) {
            *o = if s > 0.0 {
                // `as u8` saturates (and maps NaN to 0), so even an infinite
                // quotient of an extreme value clamps.
                ((x - lo) / s).round().clamp(0.0, 255.0) as u8
            } else {
                0
            };
        }
    }
}

/// A query folded for the int8 walk (module docs).
pub struct QueryCode {
    pub codes: Vec<i8>,
    alpha: f32,
    bias: f32,
    /// |q|^2 (l2 only).
    qn: f32,
    metric: Metric,
}

impl QueryCode {
    pub fn new(q: &[f32], quantizer: &Quantizer, metric: Metric) -> QueryCode {
        let w: Vec<f64> = q
            .iter()
            .zip(&quantizer.scale)
            .map(|(&x, &s)| x as f64 * s as f64)
            .collect();
        let max = w.iter().fold(0.0f64, |m, &x| m.max(x.abs()));
        let alpha = max / QUERY_CODE_MAX as f64;
        let codes = w
            .iter()
            .map(|&x| {
                if alpha > 0.0 {
                    (x / alpha)
                        .round()
                        .clamp(-QUERY_CODE_MAX as f64, QUERY_CODE_MAX as f64)
                        as i8
                } else {
                    0
                }
            })
            .collect();
        let bias: f64 = q
            .iter()
            .zip(&quantizer.offset)
            .map(|(&x, &o)| x as f64 * o as f64)
            .sum();
        QueryCode {
            codes,
            alpha: alpha as f32,
            bias: bias as f32,
            qn: sq_norm(q),
            metric,
        }
    }

    /// The estimated distance from the integer dot product with a slot's
    /// codes (`xn`: the slot's |x|^2, used under l2 only).
    #[inline(always)]
    pub fn distance(&self, ip: i32, xn: f32) -> f32 {
        let dot = self.bias + self.alpha * ip as f32;
        match self.metric {
            Metric::L2 => self.qn - 2.0 * dot + xn,
            Metric::Cosine | Metric::Dot => 1.0 - dot,
        }
    }
}

/// |x|^2 summed in f64: the same row gives the same bits on every machine.
pub fn sq_norm(x: &[f32]) -> f32 {
    x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() as f32
}

/// The trained quantizer and what the walk reads per slot.
#[derive(Debug, Clone)]
pub struct Codes {
    pub quantizer: Quantizer,
    /// `slots * dim` codes.
    pub codes: Arena<u8>,
    /// Per slot |x|^2 under l2; empty otherwise.
    pub norms: Vec<f32>,
    l2: bool,
}

impl Codes {
    /// Codes for every row of `vectors` under `quantizer`.
    pub fn build(quantizer: Quantizer, vectors: &[f32], dim: usize, metric: Metric) -> Codes {
        Codes::build_in(quantizer, vectors, dim, metric, Arena::new())
    }

    /// As `build`, writing the codes into `room` (cleared first): a buffer
    /// reserved before anything changed, so training cannot run out of
    /// memory half way and no second buffer of that size comes and goes.
    pub fn build_in(
        quantizer: Quantizer,
        vectors: &[f32],
        dim: usize,
        metric: Metric,
        mut room: Arena<u8>,
    ) -> Codes {
        room.clear();
        let mut c = Codes {
            quantizer,
            codes: room,
            norms: Vec::new(),
            l2: metric == Metric::L2,
        };
        let n = vectors.len() / dim.max(1);
        c.codes.reserve(n * dim);
        c.codes.advise_huge_pages();
        c.codes.resize(n * dim, 0);
        if c.l2 {
            c.norms.resize(n, 0.0);
        }
        for (slot, row) in vectors.chunks_exact(dim).enumerate() {
            c.set_row(slot, row);
        }
        c
    }

    /// Encodes `row` into `slot`, appending when `slot` is one past the end.
    pub fn set_row(&mut self, slot: usize, row: &[f32]) {
        let dim = row.len();
        if self.codes.len() < (slot + 1) * dim {
            self.codes.resize((slot + 1) * dim, 0);
        }
        self.quantizer
            .encode(row, &mut self.codes[slot * dim..(slot + 1) * dim]);
        if self.l2 {
            if self.norms.len() <= slot {
                self.norms.resize(slot + 1, 0.0);
            }
            self.norms[slot] = sq_norm(row);
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.codes.capacity()
            + self.norms.capacity() * 4
            + (self.quantizer.offset.capacity() + self.quantizer.scale.capacity()) * 4
    }
}

/// u8 x i8 dot product of equal-length slices (reads the shorter length).
pub type IpKernel = unsafe fn(&[u8], &[i8]) -> i32;

/// The reference kernel the SIMD ones must match exactly.
pub fn ip_scalar(c: &[u8], t: &[i8]) -> i32 {
    c.iter().zip(t).map(|(&a, &b)| a as i32 * b as i32).sum()
}

unsafe fn ip_scalar_unsafe(c: &[u8], t: &[i8]) -> i32 {
    ip_scalar(c, t)
}

/// Every kernel this build has, by name, with whether this CPU runs it.
pub fn ip_kernels() -> Vec<(&'static str, IpKernel, bool)> {
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, IpKernel, bool)> = vec![("scalar", ip_scalar_unsafe, true)];
    #[cfg(target_arch = "x86_64")]
    {
        v.push(("avx2", x86::ip_avx2, x86::has_avx2()));
        v.push(("avxvnni", x86::ip_avxvnni, x86::has_avxvnni()));
        v.push(("avx512vnni", x86::ip_avx512vnni, x86::has_avx512vnni()));
    }
    v
}

fn selected() -> &'static (&'static str, IpKernel) {
    static K: OnceLock<(&'static str, IpKernel)> = OnceLock::new();
    K.get_or_init(|| {
        let all = ip_kernels();
        // VECTORD_KERNEL forces a kernel (for tests and measurements) when
        // this CPU can run it; otherwise the last (widest) one it can.
        let forced = std::env::var("VECTORD_KERNEL").ok();
        let want = |name: &str| match forced.as_deref() {
            Some("avx512") => name == "avx512vnni",
            Some(f) => name == f,
            None => false,
        };
        if let Some(&(name, k, _)) = all.iter().find(|(n, _, ok)| *ok && want(n)) {
            return (name, k);
        }
        let &(name, k, _) = all.iter().rev().find(|(_, _, ok)| *ok).expect("scalar");
        (name, k)
    })
}

/// The kernel the int8 walk uses on this machine (chosen once).
pub fn ip_kernel() -> IpKernel {
    selected().1
}

/// Its name: "scalar", "avx2", "avxvnni" or "avx512vnni".
pub fn ip_kernel_name() -> &'static str {
    selected().0
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    pub fn has_avx2() -> bool {
        is_x86_feature_detected!("avx2")
    }

    pub fn has_avxvnni() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("avxvnni")
    }

    pub fn has_avx512vnni() -> bool {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
    }

    #[target_feature(enable = "avx2")]
    unsafe fn hsum256(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        _mm_cvtsi128_si32(s)
    }

    /// # Safety
    /// The CPU has AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn ip_avx2(c: &[u8], t: &[i8]) -> i32 {
        let n = c.len().min(t.len());
        let (pc, pt) = (c.as_ptr(), t.as_ptr());
        let ones = _mm256_set1_epi16(1);
        let mut acc0 = _mm256_setzero_si256();
        let mut acc1 = _mm256_setzero_si256();
        let mut i = 0;
        // Pair sums of u8 x i8 fit i16 because |t| <= 64 (module docs).
        while i + 64 <= n {
            let a0 = _mm256_loadu_si256(pc.add(i).cast());
            let b0 = _mm256_loadu_si256(pt.add(i).cast());
            let a1 = _mm256_loadu_si256(pc.add(i + 32).cast());
            let b1 = _mm256_loadu_si256(pt.add(i + 32).cast());
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_maddubs_epi16(a0, b0), ones));
            acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_maddubs_epi16(a1, b1), ones));
            i += 64;
        }
        if i + 32 <= n {
            let a = _mm256_loadu_si256(pc.add(i).cast());
            let b = _mm256_loadu_si256(pt.add(i).cast());
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
            i += 32;
        }
        let mut sum = hsum256(_mm256_add_epi32(acc0, acc1));
        while i < n {
            sum += *pc.add(i) as i32 * *pt.add(i) as i32;
            i += 1;
        }
        sum
    }

    /// # Safety
    /// The CPU has AVX2 and AVX-VNNI.
    #[target_feature(enable = "avx2,avxvnni")]
    pub unsafe fn ip_avxvnni(c: &[u8], t: &[i8]) -> i32 {
        let n = c.len().min(t.len());
        let (pc, pt) = (c.as_ptr(), t.as_ptr());
        let mut acc0 = _mm256_setzero_si256();
        let mut acc1 = _mm256_setzero_si256();
        let mut i = 0;
        while i + 64 <= n {
            let a0 = _mm256_loadu_si256(pc.add(i).cast());
            let b0 = _mm256_loadu_si256(pt.add(i).cast());
            let a1 = _mm256_loadu_si256(pc.add(i + 32).cast());
            let b1 = _mm256_loadu_si256(pt.add(i + 32).cast());
            acc0 = _mm256_dpbusd_avx_epi32(acc0, a0, b0);
            acc1 = _mm256_dpbusd_avx_epi32(acc1, a1, b1);
            i += 64;
        }
        if i + 32 <= n {
            let a = _mm256_loadu_si256(pc.add(i).cast());
            let b = _mm256_loadu_si256(pt.add(i).cast());
            acc0 = _mm256_dpbusd_avx_epi32(acc0, a, b);
            i += 32;
        }
        let mut sum = hsum256(_mm256_add_epi32(acc0, acc1));
        while i < n {
            sum += *pc.add(i) as i32 * *pt.add(i) as i32;
            i += 1;
        }
        sum
    }

    /// # Safety
    /// The CPU has AVX-512 F, BW and VNNI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn ip_avx512vnni(c: &[u8], t: &[i8]) -> i32 {
        let n = c.len().min(t.len());
        let (pc, pt) = (c.as_ptr(), t.as_ptr());
        let mut acc = _mm512_setzero_si512();
        let mut i = 0;
        while i + 64 <= n {
            let a = _mm512_loadu_si512(pc.add(i).cast());
            let b = _mm512_loadu_si512(pt.add(i).cast());
            acc = _mm512_dpbusd_epi32(acc, a, b);
            i += 64;
        }
        if i < n {
            // Masked loads read only the tail's bytes (and never fault
            // past the end); the masked-off lanes are 0.
            let mask: __mmask64 = (1u64 << (n - i)) - 1;
            let a = _mm512_maskz_loadu_epi8(mask, pc.add(i).cast());
            let b = _mm512_maskz_loadu_epi8(mask, pt.add(i).cast());
            acc = _mm512_dpbusd_epi32(acc, a, b);
        }
        _mm512_reduce_add_epi32(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LENGTHS: [usize; 10] = [0, 1, 7, 15, 31, 33, 64, 383, 384, 1025];

    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *state >> 33
    }

    /// Every kernel the CPU runs equals the scalar one exactly, on awkward
    /// lengths, random codes and the extremes (255 x +-64, where a
    /// saturating i16 pair sum would first go wrong).
    #[test]
    fn every_kernel_matches_scalar() {
        let mut st = 7u64;
        let mut ran = Vec::new();
        let top = QUERY_CODE_MAX as i8;
        for (name, k, ok) in ip_kernels() {
            if !ok {
                continue;
            }
            ran.push(name);
            for &n in &LENGTHS {
                let cases: Vec<(Vec<u8>, Vec<i8>)> = vec![
                    (
                        (0..n).map(|_| lcg(&mut st) as u8).collect(),
                        (0..n)
                            .map(|_| {
                                (lcg(&mut st) % (2 * QUERY_CODE_MAX as u64 + 1)) as i32
                                    - QUERY_CODE_MAX
                            })
                            .map(|t| t as i8)
                            .collect(),
                    ),
                    (vec![255; n], vec![top; n]),
                    (vec![255; n], vec![-top; n]),
                    (
                        vec![255; n],
                        (0..n)
                            .map(|i| if i % 2 == 0 { top } else { -top })
                            .collect(),
                    ),
                    (vec![0; n], vec![-top; n]),
                ];
                for (c, t) in cases {
                    // Unaligned starts too: the kernels load unaligned.
                    for skip in [0, 1] {
                        if skip > n {
                            continue;
                        }
                        let want = ip_scalar(&c[skip..], &t[skip..]);
                        let got = unsafe { k(&c[skip..], &t[skip..]) };
                        assert_eq!(got, want, "kernel {name}, length {}", n - skip);
                    }
                }
            }
        }
        eprintln!("kernels checked against scalar: {ran:?}");
    }

    #[test]
    fn forced_kernel_name_is_one_this_cpu_runs() {
        let name = ip_kernel_name();
        assert!(ip_kernels().iter().any(|(n, _, ok)| *n == name && *ok));
        if let Ok(f) = std::env::var("VECTORD_KERNEL") {
            let f = if f == "avx512" {
                "avx512vnni".into()
            } else {
                f
            };
            if ip_kernels().iter().any(|(n, _, ok)| *n == f && *ok) {
                assert_eq!(name, f);
            }
        }
    }

    #[test]
    fn quantizer_clamps_and_round_trips_the_range_ends() {
        let data = [0.0f32, -1.0, 10.0, 1.0, 5.0, 0.0];
        let q = Quantizer::train(&data, 2);
        assert_eq!(q.offset, vec![0.0, -1.0]);
        assert_eq!(q.scale, vec![10.0 / 255.0, 2.0 / 255.0]);
        q.check(2).unwrap();
        let mut out = [0u8; 2];
        q.encode(&[10.0, -1.0], &mut out);
        assert_eq!(out, [255, 0]);
        q.encode(&[1e30, -1e30], &mut out);
        assert_eq!(out, [255, 0]);
        q.encode(&[-f32::MAX, f32::MAX], &mut out);
        assert_eq!(out, [0, 255]);
        // A constant dimension has scale 0 and code 0.
        let c = Quantizer::train(&[3.0, 3.0], 1);
        assert_eq!(c.scale, vec![0.0]);
        let mut one = [9u8];
        c.encode(&[4.0], &mut one);
        assert_eq!(one, [0]);
        // The widest f32 range still has a finite scale.
        let w = Quantizer::train(&[-f32::MAX, f32::MAX], 1);
        assert!(w.scale[0].is_finite() && w.scale[0] > 0.0);
        let bad = Quantizer {
            offset: vec![0.0],
            scale: vec![-1.0],
        };
        assert!(bad.check(1).is_err());
        assert!(q.check(3).is_err());
    }

    #[test]
    fn estimated_distances_track_exact_ones() {
        let mut st = 3u64;
        let dim = 64;
        let rows: Vec<f32> = (0..200 * dim)
            .map(|_| (lcg(&mut st) % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        let q = Quantizer::train(&rows, dim);
        for metric in [Metric::L2, Metric::Dot] {
            let codes = Codes::build(q.clone(), &rows, dim, metric);
            let query = &rows[5 * dim..6 * dim];
            let qc = QueryCode::new(query, &q, metric);
            for slot in 0..200 {
                let row = &rows[slot * dim..(slot + 1) * dim];
                let ip = ip_scalar(&codes.codes[slot * dim..(slot + 1) * dim], &qc.codes);
                let xn = codes.norms.get(slot).copied().unwrap_or(0.0);
                let est = qc.distance(ip, xn);
                let exact = match metric {
                    Metric::L2 => super::super::distance::scalar_l2sq(query, row),
                    _ => 1.0 - super::super::distance::scalar_dot(query, row),
                };
                // Rows are in [-1, 1]^64: a wrong offset, scale or sign is off
                // by several units, rounding by a few hundredths.
                assert!(
                    (est - exact).abs() < 0.25,
                    "{metric:?} slot {slot}: estimate {est}, exact {exact}"
                );
            }
        }
    }
}
