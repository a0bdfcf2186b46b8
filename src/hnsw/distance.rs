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
/// One query against four vectors: the query is read once per block and the
/// four sums are independent chains, so the FMAs overlap and four vector
/// streams are in flight at once. Each result is bit-identical to the
/// single kernel of the same set (same accumulation order), so a distance
/// does not depend on whether it was computed alone or in a batch.
type Kernel4 = unsafe fn(&[f32], [&[f32]; 4]) -> [f32; 4];

#[derive(Clone, Copy)]
struct Kernels {
    dot: Kernel,
    l2sq: Kernel,
    dot4: Kernel4,
    l2sq4: Kernel4,
    name: &'static str,
}

fn kernels() -> &'static Kernels {
    static K: OnceLock<Kernels> = OnceLock::new();
    K.get_or_init(select)
}

const SCALAR: Kernels = Kernels {
    dot: scalar_dot_unsafe,
    l2sq: scalar_l2sq_unsafe,
    dot4: scalar_dot4,
    l2sq4: scalar_l2sq4,
    name: "scalar",
};

#[cfg(target_arch = "x86_64")]
const AVX2: Kernels = Kernels {
    dot: x86::dot_avx2,
    l2sq: x86::l2sq_avx2,
    dot4: x86::dot4_avx2,
    l2sq4: x86::l2sq4_avx2,
    name: "avx2+fma",
};

#[cfg(target_arch = "x86_64")]
const AVX512: Kernels = Kernels {
    dot: x86::dot_avx512,
    l2sq: x86::l2sq_avx512,
    dot4: x86::dot4_avx512,
    l2sq4: x86::l2sq4_avx512,
    name: "avx512f",
};

#[cfg(target_arch = "aarch64")]
const NEON: Kernels = Kernels {
    dot: neon::dot_neon,
    l2sq: neon::l2sq_neon,
    dot4: neon::dot4_neon,
    l2sq4: neon::l2sq4_neon,
    name: "neon",
};

/// Every kernel set this CPU can run, best guess first.
fn supported() -> Vec<Kernels> {
    #[allow(unused_mut)]
    let mut out = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            out.push(AVX512);
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            out.push(AVX2);
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            out.push(NEON);
        }
    }
    out.push(SCALAR);
    out
}

/// The environment variable that forces a kernel set by name ("scalar",
/// "avx2+fma" or "avx2", "avx512f" or "avx512", "neon"), for tests and for
/// comparing kernels. A set this CPU cannot run is ignored (with the
/// automatic choice made instead), so a forced name never crashes a process.
const KERNEL_ENV: &str = "VECTORD_KERNEL";

fn select() -> Kernels {
    select_from(&supported(), std::env::var(KERNEL_ENV).ok().as_deref())
}

fn select_from(all: &[Kernels], forced: Option<&str>) -> Kernels {
    if let Some(want) = forced {
        let want = match want {
            "avx2" => "avx2+fma",
            "avx512" => "avx512f",
            w => w,
        };
        if let Some(k) = all.iter().find(|k| k.name == want) {
            return *k;
        }
    }
    choose_measured(all)
}

/// AVX-512 is used when the CPU has it *and* it is measured faster than AVX2
/// here: on some parts it lowers the clock or splits into two 256-bit halves
/// and gains nothing at 128..384 dimensions. The measurement times the batched
/// kernels (what the search loop runs) on cache-resident vectors of the two
/// usual sizes, interleaved, best of several rounds; AVX-512 must win by 5%,
/// so a near tie (where noise could flip the choice between processes) keeps
/// AVX2. About two milliseconds, once per process.
fn choose_measured(all: &[Kernels]) -> Kernels {
    #[cfg(target_arch = "x86_64")]
    if let [first, second, ..] = all {
        if first.name == AVX512.name && second.name == AVX2.name {
            let (t512, t2) = time_pair(first, second);
            return if t512 < 0.95 * t2 { *first } else { *second };
        }
    }
    all[0]
}

/// Best-of-rounds seconds of (a, b) over the same batched work.
#[cfg(target_arch = "x86_64")]
fn time_pair(a: &Kernels, b: &Kernels) -> (f64, f64) {
    use std::time::Instant;
    const ROWS: usize = 32;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<f32> = (0..ROWS * 384)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let run = |k: &Kernels| -> f64 {
        let t = Instant::now();
        let mut sink = 0f32;
        for dim in [128usize, 384] {
            let q = &data[..dim];
            for r in (0..ROWS - 4).step_by(4) {
                let v = |i: usize| &data[(r + i) * dim..(r + i + 1) * dim];
                // SAFETY: both sets come from `supported()`.
                let d = unsafe { (k.l2sq4)(q, [v(0), v(1), v(2), v(3)]) };
                let e = unsafe { (k.dot4)(q, [v(1), v(2), v(3), v(0)]) };
                sink += d[0] + d[3] + e[1] + e[2];
            }
        }
        std::hint::black_box(sink);
        t.elapsed().as_secs_f64()
    };
    // Untimed first: the core powers up its 512-bit units (and may raise
    // its clock) only after it starts running them, and a process that
    // measured during that ramp picked AVX2 while its children, measuring
    // later, picked AVX-512.
    for _ in 0..20 {
        run(a);
        run(b);
    }
    let (mut ta, mut tb) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..40 {
        ta = ta.min(run(a));
        tb = tb.min(run(b));
    }
    (ta, tb)
}

