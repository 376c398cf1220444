//! Intel AMX bf16 tile products: the cheap first pass of the nearest-neighbour screen.
//!
//! A Sapphire Rapids core multiplies bf16 tiles (`TDPBF16PS`: 16×32 by 32×16, float32
//! accumulation) at about 3 TFLOP/s, fifteen times its float32 AVX-512 rate. Products of bf16 values
//! are exact in float32, so the only rounding is in the float32 accumulation (and in rounding the
//! inputs to bf16, which the caller accounts for separately); the screen in `knn_bf16.rs` bounds
//! both rigorously and re-measures every surviving candidate exactly, so the answer never depends on
//! this precision.
//!
//! Availability: the CPU must report AMX-TILE and AMX-BF16 (CPUID leaf 7) and Linux must grant this
//! process the tile-data state (`arch_prctl(ARCH_REQ_XCOMP_PERM)`, required since Linux 5.16).
//! A caller can rule the path out for the process with [`crate::restrict_instruction_sets`] (the
//! Python binding does so for `GANCORE_NO_AMX=1` or `GANCORE_NO_SIMD=1`). The stable Rust
//! toolchain has no AMX intrinsics yet, so the three instructions used are written with `asm!`.

use std::marker::PhantomData;
use std::sync::OnceLock;

/// bf16 elements in one tile row (64 bytes): the depth of one tile product step.
pub(crate) const K_STEP: usize = 32;
/// Rows of one tile (and columns of the float32 result tile).
pub(crate) const TILE_ROWS: usize = 16;
/// One VNNI-packed operand tile: 16 rows of 16 bf16 pairs, as u32.
pub(crate) const TILE_WORDS: usize = TILE_ROWS * TILE_ROWS;

/// Whether AMX bf16 tiles can be used by this process: the CPU and OS offer them and
/// [`crate::allowed_instruction_sets`] allows them (checked once).
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(detect)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    use std::arch::x86_64::{__cpuid_count, __get_cpuid_max};
    if !crate::simd::allowed_instruction_sets().amx {
        return false;
    }
    // SAFETY: CPUID exists on every x86-64 CPU; leaf 7 is read only if the CPU reports it.
    #[allow(unused_unsafe)]
    let (max_leaf, leaf7_edx) = unsafe {
        let max_leaf = __get_cpuid_max(0).0;
        (max_leaf, if max_leaf >= 7 { __cpuid_count(7, 0).edx } else { 0 })
    };
    const AMX_BF16: u32 = 1 << 22;
    const AMX_TILE: u32 = 1 << 24;
    if max_leaf < 7 || leaf7_edx & (AMX_BF16 | AMX_TILE) != AMX_BF16 | AMX_TILE {
        return false;
    }
    // Linux hands out the (8 KB) tile-data register state per process on request.
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: a plain system call with integer arguments; failure is reported by its return value.
    let rc = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) };
    rc == 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// A zeroed buffer whose start is aligned to a 64-byte cache line: an unaligned tile row would
/// straddle two lines and double the cost of every tile load and store.
pub(crate) struct LineAligned<T> {
    storage: Vec<T>,
    offset: usize,
    len: usize,
}

impl<T: Copy + Default> LineAligned<T> {
    pub(crate) fn zeroed(len: usize) -> Self {
        let pad = 64 / std::mem::size_of::<T>().max(1);
        let storage = vec![T::default(); len + pad];
        let offset = storage.as_ptr().align_offset(64).min(pad);
        Self { storage, offset, len }
    }
}

impl<T> std::ops::Deref for LineAligned<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.storage[self.offset..self.offset + self.len]
    }
}

impl<T> std::ops::DerefMut for LineAligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.storage[self.offset..self.offset + self.len]
    }
}

/// The tile registers of the current thread, configured as eight 16 × 64-byte tiles.
///
/// Dropping it releases the tile state (`TILERELEASE`), also when unwinding. It is neither `Send`
/// nor `Sync`: tile configuration belongs to one thread.
pub(crate) struct Tiles {
    _thread_bound: PhantomData<*const ()>,
}

/// The 64-byte `LDTILECFG` operand (palette 1).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

