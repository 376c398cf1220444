//! Run-time choice of instruction set for the loops around the GEMM.
//!
//! The wheel is built for baseline x86-64 so it runs anywhere; the GEMM crate dispatches its own
//! micro-kernels, and this module lets the row passes (distance assembly, filters, exp sums, exact
//! recomputation) be compiled a second and third time with AVX2+FMA and AVX-512 enabled, picking
//! the best one the CPU has. The kernels write these loops in lane-parallel form (fixed-size
//! accumulator arrays, no reductions across lanes) so that the compiler vectorises them.

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

pub(crate) fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::env::var_os("GANCORE_NO_SIMD").is_none() {
                if is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512dq")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("fma")
                {
                    return Level::Avx512;
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    return Level::Avx2;
                }
            }
        }
        Level::Baseline
    })
}

/// Define `$name` that calls the `#[inline(always)]` generic `$body_fn` compiled for the best
/// available instruction set. Signature: `fn(&A, &mut B) -> R` with one generic `T: Real`.
macro_rules! multiversion {
    ($vis:vis fn $name:ident<T>($a:ident: &$A:ty, $b:ident: &mut $B:ty) -> $R:ty => $body_fn:ident) => {
        $vis fn $name<T: $crate::matrix::Real>($a: &$A, $b: &mut $B) -> $R {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
                unsafe fn avx512<T: $crate::matrix::Real>($a: &$A, $b: &mut $B) -> $R {
                    $body_fn($a, $b)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<T: $crate::matrix::Real>($a: &$A, $b: &mut $B) -> $R {
                    $body_fn($a, $b)
                }
                match $crate::simd::level() {
                    // SAFETY: level() reported these features present on this CPU.
                    $crate::simd::Level::Avx512 => return unsafe { avx512::<T>($a, $b) },
                    $crate::simd::Level::Avx2 => return unsafe { avx2::<T>($a, $b) },
                    $crate::simd::Level::Baseline => {}
                }
            }
            $body_fn($a, $b)
        }
    };
}
pub(crate) use multiversion;

/// Minimum of `a[i] + b[i]`, in lane-parallel form (vectorises; values are finite).
#[inline(always)]
pub(crate) fn min_sum_f64(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut lanes = [f64::INFINITY; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            let v = x[l] + y[l];
            lanes[l] = if v < lanes[l] { v } else { lanes[l] };
        }
    }
    let mut m = f64::INFINITY;
    for (x, y) in ra.iter().zip(rb) {
        let v = x + y;
        m = if v < m { v } else { m };
    }
    for l in lanes {
        m = if l < m { l } else { m };
    }
    m
}
