//! Property-based fuzzing of the public kernels (part of the reliability suite, RELIABILITY.md).
//!
//! Random shapes (including empty query sets and inconsistent lengths), values spanning the whole
//! float range a kernel accepts (float32 subnormals to just past the overflow limit, zeros, exact and
//! near duplicates, NaN/inf), bandwidths from 1e-160 to 1e160, every k from 0 to n + 1 and 0–3
//! threads. Properties: no panic ever (every misuse is a `KernelError`), no NaN output, and every
//! `Ok` answer equals a direct float64 evaluation (k-NN: bit for bit; Parzen: 1e-9 relative for
//! float64 inputs, 1e-6 nats plus 1e-6 relative for float32).
//!
//! CI runs the default 256 cases per property (`cargo test --release`). The long, debug-assertion run
//! documented in RELIABILITY.md is:
//!     PROPTEST_CASES=20000 cargo test -p gancore-core --test fuzz_kernels
//! (the test profile keeps debug assertions and integer-overflow checks on).

use gancore_core::distance::exact_sq_distance;
use gancore_core::matrix::magnitude_limit;
use gancore_core::{nearest_neighbors_screened, parzen_loglik, Cancel, KernelError, MatRef, Real, Screen};
use proptest::prelude::*;

/// A matrix of `rows × d` values at scale 10^exp, with optional duplicates and one poisoned value.
#[derive(Debug, Clone)]
struct Case {
    m: usize,
    n: usize,
    d: usize,
    q: Vec<f64>,
    r: Vec<f64>,
}

fn values(len: usize, exp: i32, seed: u64) -> Vec<f64> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            // A few exact zeros: rows of zeros and ties.
            if s % 11 == 0 {
                0.0
            } else {
                u * 10f64.powi(exp)
            }
        })
        .collect()
}

fn case(max_exp: i32, min_exp: i32) -> impl Strategy<Value = Case> {
    (0usize..20, 1usize..40, 1usize..16, min_exp..=max_exp, any::<u64>(), 0u8..4, any::<u8>()).prop_map(
        move |(m, n, d, exp, seed, dup, poison)| {
            let mut q = values(m * d, exp, seed);
            let mut r = values(n * d, exp, seed.wrapping_mul(31).wrapping_add(7));
            // Exact duplicates (ties) and near duplicates (cancellation) of reference rows.
            if dup >= 2 && m > 0 {
                let rows = m.min(n);
                q[..rows * d].copy_from_slice(&r[..rows * d]);
                if dup == 3 {
                    for v in &mut q[..rows * d] {
                        *v *= 1.0 + 1e-6;
                    }
                }
            }
            if dup == 1 && n > 1 {
                let half = n / 2;
                let (a, b) = r.split_at_mut(half * d);
                b[..half * d].copy_from_slice(&a[..half * d]);
            }
            // Rarely a NaN or infinity.
            match poison {
                0 if !q.is_empty() => {
                    let mid = q.len() / 2;
                    q[mid] = f64::NAN
                }
                1 => r[0] = f64::INFINITY,
                _ => {}
            }
            Case { m, n, d, q, r }
        },
    )
}

fn cast<T: Real>(v: &[f64], f: fn(f64) -> T) -> Vec<T> {
    v.iter().map(|&x| f(x)).collect()
}

fn max_abs<T: Real>(v: &[T]) -> f64 {
    v.iter().map(|x| x.to_f64().abs()).fold(0.0, f64::max)
}

fn all_finite<T: Real>(v: &[T]) -> bool {
    v.iter().all(|x| x.to_f64().is_finite())
}

/// The nearest-neighbour property for one element type.
/// `amx` forces the AMX bf16 screen (the GEMM screen where the CPU lacks AMX).
fn check_knn<T: Real>(c: &Case, k: usize, threads: usize, amx: bool, f: fn(f64) -> T) -> Result<(), TestCaseError> {
    let (q, r) = (cast(&c.q, f), cast(&c.r, f));
    let qm = MatRef::new("queries", &q, c.m, c.d).unwrap();
    let rm = MatRef::new("reference", &r, c.n, c.d).unwrap();
    let mut idx = vec![0i64; c.m * k];
    let mut dist = vec![0.0f64; c.m * k];
    let screen = if amx { Screen::Amx } else { Screen::Gemm };
    let got = nearest_neighbors_screened(screen, qm, rm, k, threads, &Cancel::new(), &mut idx, &mut dist);
    let limit = magnitude_limit::<T>(c.d);
    let bad_values = !all_finite(&q) || !all_finite(&r) || max_abs(&q) > limit || max_abs(&r) > limit;
    if bad_values || k == 0 || k > c.n {
        prop_assert!(got.is_err(), "invalid input accepted");
        return Ok(());
    }
    prop_assert!(got.is_ok(), "valid input refused: {:?}", got);
    for i in 0..c.m {
        let mut all: Vec<(f64, usize)> =
            (0..c.n).map(|j| (exact_sq_distance(&q[i * c.d..(i + 1) * c.d], &r[j * c.d..(j + 1) * c.d]), j)).collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for t in 0..k {
            prop_assert!(!dist[i * k + t].is_nan());
            prop_assert_eq!((dist[i * k + t], idx[i * k + t] as usize), all[t], "row {} rank {}", i, t);
        }
    }
    Ok(())
}

