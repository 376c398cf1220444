//! `gancore._core`: the thin PyO3 binding of `gancore-core`.
//!
//! Each function borrows the NumPy arrays, releases the GIL, runs the kernel on a worker thread
//! while the calling thread polls for Ctrl-C, and returns new NumPy arrays. Argument checking with
//! friendly messages happens in Python (`gancore/_validate.py`); the core re-checks everything and
//! its errors arrive here as `ValueError`, so no input can reach a panic.
//!
//! The environment is read here, never in the core:
//! * `GANCORE_NO_SIMD` (any value): the loops around the GEMM stay on baseline x86-64 and the AMX
//!   screen is off; `GANCORE_NO_AMX`: the AMX screen is off. Read once, before the first kernel
//!   call of the process, and handed to the core as its instruction-set restriction.
//! * `GANCORE_KNN_SCREEN=auto|gemm|amx` (default auto): the k-NN screen, read at each call.
//!
//! The constants and limits the core enforces are exported (`MIN_SIGMA`, `MAX_SIGMA`,
//! `PARZEN_QUERY_BLOCK`, `magnitude_limit`) so that Python checks and shards with the same values.

use std::sync::{mpsc, Once};
use std::time::Duration;

use gancore_core::{Cancel, InstructionSets, KernelError, MatRef, Real, Screen};
use numpy::ndarray::Array2;
use numpy::{Element, IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

/// How often the waiting thread checks for Ctrl-C while a kernel runs.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Hand the core the instruction-set opt-outs of the environment, once, before its first kernel
/// call (the core fixes its choice at first use, so later changes of the environment are ignored,
/// as they always were).
fn restrict_instruction_sets_from_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let simd = std::env::var_os("GANCORE_NO_SIMD").is_none();
        let amx = std::env::var_os("GANCORE_NO_AMX").is_none();
        gancore_core::restrict_instruction_sets(InstructionSets { simd, amx });
    });
}

/// The k-NN screen `GANCORE_KNN_SCREEN=auto|gemm|amx` asks for (default, and anything else: auto).
fn knn_screen_from_env() -> Screen {
    match std::env::var("GANCORE_KNN_SCREEN").as_deref() {
        Ok("gemm") => Screen::Gemm,
        Ok("amx") => Screen::Amx,
        _ => Screen::Auto,
    }
}

fn to_py_err(e: KernelError) -> PyErr {
    match e {
        KernelError::ThreadPool { .. } => PyRuntimeError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// Run `kernel` without the GIL, on a scoped worker thread, while this thread wakes every
/// `SIGNAL_POLL` to let Python run its signal handlers. A `KeyboardInterrupt` (or any exception a
/// handler raises) cancels the kernel between tiles and is returned once the worker has stopped.
fn run_interruptible<R, F>(py: Python<'_>, kernel: F) -> PyResult<R>
where
    R: Send,
    F: FnOnce(&Cancel) -> Result<R, KernelError> + Send,
{
    let cancel = Cancel::new();
    let outcome: Result<Result<R, KernelError>, PyErr> = py.detach(|| {
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel();
            let cancel_ref = &cancel;
            let worker = scope.spawn(move || {
                // A panic in the kernel would be a bug; report it as an exception, not an abort.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| kernel(cancel_ref)));
                let _ = tx.send(());
                result
            });
            loop {
                match rx.recv_timeout(SIGNAL_POLL) {
                    Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Err(err) = Python::attach(|py| py.check_signals()) {
                            cancel.cancel();
                            let _ = worker.join();
                            return Err(err);
                        }
                    }
                }
            }
            match worker.join() {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(panic)) | Err(panic) => {
                    let msg = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    Err(PyRuntimeError::new_err(format!("internal error in gancore kernel (please report): {msg}")))
                }
            }
        })
    });
    outcome?.map_err(to_py_err)
}

fn matrix<'a, T: Real + Element>(name: &'static str, a: &'a PyReadonlyArray2<'_, T>) -> PyResult<MatRef<'a, T>> {
    let (rows, cols) = (a.shape()[0], a.shape()[1]);
    // `as_slice` also accepts Fortran order, which the row-major kernels would misread.
    if !a.is_c_contiguous() {
        return Err(PyValueError::new_err(format!("{name} must be C-contiguous (use numpy.ascontiguousarray)")));
    }
    let data = a
        .as_slice()
        .map_err(|_| PyValueError::new_err(format!("{name} must be C-contiguous (use numpy.ascontiguousarray)")))?;
    MatRef::new(name, data, rows, cols).map_err(to_py_err)
}

fn parzen_typed<'py, T: Real + Element>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, T>,
    centers: PyReadonlyArray2<'py, T>,
    sigmas: PyReadonlyArray1<'py, f64>,
    n_threads: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    restrict_instruction_sets_from_env();
    let xm = matrix("x", &x)?;
    let cm = matrix("centers", &centers)?;
    let sig = sigmas.as_slice().map_err(|_| PyValueError::new_err("sigma must be contiguous"))?;
    let (s, m) = (sig.len(), xm.rows());
    let out = run_interruptible(py, |cancel| {
        let mut out = vec![0.0f64; s * m];
        gancore_core::parzen_loglik(xm, cm, sig, n_threads, cancel, &mut out)?;
        Ok(out)
    })?;
    Ok(as_matrix_array(s, m, out)?.into_pyarray(py))
}

/// Wrap a row-major buffer as an (rows, cols) ndarray without copying.
fn as_matrix_array<T>(rows: usize, cols: usize, data: Vec<T>) -> PyResult<Array2<T>> {
    Array2::from_shape_vec((rows, cols), data).map_err(|e| PyRuntimeError::new_err(format!("output shape: {e}")))
}

