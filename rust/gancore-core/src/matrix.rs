//! Borrowed row-major matrices and the two element types the kernels accept.

use crate::error::KernelError;

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
    const TINY: f64 = 1.401298464324817e-45; // 2^-149
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
    const TINY: f64 = 4.9406564584124654e-324; // 2^-1074
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

    /// Error naming the first non-finite entry, or the largest magnitude if it exceeds `limit`.
    pub fn check_values(&self, name: &'static str, limit: f64) -> Result<(), KernelError> {
        // One pass of max |v| per chunk: NaN and ±inf make the chunk's maximum non-finite, so the
        // rare bad chunk is then scanned again to name the exact element.
        let mut largest = 0.0f64;
        for (c, chunk) in self.data.chunks(4096).enumerate() {
            let top = chunk.iter().fold(0.0f64, |a, v| {
                let m = v.to_f64().abs();
                if m > a || m.is_nan() { m } else { a }
            });
            if !top.is_finite() {
                let off = chunk.iter().position(|v| !v.to_f64().is_finite()).unwrap_or(0);
                let flat = c * 4096 + off;
                return Err(KernelError::NonFinite {
                    name,
                    value: self.data[flat].to_f64(),
                    row: flat / self.cols.max(1),
                    col: flat % self.cols.max(1),
                });
            }
            largest = largest.max(top);
        }
        if largest > limit {
            return Err(KernelError::TooLarge { name, value: largest, limit, dtype: T::NAME });
        }
        Ok(())
    }
}

/// Largest |value| for which every quantity of the distance expansion stays finite in `T`:
/// ‖q‖² + ‖c‖² + |2q·c| ≤ 4·d·M² must not overflow (with 1% margin for rounding).
pub fn magnitude_limit<T: Real>(d: usize) -> f64 {
    (T::MAX / (4.0 * d.max(1) as f64)).sqrt() * 0.99
}

/// Check the shapes shared by both kernels: same d, d ≥ 1, at least one reference row, finite.
pub(crate) fn check_pair<T: Real>(
    q: &MatRef<'_, T>,
    q_name: &'static str,
    r: &MatRef<'_, T>,
    r_name: &'static str,
) -> Result<(), KernelError> {
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
    q.check_values(q_name, limit)?;
    r.check_values(r_name, limit)?;
    Ok(())
}
