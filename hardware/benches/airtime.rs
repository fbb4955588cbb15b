//! How expensive the per-frame questions are: a send queue asks them for every frame, and
//! the simulator for every frame of every node.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use lorabridge_hardware::{AirtimeLedger, Modulation, RegionPlan};

fn time_on_air(c: &mut Criterion) {
    let m = Modulation::eu868_default();
    c.bench_function("time_on_air 200 B", |b| {
        b.iter(|| black_box(&m).time_on_air(black_box(200)))
    });
}

fn ledger_check(c: &mut Criterion) {
    let plan = RegionPlan::builtin("EU868").expect("EU868 ships with the crate");
    let m = Modulation::eu868_default();
    let frame = m.time_on_air(255);
    // Fill the 10 % band the way a busy node would: frames with gaps, for an hour.
    let mut ledger = AirtimeLedger::new(&plan);
    let mut now = Duration::ZERO;
    while now < Duration::from_secs(3_600) {
        let _ = ledger.record(now, m.frequency_hz, m.bandwidth_hz, frame);
        now += frame * 9;
    }
    c.bench_function("ledger check, full 10 % band", |b| {
        b.iter(|| ledger.check(black_box(now), m.frequency_hz, m.bandwidth_hz, frame))
    });
}

criterion_group!(benches, time_on_air, ledger_check);
criterion_main!(benches);
