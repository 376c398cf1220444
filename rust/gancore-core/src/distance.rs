//! The one blocked distance-tile kernel that both the Parzen and the nearest-neighbour search use.
//!
//! For a block of query rows Q (mb × d) and a block of reference rows C (nb × d) the tile holds
//! `−2·Q·Cᵀ` computed by a cache-blocked, SIMD GEMM (the `gemm` crate, AVX-512/AVX2/FMA chosen at
//! run time); squared distances are then `‖q_i‖² + ‖c_j‖² + tile[i][j]`, formed by the consumer
//! while the tile is hot in cache. Only one mb × nb tile per thread ever exists, so memory is
//! bounded whatever m and n are.
//!
//! The expansion is fast but loses accuracy when ‖q − c‖² ≪ ‖q‖² + ‖c‖² (near duplicates), so it is
//! only ever used to *screen*: [`exact_sq_distance`] re-measures every term that matters from
//! explicit differences in float64.

use crate::matrix::{MatRef, Real};

/// Squared row norms in float64 (accurate: they enter every distance of their row).
pub fn row_sq_norms<T: Real>(m: &MatRef<'_, T>) -> Vec<f64> {
    (0..m.rows()).map(|i| m.row(i).iter().map(|v| v.to_f64() * v.to_f64()).sum()).collect()
}

/// `tile[i * nb + j] = −2 · q_i · c_j` for the `mb` rows of `q` and `nb` rows of `c`.
///
/// `tile` must hold at least `q.rows() * c.rows()` elements; the first that many are written.
pub fn neg2_dot_tile<T: Real>(q: &MatRef<'_, T>, c: &MatRef<'_, T>, tile: &mut [T]) {
    let (mb, nb, d) = (q.rows(), c.rows(), q.cols());
    assert!(c.cols() == d && tile.len() >= mb * nb, "tile kernel called with inconsistent shapes");
    if mb == 0 || nb == 0 {
        return;
    }
    // SAFETY: the pointers and strides describe exactly the slices borrowed above: Q is mb × d
    // row-major (row stride d, column stride 1); Cᵀ is d × nb read from C row-major (row stride 1,
    // column stride d); the destination is mb × nb row-major inside `tile`, whose length was
    // checked. `read_dst = false`, so the destination's old contents are never read.
    unsafe {
        gemm::gemm(
            mb,
            nb,
            d,
            tile.as_mut_ptr(),
            1,
            nb as isize,
            false,
            q.as_slice().as_ptr(),
            1,
            d as isize,
            c.as_slice().as_ptr(),
            d as isize,
            1,
            T::ZERO,
            T::MINUS_TWO,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// ‖a − b‖² from explicit differences, accumulated in float64 (the exact recomputation).
#[inline(always)]
pub fn exact_sq_distance<T: Real>(a: &[T], b: &[T]) -> f64 {
    // 32 independent accumulators keep several vector FMA chains in flight (the loop is
    // latency-bound otherwise); callers compiled for AVX2/AVX-512 get them as 4–8 registers.
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 32];
    let mut ca = a.chunks_exact(32);
    let mut cb = b.chunks_exact(32);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..32 {
            let t = x[l].to_f64() - y[l].to_f64();
            acc[l] += t * t;
        }
    }
    let mut s = 0.0;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        let t = x.to_f64() - y.to_f64();
        s += t * t;
    }
    let mut half = [0.0f64; 8];
    for l in 0..32 {
        half[l % 8] += acc[l];
    }
    s + half.iter().sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn tile_matches_direct_distances_across_block_boundaries() {
        let mut seed = 7;
        for &(mb, nb, d) in &[(1, 1, 1), (3, 5, 2), (17, 33, 31), (64, 129, 65), (7, 1, 300)] {
            let q: Vec<f64> = (0..mb * d).map(|_| lcg(&mut seed)).collect();
            let c: Vec<f64> = (0..nb * d).map(|_| lcg(&mut seed)).collect();
            let qm = MatRef::new("q", &q, mb, d).unwrap();
            let cm = MatRef::new("c", &c, nb, d).unwrap();
            let mut tile = vec![0.0; mb * nb];
            neg2_dot_tile(&qm, &cm, &mut tile);
            let (qn, cn) = (row_sq_norms(&qm), row_sq_norms(&cm));
            for i in 0..mb {
                for j in 0..nb {
                    let fast = qn[i] + cn[j] + tile[i * nb + j];
                    let exact = exact_sq_distance(qm.row(i), cm.row(j));
                    assert!(
                        (fast - exact).abs() <= 1e-12 * (qn[i] + cn[j]) + 1e-15,
                        "{mb} {nb} {d}: {fast} vs {exact}"
                    );
                }
            }
        }
    }

    #[test]
    fn exact_distance_handles_near_duplicates() {
        let a = vec![1000.0f32; 100];
        let mut b = a.clone();
        b[3] += 0.0625;
        assert_eq!(exact_sq_distance(&a, &b), 0.0625 * 0.0625);
        assert_eq!(exact_sq_distance(&a, &a), 0.0);
    }
}
