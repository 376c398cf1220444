//! Exact k nearest neighbours by squared Euclidean distance, ties broken by the lower index.
//!
//! Goodfellow et al. (2014), Figure 2 shows, beside generated samples, "the nearest training
//! example of the neighboring sample". For each query row this kernel returns the k reference rows
//! with the smallest ‖q − r‖², exactly:
//!
//! 1. a distance tile `‖q‖² + ‖r‖² − 2q·r` from the shared GEMM kernel screens the references. Its
//!    rounding error is bounded rigorously by `bound · (‖q‖² + ‖r‖²)`, so every reference whose
//!    lower bound exceeds the current k-th best *exact* distance (or the k-th smallest upper
//!    bound in the tile) cannot be among the k nearest and is dropped;
//! 2. every surviving candidate is re-measured in float64 from explicit differences, and only those
//!    exact values enter the top-k. Near-duplicates, where the expansion alone is badly wrong in
//!    float32, are therefore handled exactly.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::distance::{exact_sq_distance, neg2_dot_tile, row_sq_norms};
use crate::error::KernelError;
use crate::matrix::{check_pair, MatRef, Real};
use crate::parallel::{plan, resolve_threads, run_items, Cancel, WorkItem};

const QUERY_BLOCK: usize = 1024;
const TILE_BYTES: usize = 4 << 20;

/// A (distance, index) pair ordered by distance, then index: the documented tie-break.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Neighbour {
    pub dist: f64,
    pub index: usize,
}

impl Eq for Neighbour {}

impl Ord for Neighbour {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist.total_cmp(&other.dist).then(self.index.cmp(&other.index))
    }
}

impl PartialOrd for Neighbour {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The k best exact neighbours seen so far (a max-heap: the worst kept one is on top).
#[derive(Clone)]
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Neighbour>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        Self { k, heap: BinaryHeap::with_capacity(k + 1) }
    }

    /// The k-th best exact distance, or +∞ while fewer than k are known.
    #[inline]
    pub(crate) fn threshold(&self) -> f64 {
        if self.heap.len() < self.k {
            f64::INFINITY
        } else {
            self.heap.peek().map_or(f64::INFINITY, |n| n.dist)
        }
    }

    #[inline]
    pub(crate) fn offer(&mut self, cand: Neighbour) {
        if self.heap.len() < self.k {
            self.heap.push(cand);
        } else if let Some(worst) = self.heap.peek() {
            if cand < *worst {
                self.heap.pop();
                self.heap.push(cand);
            }
        }
    }

    fn into_sorted(self) -> Vec<Neighbour> {
        self.heap.into_sorted_vec()
    }
}

/// Which first pass screens the references (the answer is the same; only the speed differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// AMX when the CPU has it and the problem is large enough, else the float32 GEMM.
    Auto,
    /// Float32 (or float64) GEMM distance tiles with a relative error bound.
    Gemm,
    /// bf16 AMX tile products with a residual + accumulation bound (`knn_bf16.rs`); falls back to
    /// `Gemm` where AMX is unavailable.
    Amx,
}

impl Screen {
    /// The screen that actually runs for an m × n × d problem.
    pub fn resolve(self, m: usize, n: usize, d: usize) -> Screen {
        let amx = crate::knn_bf16::usable(d);
        match self {
            Screen::Gemm => Screen::Gemm,
            Screen::Amx if amx => Screen::Amx,
            Screen::Amx => Screen::Gemm,
            // Below ~10⁸ multiply-adds, packing and tile set-up cost more than they save; below
            // d = 32 most of each 32-deep tile step would multiply padding.
            Screen::Auto if amx && d >= 32 && (m as f64) * (n as f64) * (d as f64) >= 1e8 => Screen::Amx,
            Screen::Auto => Screen::Gemm,
        }
    }
}

/// Exact k nearest rows of `reference` for every row of `queries`.
///
/// Writes `indices[i * k + t]` and `sq_distances[i * k + t]` for the t-th nearest neighbour of
/// query row i, ascending, ties broken by the lower index. The screen is [`Screen::Auto`]; see
/// [`nearest_neighbors_screened`] to choose it.
pub fn nearest_neighbors<T: Real>(
    queries: MatRef<'_, T>,
    reference: MatRef<'_, T>,
    k: usize,
    n_threads: usize,
    cancel: &Cancel,
    indices: &mut [i64],
    sq_distances: &mut [f64],
) -> Result<(), KernelError> {
    nearest_neighbors_screened(Screen::Auto, queries, reference, k, n_threads, cancel, indices, sq_distances)
}

