//! Loop freedom must hold at all times, including right after retractions: checked every
//! millisecond for every destination while faults retract routes.

mod common;

#[test]
fn no_forwarding_loop_ever_on_a_ring_under_retractions() {
    let scenario = common::load(&common::data("loops-ring.yaml"));
    for seed in [3, 4] {
        let f = common::run(&scenario, &[seed], 1);
        let s = &f.report.summary;
        assert_eq!(s.loops, 0, "seed {seed}: loops seen: {:?}", f.report.loop_examples.iter().map(|l| &l.cycle).collect::<Vec<_>>());
        assert!(s.faults >= 10, "the faults did happen");
        assert!(s.detected >= 8, "and routing noticed them: {s:?}");
    }
}
