//! Streaming Gaussian Parzen-window log-likelihood, many bandwidths per pass.
//!
//! For each query row x (Goodfellow et al. 2014, §5 / Table 1; Breuleux et al. 2011):
//!
//! ```text
//! log p_σ(x) = logsumexp_j(−‖x − c_j‖² / (2σ²)) − log n − (d/2)·log(2πσ²)
//! ```
//!
//! Distances do not depend on σ, so each distance tile is computed once and feeds every σ. Per row
//! the log-sum-exp is kept as a shift `M` (the exact smallest squared distance seen so far, which
//! gives the largest exponent for every σ at once) and one float64 sum per σ of
//! `exp(−(d² − M)/(2σ²))`, rescaled whenever `M` drops — a streaming log-sum-exp with a running
//! maximum, finite for any σ.
//!
//! Two things keep it fast without changing the answer:
//! * terms whose exponent is below `−SKIP_EXPONENT` are skipped (each is < e⁻⁴⁵ ≈ 3e-20 of the
//!   largest term, so even 10⁹ of them move the result by < 1e-10 nats). After the shift, almost
//!   every term is that small for the bandwidths that fit real data.
//! * the tile's distances are trusted only where their rounding error cannot matter. For each σ,
//!   the terms nearest the smallest distance are re-measured in float64 from explicit differences,
//!   as many as it takes for the weight left on tile distances to move that σ's result by less
//!   than the tolerance (see `exact_limit`). Those are the few dominant terms, exactly where the
//!   GEMM expansion's cancellation would otherwise show.
//!
//! The value for a σ depends only on that σ, the data and the split into blocks and threads, never
//! on the other bandwidths of the call: which terms are exact, the shift and the skip window are
//! all decided per σ (or independently of σ), so `parzen_loglik(x, c, [σ])` equals the same σ out
//! of a grid bit for bit. The exception is a row whose tile would need exact distances for more
//! than a quarter of its terms at some σ of the call (near-identical centres, or a wide σ on dense
//! data): that row's tile is redone from a float64 tile for every σ, and its values then agree
//! with those of a call without that σ to float64 rounding (~1e-13 nats) rather than bit for bit.

use crate::distance::{exact_sq_distance, neg2_dot_tile, row_sq_norms};
use crate::error::{KernelError, MAX_SIGMA, MIN_SIGMA};
use crate::math::exp_nonpositive;
use crate::matrix::{check_pair, MatRef, Real};
use crate::parallel::{plan, run_items, Cancel, WorkItem};

/// Terms with exponent below −SKIP_EXPONENT (relative to the row's largest) are dropped.
pub const SKIP_EXPONENT: f64 = 45.0;

/// Query rows per block: the rows of a block are folded together, tile by tile, on one thread.
///
/// A row's value can depend (at the 1e-14 to 1e-8 nats level) on which rows share its block, so a
/// caller that shards the rows of `x` over processes and wants the one-process answer bit for bit
/// cuts the shards at multiples of this.
pub const QUERY_BLOCK: usize = 512;
/// Bytes of one reference tile (its rows: `TILE_BYTES / (d · size of T)`, clamped to 64..=4096).
const TILE_BYTES: usize = 4 << 20;

/// Per-σ constants, with σ sorted ascending.
struct Bandwidths {
    /// 1 / (2σ²), ascending σ.
    inv_two_var: Vec<f64>,
    /// Largest gap d² − M that still contributes: SKIP_EXPONENT · 2σ².
    gap_limit: Vec<f64>,
    /// Position of each sorted σ in the caller's order.
    original_index: Vec<usize>,
    /// e^(−b·BIN_WIDTH): the largest weight of a term in bin b of [`exact_limit`].
    bin_weight: [f64; BINS],
}

impl Bandwidths {
    fn new(sigmas: &[f64]) -> Result<Self, KernelError> {
        if sigmas.is_empty() {
            return Err(KernelError::NoSigma);
        }
        if let Some((index, &value)) = sigmas.iter().enumerate().find(|(_, s)| !(s.is_finite() && **s > 0.0)) {
            return Err(KernelError::BadSigma { index, value });
        }
        if let Some((index, &value)) = sigmas.iter().enumerate().find(|(_, s)| !(MIN_SIGMA..=MAX_SIGMA).contains(*s)) {
            return Err(KernelError::SigmaOutOfRange { index, value });
        }
        let mut order: Vec<usize> = (0..sigmas.len()).collect();
        order.sort_by(|&a, &b| sigmas[a].total_cmp(&sigmas[b]));
        let two_var: Vec<f64> = order.iter().map(|&i| 2.0 * sigmas[i] * sigmas[i]).collect();
        Ok(Self {
            inv_two_var: two_var.iter().map(|v| 1.0 / v).collect(),
            gap_limit: two_var.iter().map(|v| SKIP_EXPONENT * v).collect(),
            original_index: order,
            bin_weight: std::array::from_fn(|b| (-(b as f64) * BIN_WIDTH).exp()),
        })
    }

    fn len(&self) -> usize {
        self.inv_two_var.len()
    }
}

/// How much rounding error a tile entry may carry and how much the answer may absorb.
struct Accuracy {
    /// Rigorous bound factor: |tile d² − d²| ≤ bound · (‖x‖² + ‖c‖²).
    bound: f64,
    /// Error-estimate factor: |tile d² − d²| ≲ estimate · (‖x‖² + ‖c‖²). Measured on MNIST
    /// (float32, d = 784) the worst of 900,000 entries was 0.27·u·√d; 0.5·u·√d leaves margin.
    /// Used only to decide which terms need exact recomputation.
    estimate: f64,
    /// Allowed error per row and σ, in nats, from trusting tile distances (by the estimate above).
    tolerance_nats: f64,
    /// Absolute error a tile entry may carry on top of the relative terms: d + 4 underflowing
    /// products, each off by at most the type's smallest subnormal (doubled for the −2 factor).
    slack: f64,
}