/// [`nearest_neighbors`] with an explicit choice of screen (the indices and distances are the same
/// for every screen; only the speed differs).
// The flat signature of `nearest_neighbors` (borrowed inputs and outputs) plus the screen.
#[allow(clippy::too_many_arguments)]
pub fn nearest_neighbors_screened<T: Real>(
    screen: Screen,
    queries: MatRef<'_, T>,
    reference: MatRef<'_, T>,
    k: usize,
    n_threads: usize,
    cancel: &Cancel,
    indices: &mut [i64],
    sq_distances: &mut [f64],
) -> Result<(), KernelError> {
    let max_abs = check_pair(&queries, "queries", &reference, "reference", n_threads)?;
    let (m, n, d) = (queries.rows(), reference.rows(), queries.cols());
    if k == 0 || k > n {
        return Err(KernelError::BadK { k, n });
    }
    for (name, len) in [("indices", indices.len()), ("sq_distances", sq_distances.len())] {
        if len != m * k {
            return Err(KernelError::BadOutput { name, len, expected: m * k });
        }
    }
    if m == 0 {
        return Ok(());
    }
    let (items, partial) = match screen.resolve(m, n, d) {
        Screen::Amx => crate::knn_bf16::screen(queries, reference, max_abs, k, n_threads, cancel)?,
        _ => screen_gemm(queries, reference, k, n_threads, cancel)?,
    };

    // Merge reference chunks of the same query rows, then write out in ascending order.
    let mut merged: Vec<Option<TopK>> = vec![None; m];
    for (w, tops) in items.iter().zip(partial) {
        for (i, top) in tops.into_iter().enumerate() {
            match &mut merged[w.q0 + i] {
                slot @ None => *slot = Some(top),
                Some(acc) => top.heap.into_iter().for_each(|nb| acc.offer(nb)),
            }
        }
    }
    for (i, top) in merged.into_iter().enumerate() {
        let sorted = top.expect("every query row is covered by the plan").into_sorted();
        for (t, nb) in sorted.iter().enumerate() {
            indices[i * k + t] = nb.index as i64;
            sq_distances[i * k + t] = nb.dist;
        }
    }
    Ok(())
}

/// Per-item top-k lists from the float32/float64 GEMM screen.
fn screen_gemm<T: Real>(
    queries: MatRef<'_, T>,
    reference: MatRef<'_, T>,
    k: usize,
    n_threads: usize,
    cancel: &Cancel,
) -> Result<(Vec<WorkItem>, Vec<Vec<TopK>>), KernelError> {
    let (m, n, d) = (queries.rows(), reference.rows(), queries.cols());
    // Rigorous error bound of a tile entry relative to ‖q‖² + ‖r‖² (see parzen.rs: Accuracy).
    let u = T::UNIT_ROUNDOFF;
    let dd = d as f64 + 4.0;
    let bound = 2.0 * dd * u / (1.0 - dd * u) + 4.0 * u;
    // Plus an absolute term for products that underflow (gradual underflow is not relative).
    let slack = 2.0 * dd * T::TINY;
    let qn = row_sq_norms(&queries);
    let rn = row_sq_norms(&reference);
    let tile_rows = (TILE_BYTES / (d * std::mem::size_of::<T>())).clamp(64, 4096);
    let items = plan(m, n, QUERY_BLOCK, tile_rows, resolve_threads(n_threads));

    let partial = run_items(&items, d, n_threads, cancel, |w: WorkItem| {
        let q = queries.row_block(w.q0, w.q1);
        let mut tile = vec![T::ZERO; (w.q1 - w.q0) * tile_rows.min(w.r1 - w.r0)];
        let mut scratch = Scratch { tops: vec![TopK::new(k); w.q1 - w.q0], upper: Vec::with_capacity(tile_rows) };
        let mut r0 = w.r0;
        while r0 < w.r1 {
            cancel.check()?;
            let r1 = (r0 + tile_rows).min(w.r1);
            let r = reference.row_block(r0, r1);
            neg2_dot_tile(&q, &r, &mut tile);
            let ctx = TileCtx {
                q,
                q_norms: &qn[w.q0..w.q1],
                tile: &tile[..q.rows() * r.rows()],
                r,
                r_norms: &rn[r0..r1],
                r0,
                bound,
                slack,
            };
            fold_tile(&ctx, &mut scratch);
            r0 = r1;
        }
        Ok(scratch.tops)
    })?;
    Ok((items, partial))
}

