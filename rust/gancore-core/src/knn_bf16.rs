//! The AMX screen of the exact nearest-neighbour search: bf16 tile products bound every distance,
//! float64 re-measures decide.
//!
//! With rows scaled by s and rounded to bf16 (x̃, residual ‖s·x − x̃‖ ≤ E_x, see `bf16.rs`) and the
//! AMX dot product C ≈ q̃·r̃ accumulated in float32, the screen's estimate of the scaled squared
//! distance is `D̂ = ‖q̃‖² + ‖r̃‖² − 2C`. Two facts bound the true distance a = ‖s·q − s·r‖:
//!
//! * float32 accumulation of d exact products, in any order and with flush-to-zero:
//!   `|C − q̃·r̃| ≤ γ·Σ|q̃_k r̃_k| + 3d·2⁻¹²⁶ ≤ γ·(‖q̃‖² + ‖r̃‖²)/2 + 3d·2⁻¹²⁶`, γ = 2du/(1 − 2du),
//!   u = 2⁻²⁴ (twice the textbook constant, so it holds even for truncating adders); hence
//!   `‖q̃ − r̃‖² ≥ D̂ − err`, err = γ(‖q̃‖² + ‖r̃‖²) + 6d·2⁻¹²⁶;
//! * the triangle inequality: `a ≥ ‖q̃ − r̃‖ − E_q − E_r`.
//!
//! So a reference can be among the k nearest (‖q − r‖² ≤ cut, the k-th best exact distance so
//! far) only if `D̂ − err ≤ (s·√cut + E_q + E_r)²`. Every reference passing that test is re-measured
//! exactly in float64 and offered to the top-k; the answer is therefore identical to the float32
//! screen's (`knn.rs`) and to brute force. On 8-bit image data E ≈ 0 and err is about 10⁻⁵ of the
//! norms, so almost nothing but the true neighbours passes.
//!
//! Layout: the reference tile (refs × d, bf16 row-major) is the A operand and a block of queries
//! (VNNI panels) the B operand, so the result tile is refs × queries and the test runs across query
//! lanes, each lane with its own cut.

use crate::amx::{LineAligned, Tiles, K_STEP, TILE_ROWS, TILE_WORDS};
use crate::bf16::{choose_scale, pack_rows, pack_vnni, row_meta, RowMeta, RowPack};
use crate::distance::exact_sq_distance;
use crate::error::KernelError;
use crate::knn::{Neighbour, TopK};
use crate::matrix::{MatRef, Real};
use crate::parallel::{plan, run_items, Cancel, WorkItem};

/// Bytes of packed queries per work item (bounds memory per thread).
const QUERY_ITEM_BYTES: usize = 16 << 20;
/// Bytes of packed queries per inner block (kept in L2 while a reference tile streams past).
const QUERY_L2_BYTES: usize = 512 << 10;
/// Reference rows per tile (a multiple of 32).
const REF_TILE: usize = 128;

/// Whether the AMX screen can run on a problem of this shape (the caller decides if it should).
pub(crate) fn usable(d: usize) -> bool {
    // 2·d·u < 1/2 keeps γ meaningful; beyond, the float32 screen is used.
    d <= 1 << 21 && crate::amx::available()
}

