//! Rounding rows to bf16 for the AMX screen, and measuring exactly what the rounding lost.
//!
//! Rows are scaled by `s` before rounding. For 8-bit images (pixels k/255, or raw 0–255, or
//! 2k/255 − 1) the right `s` makes every value an integer of at most 8 significant bits, which
//! bf16 holds exactly: the rounding then loses (almost) nothing and the screen is as sharp as an
//! exact one. For other data the loss is about 2⁻⁹ of each value; it is measured per row as the
//! Euclidean norm of the residual, so the screen stays rigorous either way (see `knn_bf16.rs`).

use crate::amx::{K_STEP, TILE_ROWS, TILE_WORDS};
use crate::matrix::{MatRef, Real};

/// bf16 bits of `s·x`, rounded to nearest even; values below the smallest normal become 0 (AMX
/// treats bf16 subnormals as zero, so they must not reach it; the residual then counts them).
#[inline(always)]
pub(crate) fn to_bf16<T: Real>(x: T, s: f64) -> u16 {
    let bits = ((x.to_f64() * s) as f32).to_bits();
    let rounded = ((bits.wrapping_add(0x7fff + ((bits >> 16) & 1))) >> 16) as u16;
    if rounded & 0x7f80 == 0 {
        0
    } else {
        rounded
    }
}

/// The value of bf16 bits, in float64.
#[inline(always)]
pub(crate) fn from_bf16(b: u16) -> f64 {
    f32::from_bits((b as u32) << 16) as f64
}

/// Per-row quantities of the scaled, rounded rows.
pub(crate) struct RowMeta {
    /// ‖x̃‖² of the bf16 row x̃ (exact products, float64 sum).
    pub sq_norm: Vec<f64>,
    /// An upper bound of ‖s·x − x̃‖, the distance the rounding moved the row.
    pub residual: Vec<f64>,
}

/// [`RowMeta`] of every row of `m` under scale `s`.
pub(crate) fn row_meta<T: Real>(m: &MatRef<'_, T>, s: f64) -> RowMeta {
    let mut meta = RowMeta { sq_norm: Vec::with_capacity(m.rows()), residual: Vec::with_capacity(m.rows()) };
    row_meta_into(&(*m, s), &mut meta);
    meta
}