/// The name of the kernel set in use ("avx2+fma", "avx512f", "neon" or
/// "scalar"): forced by `VECTORD_KERNEL`, else measured (see `choose_measured`).
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
    kernel4: Kernel4,
    one_minus: bool,
}

impl DistFn {
    pub fn new(metric: Metric) -> DistFn {
        let k = kernels();
        match metric {
            Metric::L2 => DistFn {
                kernel: k.l2sq,
                kernel4: k.l2sq4,
                one_minus: false,
            },
            Metric::Cosine | Metric::Dot => DistFn {
                kernel: k.dot,
                kernel4: k.dot4,
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

    /// `eval` of `a` against four vectors at once, bit for bit the same
    /// results. Every `b` must have `a`'s length.
    #[inline(always)]
    pub fn eval4(&self, a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
        debug_assert!(b.iter().all(|v| v.len() == a.len()));
        // SAFETY: as in `dot`; the batched kernels read min(a, b[i]) lengths.
        let v = unsafe { (self.kernel4)(a, b) };
        if self.one_minus {
            v.map(|x| 1.0 - x)
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

unsafe fn scalar_dot4(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    b.map(|v| scalar_dot(a, v))
}

unsafe fn scalar_l2sq4(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    b.map(|v| scalar_l2sq(a, v))
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

    // Batched AVX2: two vectors per pass, each with the single kernel's four
    // accumulators in the single kernel's order (bit-identical results).
    // Eight chains already hide the FMA latency; four vectors per pass would
    // need sixteen accumulators, all of AVX2's registers, and spill. The
    // query block is loaded once for both vectors.
    macro_rules! avx2_kernel4 {
        ($name:ident, $step:ident, $term:expr) => {
            #[target_feature(enable = "avx2,fma")]
            pub unsafe fn $name(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
                #[target_feature(enable = "avx2,fma")]
                #[inline]
                unsafe fn pair(a: &[f32], b0: &[f32], b1: &[f32]) -> (f32, f32) {
                    let n = a.len().min(b0.len()).min(b1.len());
                    let (pa, p0, p1) = (a.as_ptr(), b0.as_ptr(), b1.as_ptr());
                    let mut acc0 = [_mm256_setzero_ps(); 4];
                    let mut acc1 = [_mm256_setzero_ps(); 4];
                    let mut i = 0;
                    while i + 32 <= n {
                        for k in 0..4 {
                            let j = i + 8 * k;
                            let x = _mm256_loadu_ps(pa.add(j));
                            acc0[k] = $step(x, _mm256_loadu_ps(p0.add(j)), acc0[k]);
                            acc1[k] = $step(x, _mm256_loadu_ps(p1.add(j)), acc1[k]);
                        }
                        i += 32;
                    }
                    while i + 8 <= n {
                        let x = _mm256_loadu_ps(pa.add(i));
                        acc0[0] = $step(x, _mm256_loadu_ps(p0.add(i)), acc0[0]);
                        acc1[0] = $step(x, _mm256_loadu_ps(p1.add(i)), acc1[0]);
                        i += 8;
                    }
                    let mut s0 = hsum256(_mm256_add_ps(
                        _mm256_add_ps(acc0[0], acc0[1]),
                        _mm256_add_ps(acc0[2], acc0[3]),
                    ));
                    let mut s1 = hsum256(_mm256_add_ps(
                        _mm256_add_ps(acc1[0], acc1[1]),
                        _mm256_add_ps(acc1[2], acc1[3]),
                    ));
                    let term = $term;
                    while i < n {
                        s0 += term(*pa.add(i), *p0.add(i));
                        s1 += term(*pa.add(i), *p1.add(i));
                        i += 1;
                    }
                    (s0, s1)
                }
                let (d0, d1) = pair(a, b[0], b[1]);
                let (d2, d3) = pair(a, b[2], b[3]);
                [d0, d1, d2, d3]
            }
        };
    }

    avx2_kernel4!(dot4_avx2, dot_step256, |x: f32, y: f32| x * y);
    avx2_kernel4!(l2sq4_avx2, l2sq_step256, |x: f32, y: f32| (x - y) * (x - y));

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

    // Batched AVX-512: one accumulator per vector, as the single kernel has,
    // so the four results are bit-identical to it; the four chains are
    // independent and the query block is loaded once for all four.
    macro_rules! avx512_kernel4 {
        ($name:ident, $step:ident) => {
            #[target_feature(enable = "avx512f")]
            pub unsafe fn $name(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
                let n = b.iter().fold(a.len(), |n, v| n.min(v.len()));
                let pa = a.as_ptr();
                let pb = b.map(|v| v.as_ptr());
                let mut acc = [_mm512_setzero_ps(); 4];
                let mut i = 0;
                while i + 16 <= n {
                    let x = _mm512_loadu_ps(pa.add(i));
                    for k in 0..4 {
                        acc[k] = $step(x, _mm512_loadu_ps(pb[k].add(i)), acc[k]);
                    }
                    i += 16;
                }
                if i < n {
                    let mask: __mmask16 = (1u32 << (n - i)) as u16 - 1;
                    let x = _mm512_maskz_loadu_ps(mask, pa.add(i));
                    for k in 0..4 {
                        acc[k] = $step(x, _mm512_maskz_loadu_ps(mask, pb[k].add(i)), acc[k]);
                    }
                }
                [
                    _mm512_reduce_add_ps(acc[0]),
                    _mm512_reduce_add_ps(acc[1]),
                    _mm512_reduce_add_ps(acc[2]),
                    _mm512_reduce_add_ps(acc[3]),
                ]
            }
        };
    }

    avx512_kernel4!(dot4_avx512, dot_step512);
    avx512_kernel4!(l2sq4_avx512, l2sq_step512);
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

    pub unsafe fn dot4_neon(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
        b.map(|v| dot_neon(a, v))
    }

    pub unsafe fn l2sq4_neon(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
        b.map(|v| l2sq_neon(a, v))
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

    /// The batched kernels give, bit for bit, what the single kernel of
    /// their set gives (so a distance never depends on the batching), on
    /// awkward lengths and on extreme values: huge components whose squares
    /// overflow to inf, subnormals, signed zeros and cancelling sums.
    #[test]
    fn batched_kernels_are_bit_identical_to_single_ones() {
        let mut seed = 11u64;
        let extremes = [
            1e19f32, -1e19, 3e38, -3e38, 1e-39, -1e-45, 0.0, -0.0, 1.0, -1.0, 65504.0,
        ];
        for k in supported() {
            for &n in &[1usize, 7, 15, 31, 33, 383, 384, 1025] {
                for round in 0..12 {
                    let mut val = |i: usize| {
                        let r = lcg(&mut seed);
                        if round % 3 == 2 || (round % 3 == 1 && i.is_multiple_of(5)) {
                            extremes[(r.to_bits() as usize) % extremes.len()]
                        } else {
                            r * 10f32.powi(round % 4)
                        }
                    };
                    let q: Vec<f32> = (0..n).map(&mut val).collect();
                    let vs: Vec<Vec<f32>> =
                        (0..4).map(|_| (0..n).map(&mut val).collect()).collect();
                    let b = [&vs[0][..], &vs[1][..], &vs[2][..], &vs[3][..]];
                    let (d4, l4) = unsafe { ((k.dot4)(&q, b), (k.l2sq4)(&q, b)) };
                    for i in 0..4 {
                        let (d, l) = unsafe { ((k.dot)(&q, b[i]), (k.l2sq)(&q, b[i])) };
                        let same =
                            |x: f32, y: f32| x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan();
                        assert!(
                            same(d4[i], d),
                            "{} dot4 n={n} #{i}: {} vs {d}",
                            k.name,
                            d4[i]
                        );
                        assert!(
                            same(l4[i], l),
                            "{} l2sq4 n={n} #{i}: {} vs {l}",
                            k.name,
                            l4[i]
                        );
                    }
                }
            }
        }
        // Through DistFn, with the metric's 1 - x applied to each.
        let a = [0.5f32, 0.25, -1.0];
        for m in [Metric::L2, Metric::Cosine] {
            let f = DistFn::new(m);
            assert_eq!(f.eval4(&a, [&a; 4]), [f.eval(&a, &a); 4]);
        }
    }

    /// `VECTORD_KERNEL` names pick that set (short names too); a name this
    /// CPU cannot run, or an unknown one, falls back to the automatic choice,
    /// which is always a set the CPU runs, and never scalar when SIMD exists.
    #[test]
    fn forced_kernel_names_and_automatic_choice() {
        let all = supported();
        assert_eq!(select_from(&all, Some("scalar")).name, "scalar");
        for k in &all {
            assert_eq!(select_from(&all, Some(k.name)).name, k.name);
        }
        let auto = select_from(&all, None).name;
        assert!(all.iter().any(|k| k.name == auto));
        assert_eq!(select_from(&all, Some("no-such-kernel")).name, auto);
        if all.len() > 1 {
            assert_ne!(auto, "scalar");
        }
        #[cfg(target_arch = "x86_64")]
        {
            if all.iter().any(|k| k.name == "avx2+fma") {
                assert_eq!(select_from(&all, Some("avx2")).name, "avx2+fma");
            }
            if all.iter().any(|k| k.name == "avx512f") {
                assert_eq!(select_from(&all, Some("avx512")).name, "avx512f");
            } else {
                assert_eq!(select_from(&all, Some("avx512")).name, auto);
            }
            // Without AVX-512 in the list, nothing is measured: the first wins.
            assert_eq!(choose_measured(&[AVX2, SCALAR]).name, "avx2+fma");
        }
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
