//! Distance kernels: a dot product and a squared Euclidean distance, each with a
//! scalar reference and SIMD versions chosen once at run time.
//!
//! Cosine and dot share the dot-product kernel (cosine vectors are stored
//! normalised), so only two kernels exist. The SIMD versions accumulate in a
//! different order than the scalar one, so results agree to rounding, not bit
//! for bit; a given machine always picks the same kernel, which is what makes
//! search results reproducible (and LHV1 round trips exact) on that machine.

use std::sync::OnceLock;

/// How distances are measured. Smaller is nearer for all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// 1 - cos(a, b); vectors are normalised on the way in.
    Cosine,
    /// Squared Euclidean distance, as hnswlib and FAISS return it.
    L2,
    /// 1 - a·b.
    Dot,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::Dot => "dot",
        }
    }

    pub fn parse(s: &str) -> Option<Metric> {
        match s {
            "cosine" => Some(Metric::Cosine),
            "l2" => Some(Metric::L2),
            "dot" => Some(Metric::Dot),
            _ => None,
        }
    }

    /// The C ABI value (`VECTORD_METRIC_*`).
    pub fn code(self) -> u32 {
        match self {
            Metric::Cosine => 0,
            Metric::L2 => 1,
            Metric::Dot => 2,
        }
    }

    pub fn from_code(code: u32) -> Option<Metric> {
        match code {
            0 => Some(Metric::Cosine),
            1 => Some(Metric::L2),
            2 => Some(Metric::Dot),
            _ => None,
        }
    }
}

type Kernel = unsafe fn(&[f32], &[f32]) -> f32;

#[derive(Clone, Copy)]
struct Kernels {
    dot: Kernel,
    l2sq: Kernel,
    name: &'static str,
}

fn kernels() -> &'static Kernels {
    static K: OnceLock<Kernels> = OnceLock::new();
    K.get_or_init(select)
}

fn select() -> Kernels {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") && avx512_wanted() {
            return Kernels {
                dot: x86::dot_avx512,
                l2sq: x86::l2sq_avx512,
                name: "avx512f",
            };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Kernels {
                dot: x86::dot_avx2,
                l2sq: x86::l2sq_avx2,
                name: "avx2+fma",
            };
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            return Kernels {
                dot: neon::dot_neon,
                l2sq: neon::l2sq_neon,
                name: "neon",
            };
        }
    }
    Kernels {
        dot: scalar_dot_unsafe,
        l2sq: scalar_l2sq_unsafe,
        name: "scalar",
    }
}

/// AVX-512 is opt-in (`VECTORD_AVX512=1`): on the machines measured so far it
/// was no faster than AVX2 for 128..384 dimensions and it lowers the clock on
/// some parts. The choice is made once per process.
#[cfg(target_arch = "x86_64")]
fn avx512_wanted() -> bool {
    std::env::var("VECTORD_AVX512")
        .map(|v| v == "1")
        .unwrap_or(false)
}

/// The name of the kernel set in use ("avx2+fma", "avx512f", "neon" or "scalar").
pub fn kernel_name() -> &'static str {
    kernels().name
}

/// Dot product of two equal-length slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    // SAFETY: the kernel was selected after checking that the CPU supports it,
    // and every kernel reads min(a.len(), b.len()) elements only.
    unsafe { (kernels().dot)(a, b) }
}

/// Squared Euclidean distance of two equal-length slices.
#[inline]
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    // SAFETY: as in `dot`.
    unsafe { (kernels().l2sq)(a, b) }
}

/// A distance function for one metric, resolved once (no per-call dispatch
/// on the metric or the CPU).
#[derive(Clone, Copy)]
pub struct DistFn {
    kernel: Kernel,
    one_minus: bool,
}

impl DistFn {
    pub fn new(metric: Metric) -> DistFn {
        let k = kernels();
        match metric {
            Metric::L2 => DistFn {
                kernel: k.l2sq,
                one_minus: false,
            },
            Metric::Cosine | Metric::Dot => DistFn {
                kernel: k.dot,
                one_minus: true,
            },
        }
    }

    #[inline(always)]
    pub fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as in `dot`.
        let v = unsafe { (self.kernel)(a, b) };
        if self.one_minus {
            1.0 - v
        } else {
            v
        }
    }
}

/// Writes the unit-length version of `src` into `dst` (cosine); returns
/// whether that worked (false for a zero or non-finite `src`). The norm is
/// summed and applied in f64: the same input always gives the same bits,
/// whatever SIMD the machine has (a stored vector and the same vector as a
/// query are normalised identically), and no finite f32 vector can underflow
/// it (1e-39 components) or overflow it (1e38 components) there, as an f32
/// norm would (giving inf or NaN components).
pub fn normalize(src: &[f32], dst: &mut [f32]) -> bool {
    let norm = src.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    let mut ok = norm > 0.0 && norm.is_finite();
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = (x as f64 / norm) as f32;
        ok &= d.is_finite();
    }
    ok
}