/// Per-item top-k lists from the AMX screen, in the item order of the returned plan.
pub(crate) fn screen<T: Real>(
    queries: MatRef<'_, T>,
    reference: MatRef<'_, T>,
    max_abs: f64,
    k: usize,
    n_threads: usize,
    cancel: &Cancel,
) -> Result<(Vec<WorkItem>, Vec<Vec<TopK>>), KernelError> {
    let (m, n, d) = (queries.rows(), reference.rows(), queries.cols());
    let ks = d.div_ceil(K_STEP);
    let dp = ks * K_STEP;

    let samples = [queries.row_block(0, m.min(256)), reference.row_block(0, n.min(256))];
    let scale = choose_scale(max_abs, &samples);
    let qmeta = row_meta_parallel(&queries, scale, n_threads, cancel)?;
    let rmeta = row_meta_parallel(&reference, scale, n_threads, cancel)?;

    let u = 2f64.powi(-24);
    let two_du = 2.0 * dp as f64 * u;
    // + 1e-12 covers the float64 rounding in the norms and in the test itself.
    let gamma = two_du / (1.0 - two_du) + 1e-12;
    let abs_err = 6.0 * dp as f64 * 2f64.powi(-126);
    let r_lhs: Vec<f64> = rmeta.sq_norm.iter().map(|n2| (1.0 - gamma) * n2).collect();
    let r_half: Vec<f64> = r_lhs.iter().zip(&rmeta.residual).map(|(l, e)| 0.5 * (l - e * e)).collect();
    let shared = Shared {
        r_half32: r_half.iter().map(|&v| v as f32).collect(),
        r_res32: rmeta.residual.iter().map(|&v| v as f32).collect(),
        half_max: r_half.iter().fold(0.0f64, |a, v| a.max(v.abs())),
        res_max: rmeta.residual.iter().fold(0.0f64, |a, v| a.max(*v)),
        queries,
        reference,
        k,
        scale,
        ks,
        q_lhs: qmeta.sq_norm.iter().map(|n2| (1.0 - gamma) * n2 - abs_err).collect(),
        q_res: qmeta.residual,
        remeasure_rel: 2.0 * (d as f64 + 4.0) * f64::EPSILON,
        remeasure_abs: 2.0 * (d as f64 + 4.0) * <f64 as Real>::TINY,
        r_lhs,
        r_res: rmeta.residual,
    };

    let query_item = (QUERY_ITEM_BYTES / (2 * dp) / 32 * 32).clamp(32, 1 << 16);
    let items = plan(m, n, query_item, REF_TILE, crate::parallel::resolve_threads(n_threads));
    let tops = run_items(&items, d, n_threads, cancel, |w| screen_item(&shared, w, cancel))?;
    Ok((items, tops))
}

/// [`row_meta`] of all rows, computed on the kernel's threads.
fn row_meta_parallel<T: Real>(
    mat: &MatRef<'_, T>,
    scale: f64,
    n_threads: usize,
    cancel: &Cancel,
) -> Result<RowMeta, KernelError> {
    const ROWS: usize = 2048;
    let items: Vec<WorkItem> = (0..mat.rows())
        .step_by(ROWS)
        .map(|q0| WorkItem { q0, q1: (q0 + ROWS).min(mat.rows()), r0: 0, r1: 1 })
        .collect();
    let parts = run_items(&items, mat.cols(), n_threads, cancel, |w| Ok(row_meta(&mat.row_block(w.q0, w.q1), scale)))?;
    let mut all = RowMeta { sq_norm: Vec::with_capacity(mat.rows()), residual: Vec::with_capacity(mat.rows()) };
    for p in parts {
        all.sq_norm.extend(p.sq_norm);
        all.residual.extend(p.residual);
    }
    Ok(all)
}

/// What every work item reads.
struct Shared<'a, T> {
    queries: MatRef<'a, T>,
    reference: MatRef<'a, T>,
    k: usize,
    scale: f64,
    ks: usize,
    /// Per query: (1 − γ)‖q̃‖² − abs_err; per reference: (1 − γ)‖r̃‖²; so that
    /// D̂ − err = q_lhs + r_lhs − 2C.
    q_lhs: Vec<f64>,
    q_res: Vec<f64>,
    /// Rounding (relative) and underflow (absolute) error of a float64 re-measure.
    remeasure_rel: f64,
    remeasure_abs: f64,
    r_lhs: Vec<f64>,
    r_res: Vec<f64>,
    /// The float32 prefilter's per-reference terms: (r_lhs − E_r²)/2 and E_r, with the largest
    /// magnitudes of each (for its rounding margin).
    r_half32: Vec<f32>,
    r_res32: Vec<f32>,
    half_max: f64,
    res_max: f64,
}