crate::simd::multiversion!(fn row_meta_into<T>(src: &(MatRef<'_, T>, f64), meta: &mut RowMeta) -> () => row_meta_body);

#[inline(always)]
fn row_meta_body<T: Real>(src: &(MatRef<'_, T>, f64), meta: &mut RowMeta) {
    let (m, s) = (src.0, src.1);
    for i in 0..m.rows() {
        let (mut nrm, mut res, mut scaled) = ([0.0f64; 8], [0.0f64; 8], [0.0f64; 8]);
        let row = m.row(i);
        let chunks = row.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..8 {
                let y = c[l].to_f64() * s;
                let b = from_bf16(to_bf16(c[l], s));
                nrm[l] += b * b;
                res[l] += (y - b) * (y - b);
                scaled[l] += y * y;
            }
        }
        for (l, &x) in rest.iter().enumerate() {
            let y = x.to_f64() * s;
            let b = from_bf16(to_bf16(x, s));
            nrm[l] += b * b;
            res[l] += (y - b) * (y - b);
            scaled[l] += y * y;
        }
        let (n2, r2, y2): (f64, f64, f64) = (nrm.iter().sum(), res.iter().sum(), scaled.iter().sum());
        meta.sq_norm.push(n2);
        // Float64 rounding of s·x (at most 2⁻⁵³·|s·x| per element, for float64 inputs) and of the
        // sums is covered by the two small margins.
        meta.residual.push(r2.sqrt() * (1.0 + 1e-9) + 2f64.powi(-50) * y2.sqrt());
    }
}

/// Pick the scale for rows whose largest |value| is `max_abs`: `255·2^-e` or `2^-e` with
/// `2^e ≥ max_abs`, whichever leaves the smaller residual on `sample` rows (both keep |s·x| ≤ 255,
/// far from bf16 overflow).
pub(crate) fn choose_scale<T: Real>(max_abs: f64, samples: &[MatRef<'_, T>]) -> f64 {
    // Also for NaN (never passed: inputs are checked finite first).
    if max_abs.is_nan() || max_abs <= 0.0 {
        return 1.0;
    }
    let e = (max_abs.log2().ceil() as i32).clamp(-900, 900);
    let base = 2f64.powi(-e);
    let loss =
        |s: f64| -> f64 { samples.iter().map(|m| row_meta(m, s).residual.iter().map(|r| r * r).sum::<f64>()).sum() };
    let (with_255, plain) = (255.0 * base, base);
    if loss(with_255) < loss(plain) {
        with_255
    } else {
        plain
    }
}

/// Source and destination of [`pack_rows`].
pub(crate) struct RowPack<'a, T> {
    pub src: MatRef<'a, T>,
    pub scale: f64,
    /// Row stride of the destination in bf16 elements (≥ d; columns beyond d are left alone).
    pub ld: usize,
}

crate::simd::multiversion!(fn pack_rows_impl<T>(p: &RowPack<'_, T>, dst: &mut [u16]) -> () => pack_rows_body);

/// Write the bf16 rows of `p.src` row-major into `dst` with stride `p.ld`.
pub(crate) fn pack_rows<T: Real>(p: &RowPack<'_, T>, dst: &mut [u16]) {
    assert!(p.ld >= p.src.cols() && dst.len() >= p.src.rows() * p.ld, "pack_rows: destination too small");
    pack_rows_impl(p, dst)
}

#[inline(always)]
fn pack_rows_body<T: Real>(p: &RowPack<'_, T>, dst: &mut [u16]) {
    let d = p.src.cols();
    for i in 0..p.src.rows() {
        let out = &mut dst[i * p.ld..i * p.ld + d];
        for (o, &x) in out.iter_mut().zip(p.src.row(i)) {
            *o = to_bf16(x, p.scale);
        }
    }
}

crate::simd::multiversion!(fn pack_vnni_impl<T>(p: &RowPack<'_, T>, dst: &mut [u32]) -> () => pack_vnni_body);

/// Write the bf16 rows of `p.src` as VNNI panels for [`crate::amx::Tiles::product_32x32`]: panel
/// `P` (rows 16P..16P+15) occupies `ks` tiles from word `P·ks·TILE_WORDS`; `p.ld` is `ks·32`. Rows
/// and depths beyond the data are left alone (the caller zeroes `dst` once).
pub(crate) fn pack_vnni<T: Real>(p: &RowPack<'_, T>, dst: &mut [u32]) {
    let ks = p.ld / K_STEP;
    assert!(p.ld % K_STEP == 0 && p.ld >= p.src.cols(), "pack_vnni: bad depth stride");
    assert!(dst.len() >= p.src.rows().div_ceil(TILE_ROWS) * ks * TILE_WORDS, "pack_vnni: destination too small");
    pack_vnni_impl(p, dst)
}

#[inline(always)]
fn pack_vnni_body<T: Real>(p: &RowPack<'_, T>, dst: &mut [u32]) {
    let (d, ks) = (p.src.cols(), p.ld / K_STEP);
    for i in 0..p.src.rows() {
        let (panel, col) = (i / TILE_ROWS, i % TILE_ROWS);
        let row = p.src.row(i);
        let base = panel * ks * TILE_WORDS + col;
        // Depth pair (2q, 2q+1) lives in tile q / 16, tile row q % 16: word (q·16) of the panel.
        let pairs = row.chunks_exact(2);
        let odd = pairs.remainder();
        for (q, pair) in pairs.enumerate() {
            let lo = to_bf16(pair[0], p.scale) as u32;
            let hi = to_bf16(pair[1], p.scale) as u32;
            dst[base + q * TILE_ROWS] = lo | (hi << 16);
        }
        if let [last] = odd {
            dst[base + (d / 2) * TILE_ROWS] = to_bf16(*last, p.scale) as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_bit_pixels_round_exactly_at_the_chosen_scale() {
        let pixels: Vec<f32> = (0..=255u32).map(|k| k as f32 / 255.0).collect();
        let m = MatRef::new("x", &pixels, 1, 256).unwrap();
        let s = choose_scale(1.0, &[m]);
        assert_eq!(s, 255.0);
        let meta = row_meta(&m, s);
        assert!(meta.residual[0] < 1e-3, "{}", meta.residual[0]);
        let raw: Vec<f64> = (0..=255u32).map(|k| k as f64).collect();
        let m = MatRef::new("x", &raw, 1, 256).unwrap();
        let s = choose_scale(255.0, &[m]);
        assert!(row_meta(&m, s).residual[0] < 1e-12);
    }

    #[test]
    fn residual_bounds_the_rounding_of_arbitrary_values() {
        let vals: Vec<f64> = (0..100).map(|i| (i as f64 * 0.7361).sin() * 3.0 + 1e-42 * (i % 3) as f64).collect();
        let m = MatRef::new("x", &vals, 1, 100).unwrap();
        let s = choose_scale(3.0, &[m]);
        let meta = row_meta(&m, s);
        let exact: f64 = vals.iter().map(|&v| (v * s - from_bf16(to_bf16(v, s))).powi(2)).sum::<f64>().sqrt();
        assert!(meta.residual[0] >= exact && meta.residual[0] <= exact * 1.001 + 1e-12);
        assert!(exact > 0.0);
    }

    #[test]
    fn subnormal_results_are_flushed() {
        assert_eq!(to_bf16(1e-39f32, 1.0), 0);
        assert_eq!(from_bf16(to_bf16(1.0f32, 1.0)), 1.0);
        assert_eq!(from_bf16(to_bf16(-3.0f64, 1.0)), -3.0);
    }

    #[test]
    fn vnni_layout_puts_depth_pairs_in_tile_rows() {
        let d = 35; // odd, and more than one k-step
        let rows = 17; // two panels
        let vals: Vec<f32> = (0..rows * d).map(|i| (i % 200) as f32).collect();
        let m = MatRef::new("x", &vals, rows, d).unwrap();
        let ld = d.div_ceil(K_STEP) * K_STEP;
        let ks = ld / K_STEP;
        let mut dst = vec![0u32; 2 * ks * TILE_WORDS];
        pack_vnni(&RowPack { src: m, scale: 1.0, ld }, &mut dst);
        for i in 0..rows {
            for k in 0..ld {
                let (t, p, half) = (k / K_STEP, (k % K_STEP) / 2, k % 2);
                let word = dst[(i / 16) * ks * TILE_WORDS + (t * 16 + p) * 16 + i % 16];
                let got = from_bf16((word >> (16 * half)) as u16);
                let want = if k < d { vals[i * d + k] as f64 } else { 0.0 };
                assert_eq!(got, want, "row {i} depth {k}");
            }
        }
    }
}
