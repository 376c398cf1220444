//! The process-wide instruction-set restriction (its own test binary, so its own process).

use gancore_core::{
    allowed_instruction_sets, amx_available, nearest_neighbors, parzen_loglik, restrict_instruction_sets, Cancel,
    InstructionSets, MatRef,
};

#[test]
fn restriction_is_fixed_by_the_first_call_and_changes_no_answer() {
    let baseline = InstructionSets { simd: false, amx: true };
    assert!(restrict_instruction_sets(baseline));
    // No SIMD also means no AMX; asking again for the same is accepted, anything else is not.
    assert_eq!(allowed_instruction_sets(), InstructionSets { simd: false, amx: false });
    assert!(restrict_instruction_sets(baseline));
    assert!(!restrict_instruction_sets(InstructionSets::default()));
    assert!(!amx_available());

    let x: Vec<f64> = (0..40).map(|i| (i as f64 * 0.37).sin()).collect();
    let xm = MatRef::new("x", &x, 10, 4).unwrap();
    let (mut idx, mut dist) = (vec![0i64; 10], vec![0.0; 10]);
    nearest_neighbors(xm, xm, 1, 1, &Cancel::new(), &mut idx, &mut dist).unwrap();
    assert_eq!(idx, (0..10).collect::<Vec<i64>>());
    assert!(dist.iter().all(|&d| d == 0.0));
    let mut out = vec![0.0; 10];
    parzen_loglik(xm, xm, &[1.0], 1, &Cancel::new(), &mut out).unwrap();
    assert!(out.iter().all(|v| v.is_finite()));
}