fn screen_item<T: Real>(sh: &Shared<'_, T>, w: WorkItem, cancel: &Cancel) -> Result<Vec<TopK>, KernelError> {
    let tiles = Tiles::configure().ok_or(KernelError::Interrupted)?;
    let (ks, dp) = (sh.ks, sh.ks * K_STEP);
    let mq = w.q1 - w.q0;
    let mq_pad = mq.div_ceil(32) * 32;
    let mut qpack = LineAligned::<u32>::zeroed(mq_pad / TILE_ROWS * ks * TILE_WORDS);
    pack_vnni(&RowPack { src: sh.queries.row_block(w.q0, w.q1), scale: sh.scale, ld: dp }, &mut qpack);

    // Padded query lanes get lhs = +∞ and reach = 0, so they never pass the test.
    let mut lanes = Lanes {
        lhs: (0..mq_pad).map(|i| if i < mq { sh.q_lhs[w.q0 + i] } else { f64::INFINITY }).collect(),
        res: (0..mq).map(|i| sh.q_res[w.q0 + i]).collect(),
        reach: (0..mq_pad).map(|i| if i < mq { f64::INFINITY } else { 0.0 }).collect(),
        tops: vec![TopK::new(sh.k); mq],
        a32: vec![0.0; mq_pad],
        neg_reach32: vec![0.0; mq_pad],
    };
    for i in 0..mq_pad {
        lanes.refresh_prefilter(i, sh);
    }

    let ql = (QUERY_L2_BYTES / (2 * dp) / 32 * 32).clamp(32, 1024).min(mq_pad);
    let mut abuf = LineAligned::<u16>::zeroed(REF_TILE * dp);
    let mut cbuf = LineAligned::<f32>::zeroed(REF_TILE * ql);
    let mut r0 = w.r0;
    while r0 < w.r1 {
        cancel.check()?;
        let r1 = (r0 + REF_TILE).min(w.r1);
        let nr_pad = (r1 - r0).div_ceil(32) * 32;
        // Rows beyond r1 − r0 keep stale values from the previous tile; their results are ignored.
        pack_rows(&RowPack { src: sh.reference.row_block(r0, r1), scale: sh.scale, ld: dp }, &mut abuf);
        let mut q0 = 0;
        while q0 < mq_pad {
            let qn = ql.min(mq_pad - q0);
            for qp in (0..qn).step_by(32) {
                let b = &qpack[(q0 + qp) / TILE_ROWS * ks * TILE_WORDS..];
                for rb in (0..nr_pad).step_by(32) {
                    tiles.product_32x32(&abuf[rb * dp..], dp, b, ks, &mut cbuf[rb * ql + qp..], ql);
                }
            }
            let tile = ResultTile { c: &cbuf, ld: ql, q0, qn, r0, nr: r1 - r0, sh, w };
            fold_tile(&tile, &mut lanes);
            q0 += qn;
        }
        r0 = r1;
    }
    drop(tiles);
    Ok(lanes.tops)
}

/// Per query lane of one work item.
struct Lanes {
    /// D̂ − err = lhs[i] + r_lhs[j] − 2C.
    lhs: Vec<f64>,
    /// E_q.
    res: Vec<f64>,
    /// s·√cut + E_q (∞ while fewer than k neighbours are known).
    reach: Vec<f64>,
    tops: Vec<TopK>,
    /// Float32 prefilter per lane: a reference j can pass only if
    /// C ≥ a32[i] + neg_reach32[i]·E_r[j] + r_half32[j] (see `fold_tile_body`).
    a32: Vec<f32>,
    neg_reach32: Vec<f32>,
}

impl Lanes {
    /// Recompute lane i's float32 prefilter terms after its reach changed.
    ///
    /// The exact test lower ≤ (reach + E_r)² rearranges to
    /// C ≥ (lhs − reach²)/2 − reach·E_r + (r_lhs − E_r²)/2. Evaluated in float32 (one FMA, one
    /// add, inputs rounded to float32) its error is below 6 units of 2⁻²⁴ of the magnitudes
    /// involved; `a32` is lowered by 16 such units (plus an absolute 1e-30 in case the caller's
    /// thread flushes subnormals), so the prefilter only ever passes more than the exact test,
    /// which `candidate` then applies in float64.
    fn refresh_prefilter<T>(&mut self, i: usize, sh: &Shared<'_, T>) {
        let (reach, lhs) = (self.reach[i], self.lhs[i]);
        let (a, nr) = if lhs == f64::INFINITY {
            (f32::INFINITY, 0.0) // padding: never passes
        } else if reach == f64::INFINITY {
            (f32::NEG_INFINITY, 0.0) // fewer than k known: everything passes
        } else {
            let a = 0.5 * (lhs - reach * reach);
            let margin = 2f64.powi(-20) * (a.abs() + reach * sh.res_max + sh.half_max) + 1e-30;
            ((a - margin) as f32, -(reach as f32))
        };
        self.a32[i] = a;
        self.neg_reach32[i] = nr;
    }
}

