//! gancore-core: the evaluation kernels of gancore, in pure Rust (no Python, no NumPy).
//!
//! Two kernels reproduce the evaluation of Goodfellow et al., "Generative Adversarial Nets" (2014):
//!
//! * [`parzen_loglik`] — Table 1's Gaussian Parzen-window log-likelihood of each row of `x` under
//!   windows on `centers` (generator samples), for many bandwidths in one pass:
//!   `log p(x) = logsumexp_j(−‖x − c_j‖²/(2σ²)) − log n − (d/2)·log(2πσ²)`.
//! * [`nearest_neighbors`] — Figure 2's "nearest training example": the exact k nearest rows by
//!   squared Euclidean distance, ties broken by the lower index.
//!
//! Both stream over one blocked distance tile ([`distance`]: `‖x‖² + ‖c‖² − 2x·c` by a SIMD GEMM)
//! and never hold the m × n matrix: memory is one tile per thread. Both re-measure in float64 every
//! term whose value matters, so the fast low-precision expansion never decides the answer alone.
//!
//! # Parallelism
//! `n_threads = 0` uses every core; work is split into query blocks (and reference chunks when
//! there are few queries) on a cached rayon pool; small problems stay on the calling thread.
//! A [`Cancel`] flag is checked between tiles, so a caller can stop a long run promptly.
//!
//! Inputs are row-major slices with explicit dimensions ([`MatRef`]); every misuse is a
//! [`KernelError`], never a panic.
//!
//! # Configuration
//! The crate reads no environment variables. The only process-wide setting is which instruction
//! sets beyond baseline x86-64 the kernels may use ([`restrict_instruction_sets`]); the k-NN screen
//! is an explicit argument ([`nearest_neighbors_screened`]). Neither changes an answer.

mod amx;
mod bf16;
pub mod distance;
pub mod error;
pub mod knn;
mod knn_bf16;
mod math;
pub mod matrix;
pub mod parallel;
pub mod parzen;
mod simd;

pub use amx::available as amx_available;
pub use error::KernelError;
pub use knn::{nearest_neighbors, nearest_neighbors_screened, Screen};
pub use matrix::{MatRef, Real};
pub use parallel::{resolve_threads, Cancel};
pub use parzen::parzen_loglik;
pub use simd::{allowed_instruction_sets, restrict_instruction_sets, InstructionSets};
