//! Shared helpers for the integration tests: seeded data and brute force.
#![allow(dead_code)]

use vectord::Metric;

pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// `n` vectors of `dim` components around 20 cluster centres (like real
/// embeddings, unlike uniform noise).
pub fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng(seed);
    let centres: Vec<f32> = (0..20 * dim).map(|_| r.f32()).collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = r.below(20);
        for j in 0..dim {
            out.push(centres[c * dim + j] + 0.25 * r.f32());
        }
    }
    out
}

pub fn normalized(mut v: Vec<f32>, dim: usize) -> Vec<f32> {
    for row in v.chunks_exact_mut(dim) {
        let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= n);
    }
    v
}

pub fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

pub fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(|s| s.as_str()).collect()
}

pub fn exact_distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::L2 => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
        Metric::Dot => 1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
        Metric::Cosine => {
            let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
            let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
            1.0 - d / (na * nb)
        }
    }
}

/// Exact top-k row numbers of `base` for `q`, skipping rows in `skip`.
pub fn brute_force(
    metric: Metric,
    base: &[f32],
    dim: usize,
    q: &[f32],
    k: usize,
    skip: &dyn Fn(usize) -> bool,
) -> Vec<usize> {
    let mut d: Vec<(f32, usize)> = base
        .chunks_exact(dim)
        .enumerate()
        .filter(|(i, _)| !skip(*i))
        .map(|(i, v)| (exact_distance(metric, q, v), i))
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    d.truncate(k);
    d.into_iter().map(|x| x.1).collect()
}

/// `n` vectors on a random 8-dimensional linear subspace of `dim`
/// dimensions plus a little noise: low intrinsic dimension, as sentence
/// embeddings have.
pub fn embedded(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let latent = 8;
    let mut basis_rng = Rng(0xB0B);
    let basis: Vec<f32> = (0..latent * dim).map(|_| basis_rng.f32()).collect();
    let mut r = Rng(seed);
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let z: Vec<f32> = (0..latent).map(|_| r.f32()).collect();
        for j in 0..dim {
            let x: f32 = (0..latent).map(|k| z[k] * basis[k * dim + j]).sum();
            out.push(x + 0.02 * r.f32());
        }
    }
    out
}