/// The scalar reference kernels; the SIMD ones are tested against these.
pub fn scalar_dot(a: &[f32], b: &[f32]) -> f32 {
    scalar_sum(a, b, |x, y| x * y)
}

pub fn scalar_l2sq(a: &[f32], b: &[f32]) -> f32 {
    scalar_sum(a, b, |x, y| (x - y) * (x - y))
}

/// The sum of `term` over the component pairs, in four partial sums so the
/// compiler can vectorise a little and the rounding is closer to the SIMD
/// kernels'.
#[inline(always)]
fn scalar_sum(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    let n = a.len().min(b.len());
    let mut s = [0f32; 4];
    let chunks = n / 4;
    for i in 0..chunks {
        for j in 0..4 {
            s[j] += term(a[i * 4 + j], b[i * 4 + j]);
        }
    }
    let mut tail = 0f32;
    for i in chunks * 4..n {
        tail += term(a[i], b[i]);
    }
    (s[0] + s[1]) + (s[2] + s[3]) + tail
}

unsafe fn scalar_dot_unsafe(a: &[f32], b: &[f32]) -> f32 {
    scalar_dot(a, b)
}

unsafe fn scalar_l2sq_unsafe(a: &[f32], b: &[f32]) -> f32 {
    scalar_l2sq(a, b)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn hsum256(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
        _mm_cvtss_f32(s)
    }

    // The AVX2 kernels keep four independent accumulators (32 floats per
    // step): with one or two, every FMA waits for the previous one's result
    // (4-5 cycles of latency), and at 128..384 dimensions that chain, not
    // the loads, bounds the kernel once the vectors are in cache.
    //
    // Each metric is one step (how a block of lanes adds to an accumulator)
    // and one scalar term for the tail; one macro per instruction set writes
    // the loop around them. The steps share their kernel's target features,
    // so they are inlined into it.

    macro_rules! steps {
        ($features:literal, $v:ty, $fma:ident, $sub:ident, $dot:ident, $l2sq:ident) => {
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn $dot(x: $v, y: $v, acc: $v) -> $v {
                $fma(x, y, acc)
            }

            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn $l2sq(x: $v, y: $v, acc: $v) -> $v {
                let d = $sub(x, y);
                $fma(d, d, acc)
            }
        };
    }

    steps!(
        "avx2,fma",
        __m256,
        _mm256_fmadd_ps,
        _mm256_sub_ps,
        dot_step256,
        l2sq_step256
    );
    steps!(
        "avx512f",
        __m512,
        _mm512_fmadd_ps,
        _mm512_sub_ps,
        dot_step512,
        l2sq_step512
    );

    macro_rules! avx2_kernel {
        ($name:ident, $step:ident, $term:expr) => {
            #[target_feature(enable = "avx2,fma")]
            pub unsafe fn $name(a: &[f32], b: &[f32]) -> f32 {
                let n = a.len().min(b.len());
                let (pa, pb) = (a.as_ptr(), b.as_ptr());
                let mut acc = [_mm256_setzero_ps(); 4];
                let mut i = 0;
                while i + 32 <= n {
                    // A loop of four: unrolled, the accumulators stay in registers.
                    for (k, sum) in acc.iter_mut().enumerate() {
                        let j = i + 8 * k;
                        *sum = $step(_mm256_loadu_ps(pa.add(j)), _mm256_loadu_ps(pb.add(j)), *sum);
                    }
                    i += 32;
                }
                while i + 8 <= n {
                    acc[0] = $step(
                        _mm256_loadu_ps(pa.add(i)),
                        _mm256_loadu_ps(pb.add(i)),
                        acc[0],
                    );
                    i += 8;
                }
                let mut s = hsum256(_mm256_add_ps(
                    _mm256_add_ps(acc[0], acc[1]),
                    _mm256_add_ps(acc[2], acc[3]),
                ));
                let term = $term;
                while i < n {
                    s += term(*pa.add(i), *pb.add(i));
                    i += 1;
                }
                s
            }
        };
    }

    avx2_kernel!(dot_avx2, dot_step256, |x, y| x * y);
    avx2_kernel!(l2sq_avx2, l2sq_step256, |x, y| (x - y) * (x - y));

    // The tail is one masked block: its missing lanes load as zeros, which
    // add nothing under either step.
    macro_rules! avx512_kernel {
        ($name:ident, $step:ident) => {
            #[target_feature(enable = "avx512f")]
            pub unsafe fn $name(a: &[f32], b: &[f32]) -> f32 {
                let n = a.len().min(b.len());
                let (pa, pb) = (a.as_ptr(), b.as_ptr());
                let mut acc = _mm512_setzero_ps();
                let mut i = 0;
                while i + 16 <= n {
                    acc = $step(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc);
                    i += 16;
                }
                if i < n {
                    let mask: __mmask16 = (1u32 << (n - i)) as u16 - 1;
                    let x = _mm512_maskz_loadu_ps(mask, pa.add(i));
                    let y = _mm512_maskz_loadu_ps(mask, pb.add(i));
                    acc = $step(x, y, acc);
                }
                _mm512_reduce_add_ps(acc)
            }
        };
    }

    avx512_kernel!(dot_avx512, dot_step512);
    avx512_kernel!(l2sq_avx512, l2sq_step512);
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use std::arch::aarch64::*;

    // As for AVX2: one step per metric, one scalar term for the tail, and
    // one loop (two accumulators, 8 floats a step) written around them.

    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn dot_step(x: float32x4_t, y: float32x4_t, acc: float32x4_t) -> float32x4_t {
        vfmaq_f32(acc, x, y)
    }

    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn l2sq_step(x: float32x4_t, y: float32x4_t, acc: float32x4_t) -> float32x4_t {
        let d = vsubq_f32(x, y);
        vfmaq_f32(acc, d, d)
    }

    macro_rules! neon_kernel {
        ($name:ident, $step:ident, $term:expr) => {
            #[target_feature(enable = "neon")]
            pub unsafe fn $name(a: &[f32], b: &[f32]) -> f32 {
                let n = a.len().min(b.len());
                let (pa, pb) = (a.as_ptr(), b.as_ptr());
                let mut acc0 = vdupq_n_f32(0.0);
                let mut acc1 = vdupq_n_f32(0.0);
                let mut i = 0;
                while i + 8 <= n {
                    acc0 = $step(vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)), acc0);
                    acc1 = $step(vld1q_f32(pa.add(i + 4)), vld1q_f32(pb.add(i + 4)), acc1);
                    i += 8;
                }
                let mut s = vaddvq_f32(vaddq_f32(acc0, acc1));
                let term = $term;
                while i < n {
                    s += term(*pa.add(i), *pb.add(i));
                    i += 1;
                }
                s
            }
        };
    }

    neon_kernel!(dot_neon, dot_step, |x: f32, y: f32| x * y);
    neon_kernel!(l2sq_neon, l2sq_step, |x: f32, y: f32| (x - y) * (x - y));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn close(a: f32, b: f32, scale: f32) -> bool {
        (a - b).abs() <= 1e-5 * scale.max(1.0)
    }

    /// Every kernel this CPU can run, against the scalar reference, on
    /// awkward lengths (tails of every size, one lane, many blocks).
    #[test]
    fn every_kernel_matches_scalar() {
        let mut sets: Vec<(&str, Kernel, Kernel)> =
            vec![("scalar", scalar_dot_unsafe, scalar_l2sq_unsafe)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                sets.push(("avx2", x86::dot_avx2, x86::l2sq_avx2));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                sets.push(("avx512", x86::dot_avx512, x86::l2sq_avx512));
            }
        }
        #[cfg(target_arch = "aarch64")]
        sets.push(("neon", neon::dot_neon, neon::l2sq_neon));
        let mut seed = 7u64;
        for &n in &[
            1usize, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 127, 383, 384, 1025,
        ] {
            for _ in 0..20 {
                let a: Vec<f32> = (0..n).map(|_| lcg(&mut seed)).collect();
                let b: Vec<f32> = (0..n).map(|_| lcg(&mut seed)).collect();
                let rd = scalar_dot(&a, &b);
                let rl = scalar_l2sq(&a, &b);
                let mag: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
                for (name, d, l) in &sets {
                    let (gd, gl) = unsafe { (d(&a, &b), l(&a, &b)) };
                    assert!(close(gd, rd, mag), "{name} dot n={n}: {gd} vs {rd}");
                    assert!(close(gl, rl, rl), "{name} l2sq n={n}: {gl} vs {rl}");
                }
            }
        }
        // The dispatched entry points use one of the sets above.
        let a = [1.0f32, 2.0, 3.0];
        assert_eq!(l2sq(&a, &a), 0.0);
        assert!(close(dot(&a, &a), 14.0, 14.0));
        assert!(!kernel_name().is_empty());
    }

    #[test]
    fn normalize_survives_tiny_and_huge_components() {
        let mut out = [0f32; 4];
        for v in [
            [1e-39f32, 0.0, 0.0, 0.0],
            [f32::from_bits(1), 0.0, 0.0, -f32::from_bits(1)],
            [3e38, -3e38, 3e38, 1.0],
            [1e-38, 1e38, 0.0, 0.0],
        ] {
            assert!(normalize(&v, &mut out), "{v:?}");
            let norm: f64 = out.iter().map(|&x| x as f64 * x as f64).sum();
            assert!((norm - 1.0).abs() < 1e-6, "{v:?} -> {out:?}");
        }
        assert!(!normalize(&[0.0; 4], &mut out));
        assert!(!normalize(&[f32::NAN, 1.0, 0.0, 0.0], &mut out));
    }

    #[test]
    fn metric_codes_round_trip() {
        for m in [Metric::Cosine, Metric::L2, Metric::Dot] {
            assert_eq!(Metric::from_code(m.code()), Some(m));
            assert_eq!(Metric::parse(m.as_str()), Some(m));
        }
        assert_eq!(Metric::from_code(3), None);
        assert_eq!(Metric::parse("L2"), None);
    }
}