impl Tiles {
    /// Configure this thread's tiles. Returns `None` when AMX is not [`available`].
    pub(crate) fn configure() -> Option<Tiles> {
        if !available() {
            return None;
        }
        // Palette 1 has 8 tiles; the entries of tiles 8–15 must stay zero or LDTILECFG faults.
        let mut cfg = TileConfig { palette: 1, start_row: 0, reserved: [0; 14], colsb: [0; 16], rows: [0; 16] };
        for t in 0..8 {
            cfg.colsb[t] = 64;
            cfg.rows[t] = TILE_ROWS as u8;
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: available() confirmed AMX-TILE and the OS permission; cfg is a valid palette-1
        // configuration, 64-byte aligned, and only read.
        unsafe {
            std::arch::asm!("ldtilecfg [{}]", in(reg) &cfg as *const TileConfig, options(nostack, readonly));
        }
        Some(Tiles { _thread_bound: PhantomData })
    }

    /// `c[j·ldc + i] = Σ_k a[j·lda + k] · b(k, i)` for 32 rows j of `a` and 32 columns i of `b`.
    ///
    /// * `a`: bf16 bits, row-major, row stride `lda` elements (`lda ≥ ks·32`), 32 rows.
    /// * `b`: two consecutive panels of 16 columns, each `ks` VNNI tiles of [`TILE_WORDS`] u32:
    ///   word `(t·16 + p)·16 + i` of a panel holds the bf16 pair for depths `32t + 2p, 32t + 2p + 1`
    ///   of its column i (low half first).
    /// * `c`: float32, row stride `ldc ≥ 32`; the 32 × 32 block is overwritten.
    pub(crate) fn product_32x32(&self, a: &[u16], lda: usize, b: &[u32], ks: usize, c: &mut [f32], ldc: usize) {
        assert!(ks >= 1 && lda >= ks * K_STEP && ldc >= 32, "tile product called with bad strides");
        assert!(a.len() >= 31 * lda + ks * K_STEP, "tile product: a too short");
        assert!(b.len() >= 2 * ks * TILE_WORDS, "tile product: b too short");
        assert!(c.len() >= 31 * ldc + 32, "tile product: c too short");
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the asserts above keep every tile load inside `a` and `b` and every store inside
        // `c`: A tiles read rows 0–15 and 16–31 (64 bytes each, stride lda·2) at column offsets
        // 32t < lda; B tiles are 1 KB each, t < ks per panel; C tiles are 16 rows of 64 bytes at
        // columns 0–15 and 16–31 of rows 0–31 (stride ldc·4). Tiles were configured by `configure`
        // on this thread (Tiles is not Send). tmm0–7 are not used by compiled code.
        unsafe {
            let a1 = a.as_ptr().add(TILE_ROWS * lda);
            let b1 = b.as_ptr().add(ks * TILE_WORDS);
            let c_lo = c.as_mut_ptr().add(TILE_ROWS * ldc);
            std::arch::asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                "2:",
                "tileloadd tmm4, [{a0} + {lda}*1]",
                "tileloadd tmm5, [{a1} + {lda}*1]",
                "tileloadd tmm6, [{b0} + {s64}*1]",
                "tileloadd tmm7, [{b1} + {s64}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                "add {a0}, 64",
                "add {a1}, 64",
                "add {b0}, 1024",
                "add {b1}, 1024",
                "dec {ks}",
                "jnz 2b",
                "tilestored [{c0} + {ldc}*1], tmm0",
                "tilestored [{c0} + {ldc}*1 + 64], tmm1",
                "tilestored [{c1} + {ldc}*1], tmm2",
                "tilestored [{c1} + {ldc}*1 + 64], tmm3",
                a0 = inout(reg) a.as_ptr() => _,
                a1 = inout(reg) a1 => _,
                b0 = inout(reg) b.as_ptr() => _,
                b1 = inout(reg) b1 => _,
                ks = inout(reg) ks => _,
                lda = in(reg) lda * 2,
                s64 = in(reg) 64usize,
                c0 = in(reg) c.as_mut_ptr(),
                c1 = in(reg) c_lo,
                ldc = in(reg) ldc * 4,
                options(nostack)
            );
        }
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: releasing the tile state is always valid once configured.
        unsafe {
            std::arch::asm!("tilerelease", options(nostack, nomem));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bf16(x: f32) -> u16 {
        let b = x.to_bits();
        ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
    }

    #[test]
    fn tile_product_matches_integer_dot_products() {
        let Some(tiles) = Tiles::configure() else {
            eprintln!("AMX not available on this machine: tile product not exercised");
            return;
        };
        // Small integers are exact in bf16 and their dot products exact in float32.
        let ks = 3;
        let dp = ks * K_STEP;
        let lda = dp + 32; // a stride wider than the data, as the callers may use
        let av: Vec<f32> = (0..32 * lda).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let bv: Vec<f32> = (0..32 * dp).map(|i| ((i * 5) % 11) as f32 - 5.0).collect(); // 32 columns × dp
        let a: Vec<u16> = av.iter().map(|&x| bf16(x)).collect();
        let mut b = vec![0u32; 2 * ks * TILE_WORDS];
        for panel in 0..2 {
            for t in 0..ks {
                for p in 0..16 {
                    for i in 0..16 {
                        let col = panel * 16 + i;
                        let k = t * K_STEP + 2 * p;
                        let lo = bf16(bv[col * dp + k]) as u32;
                        let hi = bf16(bv[col * dp + k + 1]) as u32;
                        b[panel * ks * TILE_WORDS + (t * 16 + p) * 16 + i] = lo | (hi << 16);
                    }
                }
            }
        }
        let ldc = 40;
        let mut c = vec![f32::NAN; 32 * ldc];
        tiles.product_32x32(&a, lda, &b, ks, &mut c, ldc);
        for j in 0..32 {
            for i in 0..32 {
                let want: f32 = (0..dp).map(|k| av[j * lda + k] * bv[i * dp + k]).sum();
                assert_eq!(c[j * ldc + i], want, "row {j} column {i}");
            }
            assert!(c[j * ldc + 32..(j + 1) * ldc].iter().all(|v| v.is_nan()), "wrote outside the block");
        }
    }
}