/// A refs × queries block of AMX results and where it sits.
struct ResultTile<'a, T> {
    /// Row j (reference r0 + j) holds queries q0..q0+qn of the item at columns 0..qn, stride ld.
    c: &'a [f32],
    ld: usize,
    q0: usize,
    qn: usize,
    r0: usize,
    nr: usize,
    sh: &'a Shared<'a, T>,
    w: WorkItem,
}

crate::simd::multiversion!(fn fold_tile<T>(t: &ResultTile<'_, T>, lanes: &mut Lanes) -> () => fold_tile_body);

#[inline(always)]
fn fold_tile_body<T: Real>(t: &ResultTile<'_, T>, lanes: &mut Lanes) {
    let sh = t.sh;
    for j in 0..t.nr {
        let r = t.r0 + j;
        let (half, res) = (sh.r_half32[r], sh.r_res32[r]);
        // Lane-parallel float32 prefilter over 16 queries: the largest C − bound; ≥ 0 ⇒ a lane may
        // pass, and only such lanes get the float64 test.
        let mut i0 = 0;
        while i0 < t.qn {
            let row = &t.c[j * t.ld + i0..j * t.ld + i0 + 16];
            let a = &lanes.a32[t.q0 + i0..t.q0 + i0 + 16];
            let nr = &lanes.neg_reach32[t.q0 + i0..t.q0 + i0 + 16];
            let mut best = f32::NEG_INFINITY;
            for l in 0..16 {
                let gap = row[l] - (nr[l].mul_add(res, a[l]) + half);
                best = if gap > best { gap } else { best };
            }
            if best >= 0.0 {
                for i in i0..i0 + 16 {
                    let gap =
                        t.c[j * t.ld + i] - (lanes.neg_reach32[t.q0 + i].mul_add(res, lanes.a32[t.q0 + i]) + half);
                    if gap >= 0.0 {
                        candidate(t, lanes, i, j);
                    }
                }
            }
            i0 += 16;
        }
    }
}

/// Re-test lane `i` against reference row `j` of the tile and, if it passes, re-measure exactly.
#[inline(never)]
fn candidate<T: Real>(t: &ResultTile<'_, T>, lanes: &mut Lanes, i: usize, j: usize) {
    let qi = t.q0 + i; // lane index within the item
    if qi >= lanes.tops.len() {
        return; // padding lane
    }
    let r = t.r0 + j;
    let lower = lanes.lhs[qi] + t.sh.r_lhs[r] - 2.0 * t.c[j * t.ld + i] as f64;
    let rr = lanes.reach[qi] + t.sh.r_res[r];
    if lower > rr * rr {
        return;
    }
    let q = t.w.q0 + qi;
    let exact = exact_sq_distance(t.sh.queries.row(q), t.sh.reference.row(r));
    let top = &mut lanes.tops[qi];
    top.offer(Neighbour { dist: exact, index: r });
    let cut = top.threshold();
    // The cut is a float64 re-measure, which may be below the true distance by its own rounding
    // (relative) and underflow (absolute): a reference that ties it after rounding must still
    // pass. Rounded up a little more so √ and the product cannot make the reach too small.
    lanes.reach[qi] = if cut.is_finite() {
        let slack = t.sh.remeasure_rel * cut + t.sh.remeasure_abs;
        t.sh.scale * (cut + slack).sqrt() * (1.0 + 1e-12) + lanes.res[qi]
    } else {
        f64::INFINITY
    };
    lanes.refresh_prefilter(qi, t.sh);
}