impl Accuracy {
    fn for_type<T: Real>(d: usize) -> Self {
        let u = T::UNIT_ROUNDOFF;
        let is_f32 = u > 1e-10;
        Self {
            // γ_{d+2} for the dot product, doubled for ‖x‖²+‖c‖² ≥ 2|x·c|, plus the final sums.
            bound: 2.0 * (d as f64 + 4.0) * u / (1.0 - (d as f64 + 4.0) * u) + 4.0 * u,
            // 0.5·u·√d for the dot product, plus a few ulp for the final additions (small d).
            estimate: u * (0.5 * (d as f64).sqrt() + 2.0),
            // float32: ten times below the 1e-6 nats promised for [0, 1] data such as MNIST.
            tolerance_nats: if is_f32 { 1e-7 } else { 1e-11 },
            slack: 2.0 * (d as f64 + 4.0) * T::TINY,
        }
    }
}

/// Running log-sum-exp state of one query row: shift and one sum per (sorted) σ.
#[derive(Clone)]
struct RowState {
    shift: f64,
    sums: Vec<f64>,
}

impl RowState {
    fn new(s: usize) -> Self {
        Self { shift: f64::INFINITY, sums: vec![0.0; s] }
    }

    /// Move the shift down to `new_shift`, rescaling the sums it scales.
    #[inline]
    fn lower_shift(&mut self, new_shift: f64, bw: &Bandwidths) {
        if new_shift >= self.shift {
            return;
        }
        if self.shift.is_finite() {
            let drop = self.shift - new_shift;
            for (sum, inv) in self.sums.iter_mut().zip(&bw.inv_two_var) {
                let e = -drop * inv;
                *sum *= if e > -700.0 { exp_nonpositive(e) } else { 0.0 };
            }
        }
        self.shift = new_shift;
    }

    fn merge(&mut self, other: &RowState, bw: &Bandwidths) {
        if other.shift < self.shift {
            self.lower_shift(other.shift, bw);
        }
        let drop = other.shift - self.shift;
        for ((sum, o), inv) in self.sums.iter_mut().zip(&other.sums).zip(&bw.inv_two_var) {
            let e = -drop * inv;
            *sum += o * if e > -700.0 { exp_nonpositive(e) } else { 0.0 };
        }
    }
}

/// Scratch buffers of one worker, reused across tiles.
struct Scratch {
    rows: Vec<RowState>,
    approx: Vec<f64>,
    terms: Terms,
    /// Per σ (sorted), the estimated error in nats of one tile term of the current row.
    err_nats: Vec<f64>,
    centre_bound: Vec<f64>,
    /// Rows of the current tile to redo from a float64 GEMM, and the buffers for it.
    deferred: Vec<usize>,
    x64: Vec<f64>,
    c64: Vec<f64>,
    tile64: Vec<f64>,
}

/// Log-density of every row of `x` under the Parzen window on `centers`, for every σ.
///
/// `out` must hold `sigmas.len() * x.rows()` values; `out[s * m + i]` is row i under `sigmas[s]`.
pub fn parzen_loglik<T: Real>(
    x: MatRef<'_, T>,
    centers: MatRef<'_, T>,
    sigmas: &[f64],
    n_threads: usize,
    cancel: &Cancel,
    out: &mut [f64],
) -> Result<(), KernelError> {
    check_pair(&x, "x", &centers, "centers", n_threads)?;
    let bw = Bandwidths::new(sigmas)?;
    let (m, n, d) = (x.rows(), centers.rows(), x.cols());
    let expected = sigmas.len() * m;
    if out.len() != expected {
        return Err(KernelError::BadOutput { name: "out", len: out.len(), expected });
    }
    if m == 0 {
        return Ok(());
    }
    let acc = Accuracy::for_type::<T>(d);
    let xn = row_sq_norms(&x);
    let cn = row_sq_norms(&centers);
    let tile_rows = (TILE_BYTES / (d * std::mem::size_of::<T>())).clamp(64, 4096);
    let items = plan(m, n, QUERY_BLOCK, tile_rows, crate::parallel::resolve_threads(n_threads));

    let max_centre_norm = cn.iter().cloned().fold(0.0, f64::max);
    let partial = run_items(&items, d, n_threads, cancel, |w: WorkItem| {
        let mut tile = vec![T::ZERO; (w.q1 - w.q0) * tile_rows.min(w.r1 - w.r0)];
        let mut scratch = Scratch {
            rows: vec![RowState::new(bw.len()); w.q1 - w.q0],
            approx: Vec::with_capacity(tile_rows),
            terms: Terms::with_capacity(tile_rows),
            err_nats: Vec::with_capacity(bw.len()),
            centre_bound: Vec::with_capacity(tile_rows),
            deferred: Vec::new(),
            x64: Vec::new(),
            c64: Vec::new(),
            tile64: Vec::new(),
        };
        let q = x.row_block(w.q0, w.q1);
        let mut prefer_f64 = false;
        let mut r0 = w.r0;
        while r0 < w.r1 {
            cancel.check()?;
            let r1 = (r0 + tile_rows).min(w.r1);
            let c = centers.row_block(r0, r1);
            // Once most rows of this block have needed the float64 tile (near-identical centres),
            // skip the float32 screen that would only be thrown away.
            let direct_f64 = prefer_f64;
            if !direct_f64 {
                neg2_dot_tile(&q, &c, &mut tile);
            }
            let ctx = TileCtx {
                q,
                q_norms: &xn[w.q0..w.q1],
                tile: if direct_f64 { &[] } else { &tile[..q.rows() * c.rows()] },
                c,
                c_norms: &cn[r0..r1],
                max_centre_norm,
                n_centres: n,
                bw: &bw,
                acc: &acc,
            };
            if direct_f64 {
                scratch.deferred.clear();
                scratch.deferred.extend(0..q.rows());
                refold_tile(&ctx, &mut scratch);
            } else {
                fold_tile(&ctx, &mut scratch);
            }
            prefer_f64 = 2 * scratch.deferred.len() > q.rows();
            r0 = r1;
        }
        Ok(scratch.rows)
    })?;

    // Merge reference chunks of the same query block, then finish the formula.
    let mut merged: Vec<Option<RowState>> = vec![None; m];
    for (w, rows) in items.iter().zip(partial) {
        for (i, st) in rows.into_iter().enumerate() {
            match &mut merged[w.q0 + i] {
                slot @ None => *slot = Some(st),
                Some(acc_state) => acc_state.merge(&st, &bw),
            }
        }
    }
    let log_n = (n as f64).ln();
    for (i, st) in merged.into_iter().enumerate() {
        let st = st.expect("every query row is covered by the plan");
        for s in 0..bw.len() {
            let two_var = 1.0 / bw.inv_two_var[s];
            let log_norm = 0.5 * d as f64 * (std::f64::consts::PI * two_var).ln();
            let lse = -st.shift * bw.inv_two_var[s] + st.sums[s].ln();
            out[bw.original_index[s] * m + i] = lse - log_n - log_norm;
        }
    }
    Ok(())
}

