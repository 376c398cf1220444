//! Typed errors. Every way a caller can misuse a kernel is a variant here, so no input can reach a
//! panic; the Python binding turns these into `ValueError` with the same message.

use thiserror::Error;

/// Bandwidths outside [MIN_SIGMA, MAX_SIGMA] would make 2σ² or 1/(2σ²) overflow or underflow.
pub const MIN_SIGMA: f64 = 1e-150;
pub const MAX_SIGMA: f64 = 1e150;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum KernelError {
    #[error("{name} has {len} elements but {rows} rows × {cols} columns need {expected}")]
    BadLength { name: &'static str, len: usize, rows: usize, cols: usize, expected: usize },
    #[error("{a} and {b} must have the same number of columns (dimension d); got {da} and {db}")]
    DimMismatch { a: &'static str, b: &'static str, da: usize, db: usize },
    #[error("{name} must have at least one row")]
    NoRows { name: &'static str },
    #[error("{name} must have at least one column (d ≥ 1)")]
    NoColumns { name: &'static str },
    #[error("{name} contains a non-finite value ({value}) at row {row}, column {col}")]
    NonFinite { name: &'static str, value: f64, row: usize, col: usize },
    #[error(
        "{name} has a value of magnitude {value:e}, above {limit:e}: squared distances would overflow \
         {dtype}; rescale the data (float32 inputs can be passed as float64)"
    )]
    TooLarge { name: &'static str, value: f64, limit: f64, dtype: &'static str },
    #[error("sigma must not be empty: give at least one bandwidth")]
    NoSigma,
    #[error("sigma must be finite and > 0; got {value} (sigma[{index}])")]
    BadSigma { index: usize, value: f64 },
    #[error("sigma must be between {MIN_SIGMA:e} and {MAX_SIGMA:e} (1/(2σ²) must be a normal float64); got {value:e} (sigma[{index}])")]
    SigmaOutOfRange { index: usize, value: f64 },
    #[error("k must be between 1 and the number of reference rows ({n}); got {k}")]
    BadK { k: usize, n: usize },
    #[error("output buffer {name} has {len} elements, expected {expected}")]
    BadOutput { name: &'static str, len: usize, expected: usize },
    #[error("the computation was interrupted")]
    Interrupted,
    #[error("could not start a thread pool with {threads} threads: {reason}")]
    ThreadPool { threads: usize, reason: String },
}