/// Direct float64 Parzen log-density around the smallest exact distance (finite whenever it can be).
fn parzen_reference(x: &[f64], c: &[f64], n: usize, d: usize, sigma: f64) -> f64 {
    let d2: Vec<f64> = (0..n).map(|j| exact_sq_distance(x, &c[j * d..(j + 1) * d])).collect();
    let lo = d2.iter().cloned().fold(f64::INFINITY, f64::min);
    let inv = 1.0 / (2.0 * sigma * sigma);
    let sum: f64 = d2.iter().map(|v| (-(v - lo) * inv).exp()).sum();
    -lo * inv + sum.ln() - (n as f64).ln() - 0.5 * d as f64 * ((2.0 * std::f64::consts::PI).ln() + 2.0 * sigma.ln())
}

fn check_parzen<T: Real>(
    c: &Case,
    sigmas: &[f64],
    threads: usize,
    f: fn(f64) -> T,
    tol: (f64, f64),
) -> Result<(), TestCaseError> {
    let (x, ctr) = (cast(&c.q, f), cast(&c.r, f));
    let xm = MatRef::new("x", &x, c.m, c.d).unwrap();
    let cm = MatRef::new("centers", &ctr, c.n, c.d).unwrap();
    let mut out = vec![0.0f64; sigmas.len() * c.m];
    let got = parzen_loglik(xm, cm, sigmas, threads, &Cancel::new(), &mut out);
    let limit = magnitude_limit::<T>(c.d);
    let bad_values = !all_finite(&x) || !all_finite(&ctr) || max_abs(&x) > limit || max_abs(&ctr) > limit;
    let bad_sigma = sigmas.is_empty() || sigmas.iter().any(|s| !(1e-150..=1e150).contains(s));
    if bad_values || bad_sigma {
        prop_assert!(got.is_err(), "invalid input accepted");
        return Ok(());
    }
    prop_assert!(got.is_ok(), "valid input refused: {:?}", got);
    let x64: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
    let c64: Vec<f64> = ctr.iter().map(|v| v.to_f64()).collect();
    for (s, &sigma) in sigmas.iter().enumerate() {
        for i in 0..c.m {
            let g = out[s * c.m + i];
            prop_assert!(!g.is_nan(), "NaN for σ={}", sigma);
            let w = parzen_reference(&x64[i * c.d..(i + 1) * c.d], &c64, c.n, c.d, sigma);
            if w.is_infinite() || g.is_infinite() {
                prop_assert_eq!(g, w, "σ={}", sigma);
            } else {
                prop_assert!((g - w).abs() <= tol.0 * w.abs() + tol.1, "σ={} row {}: {} vs {}", sigma, i, g, w);
            }
        }
    }
    Ok(())
}

fn sigmas_near(exp: i32) -> impl Strategy<Value = Vec<f64>> {
    // Bandwidths around the data's scale (where every term matters), plus rare out-of-range ones.
    proptest::collection::vec((-3i32..=3, 0u8..40), 0..4).prop_map(move |v| {
        v.into_iter()
            .map(|(e, wild)| match wild {
                0 => 1e-160,
                1 => 1e160,
                _ => 10f64.powi(exp + e) * (1.0 + wild as f64 / 40.0),
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn matref_never_panics(len in 0usize..64, rows in 0usize..10, cols in 0usize..10) {
        let data = vec![0.0f32; len];
        let ok = MatRef::new("x", &data, rows, cols).is_ok();
        prop_assert_eq!(ok, rows * cols == len);
    }

    #[test]
    fn knn_f32(c in case(17, -44), k in 0usize..42, threads in 0usize..4, amx: bool) {
        check_knn::<f32>(&c, k, threads, amx, |v| v as f32)?;
    }

    #[test]
    fn knn_f64(c in case(160, -300), k in 0usize..42, threads in 0usize..4, amx: bool) {
        check_knn::<f64>(&c, k, threads, amx, |v| v)?;
    }

    #[test]
    fn parzen_f32((c, sig) in (-40i32..=17).prop_flat_map(|e| (case(e, e), sigmas_near(e))), threads in 0usize..4) {
        check_parzen::<f32>(&c, &sig, threads, |v| v as f32, (1e-6, 1e-6))?;
    }

    #[test]
    fn parzen_f64((c, sig) in (-140i32..=152).prop_flat_map(|e| (case(e, e), sigmas_near(e))), threads in 0usize..4) {
        check_parzen::<f64>(&c, &sig, threads, |v| v, (1e-9, 1e-9))?;
    }
}

#[test]
fn errors_are_errors_not_panics() {
    let x = [1.0f64, 2.0];
    let xm = MatRef::new("x", &x, 1, 2).unwrap();
    let mut out = vec![0.0; 2];
    let e = parzen_loglik(xm, xm, &[1.0], 1, &Cancel::new(), &mut out).unwrap_err();
    assert!(matches!(e, KernelError::BadOutput { .. }));
}