/// One distance tile and everything needed to fold it into the row states.
struct TileCtx<'a, T> {
    q: MatRef<'a, T>,
    q_norms: &'a [f64],
    /// `q.rows() × c.rows()` row-major entries −2·q_i·c_j.
    tile: &'a [T],
    c: MatRef<'a, T>,
    c_norms: &'a [f64],
    max_centre_norm: f64,
    /// Number of centres of the whole call (not of this tile): each tile gets its share of the
    /// error budget ([`exact_limit`]).
    n_centres: usize,
    bw: &'a Bandwidths,
    acc: &'a Accuracy,
}

crate::simd::multiversion!(fn fold_tile<T>(ctx: &TileCtx<'_, T>, scratch: &mut Scratch) -> () => fold_tile_body);

/// Fold every row of a distance tile into its row's running state.
#[inline(always)]
fn fold_tile_body<T: Real>(ctx: &TileCtx<'_, T>, scratch: &mut Scratch) {
    let (bw, acc) = (ctx.bw, ctx.acc);
    let nb = ctx.c.rows();
    // Per-centre part of the rigorous error bound, shared by every row of the tile.
    scratch.centre_bound.clear();
    scratch.centre_bound.extend(ctx.c_norms.iter().map(|cn| acc.bound * cn));
    scratch.deferred.clear();
    // Beyond this many exact recomputations in one row, one float64 GEMM of the tile is cheaper.
    let defer_above = nb / 4 + 16;
    for i in 0..ctx.q.rows() {
        let x_norm = ctx.q_norms[i];
        let tile_row = &ctx.tile[i * nb..(i + 1) * nb];
        // Pass 1 (vectorised): approximate squared distances.
        scratch.approx.clear();
        scratch.approx.extend(tile_row.iter().zip(ctx.c_norms).map(|(t, cn)| x_norm + cn + t.to_f64()));
        term_errors(acc, bw, x_norm, ctx.max_centre_norm, &mut scratch.err_nats);
        let row = RowInput {
            approx: &scratch.approx,
            centre_bound: &scratch.centre_bound,
            row_bound: acc.bound * x_norm + acc.slack,
            err_nats: &scratch.err_nats,
            tolerance_nats: acc.tolerance_nats,
            budget_share: nb as f64 / ctx.n_centres as f64,
            xrow: ctx.q.row(i),
            c: &ctx.c,
            defer_above,
        };
        if !fold_row(&row, &mut scratch.rows[i], bw, &mut scratch.terms) {
            scratch.deferred.push(i);
        }
    }
    if !scratch.deferred.is_empty() {
        refold_in_f64_body(ctx, scratch);
    }
}

/// Per σ (sorted), the estimated error in nats that one tile distance of this row can put into an
/// exponent: the estimated tile error (with the largest centre norm) divided by 2σ².
#[inline(always)]
fn term_errors(acc: &Accuracy, bw: &Bandwidths, x_norm: f64, max_centre_norm: f64, out: &mut Vec<f64>) {
    let worst_estimate = acc.estimate * (x_norm + max_centre_norm) + acc.slack;
    out.clear();
    out.extend(bw.inv_two_var.iter().map(|inv| worst_estimate * inv));
}

/// Width, in units of the exponent (d² − shift)/(2σ²), of the bins that [`exact_limit`] weighs.
const BIN_WIDTH: f64 = 0.5;
/// Bins 0..=90 cover the exponents of the skip window, [0, 45.5); larger ones land in the last.
const BINS: usize = 91;

/// The limit below which a row's tile terms must be exact for σ number `s` (sorted): terms whose
/// lower bound is below it are re-measured, the others keep their tile distance. `lower` holds the
/// lower bounds of the terms inside the σ's window (below `level + gap_limit[s]`), `budget` the
/// weight the tile may leave on tile distances, `tol/err · nb/n` (the caller has checked
/// `err > tol`; otherwise no term needs to be exact and the limit is `level`).
///
/// Error budget: the tile error `err` of a term (in nats, [`term_errors`]) moves the log-sum-exp by
/// at most the term's share of the row's total weight times `err`. The shift's term is in the sum
/// with weight 1, so with t_j = exp(−(d_j − shift)/(2σ²)) the error from inexact terms is at most
/// `err · Σ_inexact t_j`. Each tile may leave inexact terms of total weight `tol/err · nb/n` (its
/// share of the n centres), so the whole row stays within `tol`. The tile's terms are binned by
/// their exponent (from lower bounds, so each bin's weight is bounded by e^(−bin start)), and the
/// bins are left inexact from the far end inward for as long as their weight fits the budget.
///
/// Every input is σ-local or independent of σ (level, shift, lower bounds), so a σ gets the same
/// limit whatever other bandwidths share the call.
#[inline(always)]
fn exact_limit(lower: &[f64], bw: &Bandwidths, s: usize, level: f64, shift: f64, budget: f64) -> f64 {
    let (inv, window) = (bw.inv_two_var[s], bw.gap_limit[s]);
    let mut hist = [0u32; BINS];
    for &l in lower {
        // Terms below `shift` (the exact candidates, see fold_row) fall into bin 0.
        let bin = ((l - shift) * inv * (1.0 / BIN_WIDTH)).max(0.0) as usize;
        hist[bin.min(BINS - 1)] += 1;
    }
    let mut tail = 0.0;
    let mut first_inexact = BINS;
    for b in (0..BINS).rev() {
        tail += hist[b] as f64 * bw.bin_weight[b];
        if tail > budget {
            break;
        }
        first_inexact = b;
    }
    (shift + first_inexact as f64 * BIN_WIDTH / inv).min(level + window).max(level)
}

/// One row's approximate distances to a tile of centres, and how far to trust them.
struct RowInput<'a, T> {
    approx: &'a [f64],
    centre_bound: &'a [f64],
    row_bound: f64,
    /// Per σ (sorted): the estimated error in nats of one tile term ([`term_errors`]).
    err_nats: &'a [f64],
    tolerance_nats: f64,
    /// This tile's share of the row's error budget: its number of centres over the call's.
    budget_share: f64,
    xrow: &'a [T],
    c: &'a MatRef<'a, T>,
    /// Give up (return false, state untouched) above this many exact terms.
    defer_above: usize,
}

/// A row's kept terms of one tile, and the buffer each σ's exponents are gathered in.
struct Terms {
    /// Tile value of the squared distance.
    approx: Vec<f64>,
    /// Rigorous lower bound of the true squared distance.
    lower: Vec<f64>,
    /// The float64 exact squared distance where it was re-measured, else the tile value.
    exact: Vec<f64>,
    /// Tile column of each term.
    index: Vec<u32>,
    /// Gaps above the shift of the terms inside one σ's window.
    gaps: Vec<f64>,
    /// Lower bounds of the terms inside one σ's window, while choosing the exact terms.
    window_lower: Vec<f64>,
    /// Per σ (sorted): terms whose lower bound is below this are exact ([`exact_limit`]).
    limits: Vec<f64>,
}

impl Terms {
    fn with_capacity(n: usize) -> Self {
        let v = || Vec::with_capacity(n);
        Self {
            approx: v(),
            lower: v(),
            exact: v(),
            index: Vec::with_capacity(n),
            gaps: v(),
            window_lower: v(),
            limits: Vec::new(),
        }
    }

    /// Keep only the terms whose lower bound is below `limit`, in order, without branches.
    #[inline(always)]
    fn keep_lower_below(&mut self, limit: f64) {
        let mut kept = 0;
        for r in 0..self.lower.len() {
            let l = self.lower[r];
            self.lower[kept] = l;
            self.approx[kept] = self.approx[r];
            self.exact[kept] = self.exact[r];
            kept += (l < limit) as usize;
        }
        self.lower.truncate(kept);
        self.approx.truncate(kept);
        self.exact.truncate(kept);
    }
}

/// Fold one row of approximate distances into `state`. Returns false, leaving the state
/// untouched, when more than `defer_above` terms would need exact recomputation.
///
/// Everything that decides a σ's value is computed from that σ alone: the level (an upper bound of
/// the smallest distance) and the shift (the exact smallest distance) do not depend on σ, and each
/// σ takes its window from its own `gap_limit` and its exact terms from [`exact_limit`].
#[inline(always)]
fn fold_row<T: Real>(row: &RowInput<'_, T>, state: &mut RowState, bw: &Bandwidths, t: &mut Terms) -> bool {
    let nb = row.approx.len();
    let widest = *bw.gap_limit.last().expect("at least one σ");
    // A rigorous upper bound of the smallest true distance in this tile; together with the row's
    // current shift it bounds the row's largest term, which every kept term is measured against.
    let tile_upper = crate::simd::min_sum_f64(row.approx, row.centre_bound);
    let level = state.shift.min(tile_upper + row.row_bound);

    // Pass 2 (branch-free): keep the terms whose lower bound can reach the widest window; at
    // large σ most terms do, so a data-dependent branch would mispredict.
    let cut = level + widest;
    t.approx.resize(nb, 0.0);
    t.lower.resize(nb, 0.0);
    t.index.resize(nb, 0);
    let mut kept = 0;
    for (j, (&v, &cb)) in row.approx.iter().zip(row.centre_bound).enumerate() {
        let lower = (v - cb) - row.row_bound;
        t.approx[kept] = v;
        t.lower[kept] = lower;
        t.index[kept] = j as u32;
        kept += (lower < cut) as usize;
    }
    t.approx.truncate(kept);
    t.lower.truncate(kept);
    t.index.truncate(kept);
    if kept == 0 {
        return true;
    }
    // Pass 3: the terms that could lie below `level` decide the shift, the exact smallest distance
    // so far; re-measure them (one or two, except for near-identical centres).
    let candidates = t.lower.iter().filter(|&&l| l < level).count();
    if candidates > row.defer_above {
        return false;
    }
    t.exact.clear();
    t.exact.extend_from_slice(&t.approx);
    let mut tile_min = f64::INFINITY;
    for ((e, &l), &j) in t.exact.iter_mut().zip(&t.lower).zip(&t.index) {
        if l < level {
            *e = exact_sq_distance(row.xrow, row.c.row(j as usize));
            tile_min = tile_min.min(*e);
        }
    }
    let shift = state.shift.min(tile_min);
    // Pass 4: per σ, how far out the terms must be exact (widest σ first, narrowing the window).
    t.limits.clear();
    t.limits.resize(bw.len(), level);
    t.window_lower.clear();
    t.window_lower.extend_from_slice(&t.lower);
    let mut widest_limit = level;
    for s in (0..bw.len()).rev() {
        if row.err_nats[s] <= row.tolerance_nats {
            // Even a term carrying all the weight moves the result by less than the tolerance.
            continue;
        }
        let window = bw.gap_limit[s];
        keep_below(&mut t.window_lower, level + window);
        let budget = row.tolerance_nats / row.err_nats[s] * row.budget_share;
        let limit = exact_limit(&t.window_lower, bw, s, level, shift, budget);
        t.limits[s] = limit;
        widest_limit = widest_limit.max(limit);
    }
    // Pass 5: re-measure the terms some σ needs exact (few, predictable).
    if widest_limit > level {
        let count = t.lower.iter().filter(|&&l| l < widest_limit).count();
        if count > row.defer_above {
            return false;
        }
        for ((e, &l), &j) in t.exact.iter_mut().zip(&t.lower).zip(&t.index) {
            if l >= level && l < widest_limit {
                *e = exact_sq_distance(row.xrow, row.c.row(j as usize));
            }
        }
    }
    state.lower_shift(shift, bw);
    // Widest σ first; each narrower σ keeps only the terms inside its (smaller) window.
    let mut last_cut = cut;
    for s in (0..bw.len()).rev() {
        let window = bw.gap_limit[s];
        let cut_s = level + window;
        if cut_s < last_cut {
            t.keep_lower_below(cut_s);
            last_cut = cut_s;
        }
        if t.lower.is_empty() {
            break;
        }
        let exact_s = t.limits[s];
        t.gaps.resize(t.lower.len(), 0.0);
        let mut n_in = 0;
        for ((&l, &a), &e) in t.lower.iter().zip(&t.approx).zip(&t.exact) {
            let g = if l < exact_s { e } else { a } - shift;
            t.gaps[n_in] = g;
            n_in += (g < window) as usize;
        }
        t.gaps.truncate(n_in);
        state.sums[s] += sum_exp_neg(&t.gaps, bw.inv_two_var[s]);
    }
    true
}

crate::simd::multiversion!(fn refold_tile<T>(ctx: &TileCtx<'_, T>, scratch: &mut Scratch) -> () => refold_in_f64_body);

/// Redo the deferred rows of a tile from a float64 GEMM: rows where so many centres sit at almost
/// the same distance (e.g. samples of a mode-collapsed generator) that recomputing each term
/// exactly would cost far more than one float64 tile, whose rounding error is negligible.
#[inline(always)]
fn refold_in_f64_body<T: Real>(ctx: &TileCtx<'_, T>, scratch: &mut Scratch) {
    let (nb, d, nd) = (ctx.c.rows(), ctx.c.cols(), scratch.deferred.len());
    scratch.c64.clear();
    scratch.c64.extend(ctx.c.as_slice().iter().map(|v| v.to_f64()));
    scratch.x64.clear();
    for &i in &scratch.deferred {
        scratch.x64.extend(ctx.q.row(i).iter().map(|v| v.to_f64()));
    }
    scratch.tile64.resize(nd * nb, 0.0);
    let xm = MatRef::new("x", &scratch.x64, nd, d).expect("deferred rows are consistent");
    let cm = MatRef::new("centers", &scratch.c64, nb, d).expect("tile is consistent");
    neg2_dot_tile(&xm, &cm, &mut scratch.tile64);
    // The float64 tile of float32 inputs cannot underflow where float32 did not, but keep the
    // float32 slack: the inputs' own subnormals are what it covers.
    let acc64 =
        Accuracy { tolerance_nats: ctx.acc.tolerance_nats, slack: ctx.acc.slack, ..Accuracy::for_type::<f64>(d) };
    scratch.centre_bound.clear();
    scratch.centre_bound.extend(ctx.c_norms.iter().map(|cn| acc64.bound * cn));
    for (r, &i) in scratch.deferred.iter().enumerate() {
        let x_norm = ctx.q_norms[i];
        scratch.approx.clear();
        scratch
            .approx
            .extend(scratch.tile64[r * nb..(r + 1) * nb].iter().zip(ctx.c_norms).map(|(t, cn)| x_norm + cn + t));
        term_errors(&acc64, ctx.bw, x_norm, ctx.max_centre_norm, &mut scratch.err_nats);
        let row = RowInput {
            approx: &scratch.approx,
            centre_bound: &scratch.centre_bound,
            row_bound: acc64.bound * x_norm + acc64.slack,
            err_nats: &scratch.err_nats,
            tolerance_nats: acc64.tolerance_nats,
            budget_share: nb as f64 / ctx.n_centres as f64,
            xrow: ctx.q.row(i),
            c: &ctx.c,
            defer_above: usize::MAX,
        };
        let done = fold_row(&row, &mut scratch.rows[i], ctx.bw, &mut scratch.terms);
        debug_assert!(done);
    }
}

/// Keep only the values below `limit`, in order, without data-dependent branches.
#[inline(always)]
fn keep_below(values: &mut Vec<f64>, limit: f64) {
    let mut kept = 0;
    for r in 0..values.len() {
        let v = values[r];
        values[kept] = v;
        kept += (v < limit) as usize;
    }
    values.truncate(kept);
}

/// Σ exp(−g·inv) over `gaps` (all ≥ 0 and within the skip window), in lane-parallel form.
#[inline(always)]
fn sum_exp_neg(gaps: &[f64], inv: f64) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = gaps.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            lanes[l] += exp_nonpositive(-c[l] * inv);
        }
    }
    let mut s: f64 = rest.iter().map(|&g| exp_nonpositive(-g * inv)).sum();
    for l in lanes {
        s += l;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Direct float64 evaluation of the formula, term by term.
    fn reference(x: &[f64], c: &[f64], d: usize, sigma: f64) -> Vec<f64> {
        let (m, n) = (x.len() / d, c.len() / d);
        (0..m)
            .map(|i| {
                let e: Vec<f64> = (0..n)
                    .map(|j| -exact_sq_distance(&x[i * d..(i + 1) * d], &c[j * d..(j + 1) * d]) / (2.0 * sigma * sigma))
                    .collect();
                let mx = e.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = mx + e.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
                lse - (n as f64).ln() - 0.5 * d as f64 * (2.0 * std::f64::consts::PI * sigma * sigma).ln()
            })
            .collect()
    }

    fn run(x: &[f64], c: &[f64], d: usize, sigmas: &[f64], threads: usize) -> Vec<f64> {
        let xm = MatRef::new("x", x, x.len() / d, d).unwrap();
        let cm = MatRef::new("centers", c, c.len() / d, d).unwrap();
        let mut out = vec![0.0; sigmas.len() * xm.rows()];
        parzen_loglik(xm, cm, sigmas, threads, &Cancel::new(), &mut out).unwrap();
        out
    }

    #[test]
    fn matches_direct_formula_at_tile_boundaries() {
        let mut seed = 3;
        let d = 5;
        // Sizes just below / at / above the query block, and a reference set spanning tiles.
        for &m in &[1usize, 255, 256, 257] {
            for &n in &[1usize, 63, 64, 65, 1000] {
                let x: Vec<f64> = (0..m * d).map(|_| lcg(&mut seed)).collect();
                let c: Vec<f64> = (0..n * d).map(|_| lcg(&mut seed)).collect();
                let sig = [0.05, 0.3, 2.0];
                let got = run(&x, &c, d, &sig, 2);
                for (s, &sigma) in sig.iter().enumerate() {
                    let want = reference(&x, &c, d, sigma);
                    for i in 0..m {
                        let (g, w) = (got[s * m + i], want[i]);
                        assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "m={m} n={n} σ={sigma}: {g} vs {w}");
                    }
                }
            }
        }
    }

    /// The paper's bandwidth grid, 10 values from 0.1 to 1.
    fn paper_grid() -> Vec<f64> {
        (0..10).map(|i| 10f64.powf(-1.0 + i as f64 / 9.0)).collect()
    }

    /// Each σ of `grid` alone and in the grid, against the direct float64 formula; returns the
    /// (alone, in-the-grid) values, σ-major.
    fn alone_and_in_grid(x: &[f32], c: &[f32], d: usize, grid: &[f64], tol: f64) -> (Vec<f64>, Vec<f64>) {
        let (m, n) = (x.len() / d, c.len() / d);
        let (x64, c64): (Vec<f64>, Vec<f64>) =
            (x.iter().map(|&v| v as f64).collect(), c.iter().map(|&v| v as f64).collect());
        let xm = MatRef::new("x", x, m, d).unwrap();
        let cm = MatRef::new("centers", c, n, d).unwrap();
        let mut all = vec![0.0; grid.len() * m];
        parzen_loglik(xm, cm, grid, 1, &Cancel::new(), &mut all).unwrap();
        let mut alone = vec![0.0; grid.len() * m];
        for (s, &sigma) in grid.iter().enumerate() {
            parzen_loglik(xm, cm, &[sigma], 1, &Cancel::new(), &mut alone[s * m..(s + 1) * m]).unwrap();
            let want = reference(&x64, &c64, d, sigma);
            for i in 0..m {
                let (a, g) = (alone[s * m + i], all[s * m + i]);
                assert!((a - want[i]).abs() <= tol, "σ={sigma} row {i}: alone {a} vs reference {}", want[i]);
                assert!((g - want[i]).abs() <= tol, "σ={sigma} row {i}: in the grid {g} vs reference {}", want[i]);
            }
        }
        (alone, all)
    }

    #[test]
    fn one_sigma_alone_equals_the_same_sigma_in_a_grid() {
        // Image-like float32 data (d = 784, 80% zeros, the rest in (0, 1]). At σ ≥ 0.36 the
        // float32 tile error of the dominant term, ~1e-4 in d², is worth ~1e-4 nats: a σ must get
        // the exact terms it needs whether it is asked alone or beside smaller σ, and then the
        // same value bit for bit.
        let mut seed = 11;
        let d = 784;
        // Ten "digit" prototypes (20% of pixels on) with noise, clipped to [0, 1]: clustered like
        // MNIST, so no row needs exact distances to a quarter of a tile (the float64 tile path).
        let protos: Vec<f64> = (0..10 * d).map(|_| if lcg(&mut seed) < 0.2 { 1.0 } else { 0.0 }).collect();
        let image = |seed: &mut u64| -> Vec<f32> {
            let p = (lcg(seed) * 10.0) as usize;
            (0..d).map(|k| (protos[p * d + k] + 0.5 * (lcg(seed) - 0.5)).clamp(0.0, 1.0) as f32).collect()
        };
        let x: Vec<f32> = (0..24).flat_map(|_| image(&mut seed)).collect();
        let c: Vec<f32> = (0..300).flat_map(|_| image(&mut seed)).collect();
        let (alone, all) = alone_and_in_grid(&x, &c, d, &paper_grid(), 1e-6);
        for (k, (a, g)) in alone.iter().zip(&all).enumerate() {
            assert_eq!(a.to_bits(), g.to_bits(), "σ #{} row {}: alone {a} vs in the grid {g}", k / 24, k % 24);
        }
    }

    #[test]
    fn dense_windows_stay_accurate_alone_and_in_a_grid() {
        // Uniform [0, 1) data at d = 784: at σ = 1 nearly every centre is inside the window and
        // most terms need exact distances (rows take the float64 tile). Alone and in the grid the
        // values agree with the reference, so with each other, to 1e-6 nats.
        let mut seed = 12;
        let d = 784;
        let x: Vec<f32> = (0..16 * d).map(|_| lcg(&mut seed) as f32).collect();
        let c: Vec<f32> = (0..300 * d).map(|_| lcg(&mut seed) as f32).collect();
        alone_and_in_grid(&x, &c, d, &paper_grid(), 1e-6);
    }

    #[test]
    fn collapsed_centres_take_the_float64_tile_path_and_stay_accurate() {
        // 3,000 near-identical centres (a mode-collapsed generator): every term needs precision.
        let mut seed = 5;
        let d = 64;
        let base: Vec<f64> = (0..d).map(|_| lcg(&mut seed)).collect();
        let c: Vec<f32> = (0..3000)
            .flat_map(|_| base.iter().map(|b| (b + 1e-4 * lcg(&mut seed)) as f32).collect::<Vec<_>>())
            .collect();
        let x: Vec<f32> = (0..40 * d).map(|_| lcg(&mut seed) as f32).collect();
        let xm = MatRef::new("x", &x, 40, d).unwrap();
        let cm = MatRef::new("centers", &c, 3000, d).unwrap();
        let sig = [0.01, 0.1];
        let mut out = vec![0.0; 80];
        parzen_loglik(xm, cm, &sig, 1, &Cancel::new(), &mut out).unwrap();
        let (x64, c64): (Vec<f64>, Vec<f64>) =
            (x.iter().map(|&v| v as f64).collect(), c.iter().map(|&v| v as f64).collect());
        for (s, &sigma) in sig.iter().enumerate() {
            let want = reference(&x64, &c64, d, sigma);
            for i in 0..40 {
                assert!(
                    (out[s * 40 + i] - want[i]).abs() < 1e-6 * want[i].abs().max(1.0),
                    "σ={sigma}: {} vs {}",
                    out[s * 40 + i],
                    want[i]
                );
            }
        }
    }

    #[test]
    fn tiny_sigma_narrower_than_the_float32_error_stays_finite() {
        // σ = 1e-4 on data of scale 0.1 around −0.5: the skip window (45·2σ²) is far narrower
        // than the float32 tile error, so the shift must come from exact distances.
        let mut seed = 1028;
        let d = 18;
        let x: Vec<f32> = (0..17 * d).map(|_| (-0.5 + 0.1 * (lcg(&mut seed) - 0.5)) as f32).collect();
        let c: Vec<f32> = (0..24 * d).map(|_| (-0.5 + 0.1 * (lcg(&mut seed) - 0.5)) as f32).collect();
        let xm = MatRef::new("x", &x, 17, d).unwrap();
        let cm = MatRef::new("centers", &c, 24, d).unwrap();
        let mut out = vec![0.0; 17];
        parzen_loglik(xm, cm, &[1.035e-4], 1, &Cancel::new(), &mut out).unwrap();
        let (x64, c64): (Vec<f64>, Vec<f64>) =
            (x.iter().map(|&v| v as f64).collect(), c.iter().map(|&v| v as f64).collect());
        let want = reference(&x64, &c64, d, 1.035e-4);
        for i in 0..17 {
            assert!((out[i] - want[i]).abs() <= 1e-9 * want[i].abs(), "row {i}: {} vs {}", out[i], want[i]);
        }
    }

    #[test]
    fn subnormal_scale_float32_inputs_match_the_reference() {
        // float32 values near 1e-41 underflow in the tile; σ at the same scale makes every term
        // matter, so the underflow slack must send them to exact recomputation.
        let mut seed = 9;
        let d = 5;
        let x: Vec<f32> = (0..12 * d).map(|_| (lcg(&mut seed) * 1e-41) as f32).collect();
        let c: Vec<f32> = (0..40 * d).map(|_| (lcg(&mut seed) * 1e-41) as f32).collect();
        let (x64, c64): (Vec<f64>, Vec<f64>) =
            (x.iter().map(|&v| v as f64).collect(), c.iter().map(|&v| v as f64).collect());
        let sigma = 3e-42;
        let xm = MatRef::new("x", &x, 12, d).unwrap();
        let cm = MatRef::new("centers", &c, 40, d).unwrap();
        let mut out = vec![0.0; 12];
        parzen_loglik(xm, cm, &[sigma], 1, &Cancel::new(), &mut out).unwrap();
        let want = reference(&x64, &c64, d, sigma);
        for (g, w) in out.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-3, "{g} vs {w}");
        }
        // float32 inputs at 1e-20 with σ = 1e-19: products (1e-40) underflow in float32.
        let x: Vec<f32> = x64.iter().map(|v| (v * 1e21) as f32).collect();
        let c: Vec<f32> = c64.iter().map(|v| (v * 1e21) as f32).collect();
        let xm = MatRef::new("x", &x, 12, d).unwrap();
        let cm = MatRef::new("centers", &c, 40, d).unwrap();
        parzen_loglik(xm, cm, &[3e-21], 1, &Cancel::new(), &mut out).unwrap();
        let want = reference(
            &x.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            &c.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            d,
            3e-21,
        );
        for (g, w) in out.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-3, "{g} vs {w}");
        }
    }

    #[test]
    fn sigma_and_magnitude_ranges_are_enforced() {
        let x = [0.5f64, 0.25];
        let xm = MatRef::new("x", &x, 1, 2).unwrap();
        let mut out = vec![0.0; 1];
        for bad in [1e-300, 1e300] {
            let err = parzen_loglik(xm, xm, &[bad], 1, &Cancel::new(), &mut out).unwrap_err();
            assert!(matches!(err, KernelError::SigmaOutOfRange { index: 0, .. }), "{err}");
        }
        // At both ends of the range the answer is finite and equals the one-centre formula.
        for sigma in [MIN_SIGMA, MAX_SIGMA] {
            parzen_loglik(xm, xm, &[sigma], 1, &Cancel::new(), &mut out).unwrap();
            let want = -(2.0f64 * std::f64::consts::PI).ln() - 2.0 * sigma.ln();
            assert!((out[0] - want).abs() <= 1e-12 * want.abs(), "σ={sigma}: {} vs {want}", out[0]);
        }
        let big = [1e200f64, 0.0];
        let bm = MatRef::new("centers", &big, 1, 2).unwrap();
        let err = parzen_loglik(xm, bm, &[1.0], 1, &Cancel::new(), &mut out).unwrap_err();
        assert!(matches!(err, KernelError::TooLarge { name: "centers", .. }), "{err}");
    }

    #[test]
    fn one_centre_is_the_gaussian_log_density() {
        let (x, c) = ([1.0, 2.0], [0.5, 2.5]);
        let sigma: f64 = 0.7;
        let got = run(&x, &c, 2, &[sigma], 1)[0];
        let want = -0.5 / (2.0 * sigma * sigma) - (2.0 * std::f64::consts::PI * sigma * sigma).ln();
        assert!((got - want).abs() < 1e-12);
    }

    #[test]
    fn tiny_sigma_stays_finite_and_exact_on_f32() {
        // x equal to a centre: the dominant term has distance 0, recomputed exactly.
        let x: Vec<f32> = vec![0.25, 0.5, 0.75];
        let c: Vec<f32> = vec![0.25, 0.5, 0.75, 0.3, 0.5, 0.75];
        let xm = MatRef::new("x", &x, 1, 3).unwrap();
        let cm = MatRef::new("centers", &c, 2, 3).unwrap();
        let mut out = vec![0.0; 1];
        parzen_loglik(xm, cm, &[1e-3], 1, &Cancel::new(), &mut out).unwrap();
        let want = -(2f64).ln() - 1.5 * (2.0 * std::f64::consts::PI * 1e-6).ln();
        assert!(out[0].is_finite() && (out[0] - want).abs() < 1e-9, "{} vs {want}", out[0]);
    }

    #[test]
    fn rejects_bad_sigma_and_shapes() {
        let x = [0.0f64; 4];
        let xm = MatRef::new("x", &x, 2, 2).unwrap();
        let mut out = vec![0.0; 2];
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = parzen_loglik(xm, xm, &[bad], 1, &Cancel::new(), &mut out).unwrap_err();
            assert!(matches!(e, KernelError::BadSigma { .. }));
        }
        assert_eq!(parzen_loglik(xm, xm, &[], 1, &Cancel::new(), &mut out).unwrap_err(), KernelError::NoSigma);
        let c = [0.0f64; 3];
        let cm = MatRef::new("centers", &c, 1, 3).unwrap();
        assert!(matches!(
            parzen_loglik(xm, cm, &[1.0], 1, &Cancel::new(), &mut out),
            Err(KernelError::DimMismatch { .. })
        ));
        let empty = MatRef::new("centers", &c[..0], 0, 2).unwrap();
        assert!(matches!(
            parzen_loglik(xm, empty, &[1.0], 1, &Cancel::new(), &mut out),
            Err(KernelError::NoRows { .. })
        ));
        let nan = [0.0, f64::NAN];
        let nm = MatRef::new("x", &nan, 1, 2).unwrap();
        let mut o1 = vec![0.0; 1];
        assert!(matches!(
            parzen_loglik(nm, xm, &[1.0], 1, &Cancel::new(), &mut o1),
            Err(KernelError::NonFinite { row: 0, col: 1, .. })
        ));
    }

    #[test]
    fn cancelled_run_stops() {
        let x = vec![0.5f64; 600 * 8];
        let xm = MatRef::new("x", &x, 600, 8).unwrap();
        let cancel = Cancel::new();
        cancel.cancel();
        let mut out = vec![0.0; 600];
        assert_eq!(parzen_loglik(xm, xm, &[1.0], 2, &cancel, &mut out), Err(KernelError::Interrupted));
    }
}
