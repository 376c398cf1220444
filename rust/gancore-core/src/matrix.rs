//! Borrowed row-major matrices and the two element types the kernels accept.

use crate::error::KernelError;
use crate::parallel::{run_items, Cancel, WorkItem};

/// Element types of input matrices: `f32` and `f64`.
///
/// `UNIT_ROUNDOFF` is u = 2^-p of the type; the kernels use it to bound (rigorously, for the
/// nearest-neighbour screen) or estimate (for Parzen term selection) the rounding error of a
/// distance tile computed in this type.
pub trait Real: Copy + Send + Sync + PartialOrd + Default + std::fmt::Debug + 'static {
    const UNIT_ROUNDOFF: f64;
    /// Largest finite value of the type, as f64.
    const MAX: f64;
    /// Smallest positive (subnormal) value of the type, as f64: the absolute error a product may
    /// pick up when it underflows (gradual underflow), which a purely relative bound misses.
    const TINY: f64;
    /// Name used in error messages.
    const NAME: &'static str;
    const ZERO: Self;
    const MINUS_TWO: Self;
    fn to_f64(self) -> f64;
}

impl Real for f32 {
    const UNIT_ROUNDOFF: f64 = f32::EPSILON as f64 / 2.0;
    const MAX: f64 = f32::MAX as f64;
    const TINY: f64 = f32::from_bits(1) as f64; // 2^-149
    const NAME: &'static str = "float32";
    const ZERO: Self = 0.0;
    const MINUS_TWO: Self = -2.0;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    const UNIT_ROUNDOFF: f64 = f64::EPSILON / 2.0;
    const MAX: f64 = f64::MAX;
    const TINY: f64 = f64::from_bits(1); // 2^-1074
    const NAME: &'static str = "float64";
    const ZERO: Self = 0.0;
    const MINUS_TWO: Self = -2.0;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

/// A borrowed, C-contiguous (row-major) `rows × cols` matrix.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
}

impl<'a, T: Real> MatRef<'a, T> {
    /// Wrap `data` as `rows × cols`; `name` is used in error messages.
    pub fn new(name: &'static str, data: &'a [T], rows: usize, cols: usize) -> Result<Self, KernelError> {
        let expected = rows.checked_mul(cols);
        if expected != Some(data.len()) {
            return Err(KernelError::BadLength {
                name,
                len: data.len(),
                rows,
                cols,
                expected: expected.unwrap_or(usize::MAX),
            });
        }
        Ok(Self { data, rows, cols })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn as_slice(&self) -> &'a [T] {
        self.data
    }

    #[inline(always)]
    pub fn row(&self, i: usize) -> &'a [T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Rows `start..end` as a matrix of their own.
    pub fn row_block(&self, start: usize, end: usize) -> MatRef<'a, T> {
        MatRef { data: &self.data[start * self.cols..end * self.cols], rows: end - start, cols: self.cols }
    }

    /// Error naming the first non-finite entry, or the largest magnitude if it exceeds `limit`;
    /// otherwise the largest magnitude.
    pub fn check_values(&self, name: &'static str, limit: f64) -> Result<f64, KernelError> {
        // One vectorised pass of max |v| and "every |v| ≤ MAX" (false for NaN and ±inf); only if
        // that fails is the data scanned again to name the exact element.
        let mut scan = (0.0f64, true);
        max_abs_all_finite(&self.data, &mut scan);
        let (largest, finite) = scan;
        if !finite {
            let flat = self.data.iter().position(|v| !v.to_f64().is_finite()).unwrap_or(0);
            return Err(KernelError::NonFinite {
                name,
                value: self.data[flat].to_f64(),
                row: flat / self.cols.max(1),
                col: flat % self.cols.max(1),
            });
        }
        if largest > limit {
            return Err(KernelError::TooLarge { name, value: largest, limit, dtype: T::NAME });
        }
        Ok(largest)
    }
}

crate::simd::multiversion!(fn max_abs_all_finite<T>(data: & &[T], out: &mut (f64, bool)) -> () => max_abs_all_finite_body);

#[inline(always)]
fn max_abs_all_finite_body<T: Real>(data: &&[T], out: &mut (f64, bool)) {
    let mut top = [0.0f64; 8];
    let mut finite = [true; 8];
    let chunks = data.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            let m = c[l].to_f64().abs();
            top[l] = if m > top[l] { m } else { top[l] };
            finite[l] &= m <= f64::MAX;
        }
    }
    for (l, v) in rest.iter().enumerate() {
        let m = v.to_f64().abs();
        top[l] = if m > top[l] { m } else { top[l] };
        finite[l] &= m <= f64::MAX;
    }
    *out = (top.iter().fold(0.0f64, |a, &b| a.max(b)), finite.iter().all(|&f| f));
}

/// Largest |value| for which every quantity of the distance expansion stays finite in `T`:
/// ‖q‖² + ‖c‖² + |2q·c| ≤ 4·d·M² must not overflow (with 1% margin for rounding).
pub fn magnitude_limit<T: Real>(d: usize) -> f64 {
    (T::MAX / (4.0 * d.max(1) as f64)).sqrt() * 0.99
}

/// Check the shapes shared by both kernels: same d, d ≥ 1, at least one reference row, finite.
/// Returns the largest |value| of both matrices.
pub(crate) fn check_pair<T: Real>(
    q: &MatRef<'_, T>,
    q_name: &'static str,
    r: &MatRef<'_, T>,
    r_name: &'static str,
    n_threads: usize,
) -> Result<f64, KernelError> {
    if q.cols() != r.cols() {
        return Err(KernelError::DimMismatch { a: q_name, b: r_name, da: q.cols(), db: r.cols() });
    }
    if r.rows() == 0 {
        return Err(KernelError::NoRows { name: r_name });
    }
    if r.cols() == 0 {
        return Err(KernelError::NoColumns { name: r_name });
    }
    let limit = magnitude_limit::<T>(q.cols());
    let q_max = check_values_parallel(q, q_name, limit, n_threads)?;
    let r_max = check_values_parallel(r, r_name, limit, n_threads)?;
    Ok(q_max.max(r_max))
}

/// [`MatRef::check_values`] over row blocks on the kernel's threads: the pass reads every input
/// once and is bound by memory bandwidth, which one core alone does not saturate.
fn check_values_parallel<T: Real>(
    m: &MatRef<'_, T>,
    name: &'static str,
    limit: f64,
    n_threads: usize,
) -> Result<f64, KernelError> {
    const ROWS: usize = 4096;
    let items: Vec<WorkItem> =
        (0..m.rows()).step_by(ROWS).map(|q0| WorkItem { q0, q1: (q0 + ROWS).min(m.rows()), r0: 0, r1: 1 }).collect();
    let cancel = Cancel::new();
    let parts = run_items(&items, m.cols(), n_threads, &cancel, |w| {
        // Row numbers in the error must be those of the whole matrix.
        m.row_block(w.q0, w.q1).check_values(name, limit).map_err(|e| match e {
            KernelError::NonFinite { name, value, row, col } => {
                KernelError::NonFinite { name, value, row: row + w.q0, col }
            }
            other => other,
        })
    })?;
    Ok(parts.into_iter().fold(0.0f64, f64::max))
}
