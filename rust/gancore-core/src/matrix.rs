//! Borrowed row-major matrices and the two element types the kernels accept.

use crate::error::KernelError;

/// Element types of input matrices: `f32` and `f64`.
///
/// `UNIT_ROUNDOFF` is u = 2^-p of the type; the kernels use it to bound (rigorously, for the
/// nearest-neighbour screen) or estimate (for Parzen term selection) the rounding error of a
/// distance tile computed in this type.
pub trait Real: Copy + Send + Sync + PartialOrd + Default + std::fmt::Debug + 'static {
    const UNIT_ROUNDOFF: f64;
    const ZERO: Self;
    const MINUS_TWO: Self;
    fn to_f64(self) -> f64;
}

impl Real for f32 {
    const UNIT_ROUNDOFF: f64 = f32::EPSILON as f64 / 2.0;
    const ZERO: Self = 0.0;
    const MINUS_TWO: Self = -2.0;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    const UNIT_ROUNDOFF: f64 = f64::EPSILON / 2.0;
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

    /// Error naming the first non-finite entry, if any.
    pub fn check_finite(&self, name: &'static str) -> Result<(), KernelError> {
        // A sum is non-finite iff some element is (or the sum overflowed); the cheap pass over
        // chunks finds the rare bad chunk, then the scan names the exact element.
        for (c, chunk) in self.data.chunks(4096).enumerate() {
            let s: f64 = chunk.iter().map(|v| v.to_f64() * 0.0).sum();
            if s != 0.0 {
                let off = chunk.iter().position(|v| !v.to_f64().is_finite()).unwrap_or(0);
                let flat = c * 4096 + off;
                return Err(KernelError::NonFinite {
                    name,
                    value: self.data[flat].to_f64(),
                    row: flat / self.cols.max(1),
                    col: flat % self.cols.max(1),
                });
            }
        }
        Ok(())
    }
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
    q.check_finite(q_name)?;
    r.check_finite(r_name)?;
    Ok(())
}
