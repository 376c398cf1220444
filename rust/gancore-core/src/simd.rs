//! Run-time choice of instruction set for the loops around the GEMM.
//!
//! The wheel is built for baseline x86-64 so it runs anywhere; the GEMM crate dispatches its own
//! micro-kernels, and this module lets the row passes (distance assembly, filters, exp sums, exact
//! recomputation) be compiled a second and third time with AVX2+FMA and AVX-512 enabled, picking
//! the best one the CPU has. The kernels write these loops in lane-parallel form (fixed-size
//! accumulator arrays, no reductions across lanes) so that the compiler vectorises them.

use std::sync::OnceLock;

/// The instruction sets beyond baseline x86-64 that the kernels may use, for the whole process.
///
/// The default allows everything the CPU offers. A caller that wants to rule some out (a user
/// opt-out, a comparison run) calls [`restrict_instruction_sets`] before the first kernel call; the
/// choice is fixed from then on. The answers of the kernels do not depend on it, only their speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstructionSets {
    /// AVX2/FMA and AVX-512 code paths for the loops around the GEMM. `false` keeps those loops on
    /// baseline x86-64 and also rules out `amx`.
    pub simd: bool,
    /// Intel AMX bf16 tiles for the nearest-neighbour screen.
    pub amx: bool,
}

impl Default for InstructionSets {
    fn default() -> Self {
        Self { simd: true, amx: true }
    }
}

static ALLOWED: OnceLock<InstructionSets> = OnceLock::new();

/// Fix the instruction sets the kernels may use. Takes effect only if called before the first
/// kernel call (and before any earlier call of this function); returns whether it did. Later
/// calls leave the first choice in place and return `false` unless they ask for the same.
pub fn restrict_instruction_sets(allowed: InstructionSets) -> bool {
    *ALLOWED.get_or_init(|| allowed) == allowed
}

/// The instruction sets the kernels may use (fixed on first use).
pub fn allowed_instruction_sets() -> InstructionSets {
    let a = *ALLOWED.get_or_init(InstructionSets::default);
    InstructionSets { simd: a.simd, amx: a.amx && a.simd }
}

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
            if allowed_instruction_sets().simd {
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