struct Scratch {
    tops: Vec<TopK>,
    upper: Vec<f64>,
}

/// One distance tile and what is needed to fold it into the per-row top-k.
struct TileCtx<'a, T> {
    q: MatRef<'a, T>,
    q_norms: &'a [f64],
    /// `q.rows() × r.rows()` row-major entries −2·q_i·r_j.
    tile: &'a [T],
    r: MatRef<'a, T>,
    r_norms: &'a [f64],
    /// Index of the tile's first reference row.
    r0: usize,
    bound: f64,
    slack: f64,
}

crate::simd::multiversion!(fn fold_tile<T>(ctx: &TileCtx<'_, T>, scratch: &mut Scratch) -> () => fold_tile_body);

#[inline(always)]
fn fold_tile_body<T: Real>(ctx: &TileCtx<'_, T>, scratch: &mut Scratch) {
    let nb = ctx.r.rows();
    let (bound, slack) = (ctx.bound, ctx.slack);
    for i in 0..ctx.q.rows() {
        let qn = ctx.q_norms[i];
        let row = &ctx.tile[i * nb..(i + 1) * nb];
        let top = &mut scratch.tops[i];
        // Pass 1 (vectorised, no stores): the smallest lower and upper bounds in this tile row.
        // Lower/upper bounds of ‖q − r_j‖²: v_j ∓ bound·(‖q‖² + ‖r_j‖²), v_j the tile's value.
        let (min_lower, min_upper) = min_bounds(row, ctx.r_norms, qn, bound, slack);
        let mut cut = top.threshold();
        if cut.is_infinite() && top.k > 1 && top.k < nb {
            // Until k exact distances are known, the k-th smallest upper bound of this tile is a
            // valid cut-off (it is ≥ the k-th smallest exact distance).
            scratch.upper.clear();
            scratch
                .upper
                .extend(row.iter().zip(ctx.r_norms).map(|(t, rn)| qn + rn + t.to_f64() + bound * (qn + rn) + slack));
            let (_, kth, _) = scratch.upper.select_nth_unstable_by(top.k - 1, |a, b| a.total_cmp(b));
            cut = *kth;
        } else if top.k == 1 {
            cut = cut.min(min_upper);
        }
        // Most tiles hold nothing closer than the best already found: skip them whole.
        if min_lower > cut {
            continue;
        }
        // Pass 2 (rare): re-measure exactly every reference that could still be among the k nearest.
        for (j, (t, rn)) in row.iter().zip(ctx.r_norms).enumerate() {
            let lower = qn + rn + t.to_f64() - bound * (qn + rn) - slack;
            if lower <= cut {
                let exact = exact_sq_distance(ctx.q.row(i), ctx.r.row(j));
                top.offer(Neighbour { dist: exact, index: ctx.r0 + j });
                cut = cut.min(top.threshold());
            }
        }
    }
}

/// (min_j lower_j, min_j upper_j) for one tile row, in lane-parallel form.
#[inline(always)]
fn min_bounds<T: Real>(row: &[T], r_norms: &[f64], qn: f64, bound: f64, slack: f64) -> (f64, f64) {
    let mut lo = [f64::INFINITY; 8];
    let mut up = [f64::INFINITY; 8];
    let (ct, cr) = (row.chunks_exact(8), r_norms.chunks_exact(8));
    let (rt, rr) = (ct.remainder(), cr.remainder());
    for (t, r) in ct.zip(cr) {
        for l in 0..8 {
            let v = qn + r[l] + t[l].to_f64();
            let e = bound * (qn + r[l]) + slack;
            lo[l] = if v - e < lo[l] { v - e } else { lo[l] };
            up[l] = if v + e < up[l] { v + e } else { up[l] };
        }
    }
    let (mut min_lo, mut min_up) = (f64::INFINITY, f64::INFINITY);
    for (t, r) in rt.iter().zip(rr) {
        let v = qn + r + t.to_f64();
        let e = bound * (qn + r) + slack;
        min_lo = min_lo.min(v - e);
        min_up = min_up.min(v + e);
    }
    for l in 0..8 {
        min_lo = min_lo.min(lo[l]);
        min_up = min_up.min(up[l]);
    }
    (min_lo, min_up)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    fn brute(q: &[f32], r: &[f32], d: usize, k: usize) -> Vec<(f64, usize)> {
        let (m, n) = (q.len() / d, r.len() / d);
        let mut out = Vec::new();
        for i in 0..m {
            let mut all: Vec<(f64, usize)> =
                (0..n).map(|j| (exact_sq_distance(&q[i * d..(i + 1) * d], &r[j * d..(j + 1) * d]), j)).collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            out.extend(all.into_iter().take(k));
        }
        out
    }

    /// The GEMM screen's answer, after checking that the AMX screen (where the CPU has it) gives
    /// exactly the same indices and distances.
    fn run(q: &[f32], r: &[f32], d: usize, k: usize, threads: usize) -> Vec<(f64, usize)> {
        let qm = MatRef::new("queries", q, q.len() / d, d).unwrap();
        let rm = MatRef::new("reference", r, r.len() / d, d).unwrap();
        let mut out = Vec::new();
        for screen in [Screen::Gemm, Screen::Amx] {
            let mut idx = vec![0i64; qm.rows() * k];
            let mut dist = vec![0.0; qm.rows() * k];
            nearest_neighbors_screened(screen, qm, rm, k, threads, &Cancel::new(), &mut idx, &mut dist).unwrap();
            out.push(dist.into_iter().zip(idx.into_iter().map(|i| i as usize)).collect::<Vec<_>>());
        }
        assert_eq!(out[0], out[1], "the AMX screen disagrees with the GEMM screen");
        out.swap_remove(0)
    }

    #[test]
    fn amx_screen_is_exact_on_image_like_and_continuous_data() {
        // 8-bit "pixels" (exact in bf16 after scaling), continuous values (rounding residuals), and
        // queries that duplicate references (ties at distance 0): all must match brute force.
        let mut seed = 3;
        let d = 70;
        let (m, n) = (150, 900);
        let pix: Vec<f32> = (0..(m + n) * d).map(|_| (lcg(&mut seed) * 256.0).floor() as f32 / 255.0).collect();
        let (q, r) = pix.split_at(m * d);
        for k in [1, 4] {
            assert_eq!(run(q, r, d, k, 2), brute(q, r, d, k), "pixels, k={k}");
        }
        let cont: Vec<f32> = (0..(m + n) * d).map(|_| (lcg(&mut seed) - 0.5) as f32 * 7.0).collect();
        let (q, r) = cont.split_at(m * d);
        assert_eq!(run(q, r, d, 3, 2), brute(q, r, d, 3), "continuous");
        let mut dup = r[..m * d].to_vec();
        dup[5] += 1e-6;
        assert_eq!(run(&dup, r, d, 2, 1), brute(&dup, r, d, 2), "near-duplicates");
    }

    #[test]
    fn amx_screen_handles_float64_and_tiny_magnitudes() {
        let mut seed = 9;
        let d = 33;
        let q: Vec<f64> = (0..40 * d).map(|_| lcg(&mut seed) * 1e-200).collect();
        let r: Vec<f64> = (0..500 * d).map(|_| lcg(&mut seed) * 1e-200).collect();
        let qm = MatRef::new("queries", &q, 40, d).unwrap();
        let rm = MatRef::new("reference", &r, 500, d).unwrap();
        let mut res = Vec::new();
        for screen in [Screen::Gemm, Screen::Amx] {
            let (mut idx, mut dist) = (vec![0i64; 40 * 2], vec![0.0; 40 * 2]);
            nearest_neighbors_screened(screen, qm, rm, 2, 2, &Cancel::new(), &mut idx, &mut dist).unwrap();
            res.push((idx, dist));
        }
        assert_eq!(res[0], res[1]);
    }

    #[test]
    fn matches_brute_force_across_tile_boundaries() {
        let mut seed = 11;
        let d = 7;
        for &(m, n, k) in &[(1usize, 1usize, 1usize), (3, 64, 64), (257, 65, 3), (5, 1000, 10), (300, 700, 1)] {
            let q: Vec<f32> = (0..m * d).map(|_| lcg(&mut seed) as f32).collect();
            let r: Vec<f32> = (0..n * d).map(|_| lcg(&mut seed) as f32).collect();
            assert_eq!(run(&q, &r, d, k, 2), brute(&q, &r, d, k), "m={m} n={n} k={k}");
        }
    }

    #[test]
    fn near_duplicates_are_exact_in_f32() {
        // Large norms, tiny differences: the float32 expansion alone cannot rank these.
        let d = 64;
        let base: Vec<f32> = (0..d).map(|i| 100.0 + i as f32).collect();
        let mut r = Vec::new();
        for t in 0..50 {
            let mut row = base.clone();
            row[t % d] += 1e-3 * (50 - t) as f32;
            r.extend(row);
        }
        let got = run(&base, &r, d, 5, 1);
        assert_eq!(got, brute(&base, &r, d, 5));
        assert_eq!(got[0].1, 49);
    }

    #[test]
    fn subnormal_scale_inputs_are_ranked_exactly() {
        // Values around 1e-40 are float32 subnormals: products underflow to zero in the tile, so
        // only the absolute underflow term of the bound keeps the screen honest.
        let mut seed = 5;
        let d = 9;
        let q: Vec<f32> = (0..20 * d).map(|_| (lcg(&mut seed) * 1e-40) as f32).collect();
        let r: Vec<f32> = (0..300 * d).map(|_| (lcg(&mut seed) * 1e-40) as f32).collect();
        assert_eq!(run(&q, &r, d, 3, 2), brute(&q, &r, d, 3));
    }

    #[test]
    fn magnitudes_that_would_overflow_are_refused() {
        let d = 4;
        let big = (f32::MAX / 4.0).sqrt();
        let q = vec![big; d];
        let qm = MatRef::new("queries", &q, 1, d).unwrap();
        let mut idx = vec![0i64; 1];
        let mut dist = vec![0.0; 1];
        let err = nearest_neighbors(qm, qm, 1, 1, &Cancel::new(), &mut idx, &mut dist).unwrap_err();
        assert!(matches!(err, KernelError::TooLarge { name: "queries", .. }), "{err}");
        // Just below the limit everything stays finite and exact.
        let ok = crate::matrix::magnitude_limit::<f32>(d) as f32;
        let r: Vec<f32> = vec![ok, 0.0, 0.0, 0.0, -ok, 0.0, 0.0, 0.0];
        let rm = MatRef::new("reference", &r, 2, d).unwrap();
        let mut idx = vec![0i64; 2];
        let mut dist = vec![0.0; 2];
        nearest_neighbors(rm, rm, 1, 1, &Cancel::new(), &mut idx, &mut dist).unwrap();
        assert_eq!((idx, dist), (vec![0, 1], vec![0.0, 0.0]));
    }

    #[test]
    fn ties_go_to_the_lower_index() {
        let r = vec![1.0f32, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        let q = vec![0.0f32, 0.0];
        let got = run(&q, &r, 2, 4, 1);
        assert_eq!(got.iter().map(|p| p.1).collect::<Vec<_>>(), vec![1, 3, 0, 2]);
    }

    #[test]
    fn rejects_bad_k() {
        let r = vec![0.0f64; 4];
        let rm = MatRef::new("reference", &r, 2, 2).unwrap();
        let (mut i, mut d) = (vec![0; 6], vec![0.0; 6]);
        for k in [0, 3] {
            let e = nearest_neighbors(rm, rm, k, 1, &Cancel::new(), &mut i[..2 * k.max(1)], &mut d[..2 * k.max(1)]);
            assert_eq!(e, Err(KernelError::BadK { k, n: 2 }));
        }
    }
}