/// parzen_loglik(x, centers, sigmas, n_threads) -> ndarray[float64, (s, m)]
///
/// Gaussian Parzen-window log-density of each row of `x` for each σ in `sigmas`. `x` and
/// `centers` are C-contiguous 2-D arrays of the same float dtype (float32 or float64); `sigmas` a
/// contiguous float64 1-D array. Use `gancore.parzen_loglik`, which validates and coerces inputs.
#[pyfunction]
#[pyo3(signature = (x, centers, sigmas, n_threads))]
fn parzen_loglik<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    centers: &Bound<'py, PyAny>,
    sigmas: PyReadonlyArray1<'py, f64>,
    n_threads: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    if let (Ok(x), Ok(c)) = (x.extract::<PyReadonlyArray2<f32>>(), centers.extract::<PyReadonlyArray2<f32>>()) {
        return parzen_typed(py, x, c, sigmas, n_threads);
    }
    if let (Ok(x), Ok(c)) = (x.extract::<PyReadonlyArray2<f64>>(), centers.extract::<PyReadonlyArray2<f64>>()) {
        return parzen_typed(py, x, c, sigmas, n_threads);
    }
    Err(PyTypeError::new_err("x and centers must both be 2-D float32 or both be 2-D float64 arrays"))
}

type KnnOut<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f64>>);

fn knn_typed<'py, T: Real + Element>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, T>,
    reference: PyReadonlyArray2<'py, T>,
    k: usize,
    n_threads: usize,
) -> PyResult<KnnOut<'py>> {
    restrict_instruction_sets_from_env();
    let screen = knn_screen_from_env();
    let qm = matrix("queries", &queries)?;
    let rm = matrix("reference", &reference)?;
    let m = qm.rows();
    let (idx, dist) = run_interruptible(py, |cancel| {
        let mut idx = vec![0i64; m * k];
        let mut dist = vec![0.0f64; m * k];
        gancore_core::nearest_neighbors_screened(screen, qm, rm, k, n_threads, cancel, &mut idx, &mut dist)?;
        Ok((idx, dist))
    })?;
    Ok((as_matrix_array(m, k, idx)?.into_pyarray(py), as_matrix_array(m, k, dist)?.into_pyarray(py)))
}

/// nearest_neighbors(queries, reference, k, n_threads) -> (ndarray[int64, (m, k)], ndarray[float64, (m, k)])
///
/// Exact k nearest rows of `reference` for each row of `queries` by squared Euclidean distance,
/// ascending, ties broken by the lower index. Use `gancore.nearest_neighbors`, which validates.
#[pyfunction]
#[pyo3(signature = (queries, reference, k, n_threads))]
fn nearest_neighbors<'py>(
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    reference: &Bound<'py, PyAny>,
    k: usize,
    n_threads: usize,
) -> PyResult<KnnOut<'py>> {
    if let (Ok(q), Ok(r)) = (queries.extract::<PyReadonlyArray2<f32>>(), reference.extract::<PyReadonlyArray2<f32>>()) {
        return knn_typed(py, q, r, k, n_threads);
    }
    if let (Ok(q), Ok(r)) = (queries.extract::<PyReadonlyArray2<f64>>(), reference.extract::<PyReadonlyArray2<f64>>()) {
        return knn_typed(py, q, r, k, n_threads);
    }
    Err(PyTypeError::new_err("queries and reference must both be 2-D float32 or both be 2-D float64 arrays"))
}

/// knn_screen(m, n, d) -> str
///
/// Which first pass `nearest_neighbors` uses for m queries, n references of dimension d on this
/// machine: "amx-bf16" (Intel AMX tiles) or "gemm" (float32/float64 SIMD GEMM). Results are
/// identical either way; `GANCORE_KNN_SCREEN=gemm|amx|auto` overrides the choice.
#[pyfunction]
fn knn_screen(m: usize, n: usize, d: usize) -> &'static str {
    restrict_instruction_sets_from_env();
    match knn_screen_from_env().resolve(m, n, d) {
        Screen::Amx => "amx-bf16",
        _ => "gemm",
    }
}

/// magnitude_limit(dtype, d) -> float
///
/// Largest |value| the kernels accept in `dtype` ("float32" or "float64") at dimension d: beyond
/// it the distance expansion ‖q‖² + ‖c‖² + 2|q·c| could overflow, and the core refuses the input.
/// The same function the core checks inputs with.
#[pyfunction]
fn magnitude_limit(dtype: &str, d: usize) -> PyResult<f64> {
    match dtype {
        "float32" => Ok(gancore_core::matrix::magnitude_limit::<f32>(d)),
        "float64" => Ok(gancore_core::matrix::magnitude_limit::<f64>(d)),
        other => Err(PyValueError::new_err(format!("dtype must be 'float32' or 'float64'; got {other:?}"))),
    }
}

/// The native kernels of gancore (private: use the `gancore` package).
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parzen_loglik, m)?)?;
    m.add_function(wrap_pyfunction!(nearest_neighbors, m)?)?;
    m.add_function(wrap_pyfunction!(knn_screen, m)?)?;
    m.add_function(wrap_pyfunction!(magnitude_limit, m)?)?;
    // Bandwidths outside [MIN_SIGMA, MAX_SIGMA] are refused (1/(2σ²) must be a normal float64).
    m.add("MIN_SIGMA", gancore_core::error::MIN_SIGMA)?;
    m.add("MAX_SIGMA", gancore_core::error::MAX_SIGMA)?;
    // Rows per query block of the Parzen kernel: shards cut at multiples of it reproduce the
    // one-process answer bit for bit.
    m.add("PARZEN_QUERY_BLOCK", gancore_core::parzen::QUERY_BLOCK)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
