//! Criterion benchmarks of the hot paths: frame decoding, a node handling a hello, and the
//! simulator running a small mesh. Run with `cargo bench` (see docs/PERFORMANCE.md).

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use x0tta6bl4::config::ProtocolConfig;
use x0tta6bl4::ids::{IfIndex, NodeId, PeerAddr};
use x0tta6bl4::node::Node;
use x0tta6bl4::scenario::Scenario;
use x0tta6bl4::time::Instant;
use x0tta6bl4::wire::{self, ControlWriter, Tlv, TlvIter};

fn full_update_frame() -> Vec<u8> {
    let mut buf = Vec::new();
    ControlWriter::start(&mut buf, NodeId(1));
    let mut d = 0;
    loop {
        let tlv = Tlv::Update { dest: NodeId(d), seqno: 7, metric: 512, interval_ms: 10_000 };
        if !ControlWriter::fits(&buf, &tlv) {
            break;
        }
        ControlWriter::push(&mut buf, &tlv);
        d += 1;
    }
    ControlWriter::finish(&mut buf);
    buf
}

fn wire_decode(c: &mut Criterion) {
    let frame = full_update_frame();
    c.bench_function("decode a full frame of updates", |b| {
        b.iter(|| {
            let (_, body) = wire::decode_frame(black_box(&frame)).expect("valid");
            TlvIter::new(body).filter(Result::is_ok).count()
        })
    });
}

fn node_hello(c: &mut Criterion) {
    // A node with a bidirectional neighbour, receiving that neighbour's hello + IHU.
    let mut a = Node::new(NodeId(1), ProtocolConfig::default(), [1; 32], Instant::ZERO).expect("valid");
    let mut b = Node::new(NodeId(2), ProtocolConfig::default(), [2; 32], Instant::ZERO).expect("valid");
    a.add_interface(Instant::ZERO);
    b.add_interface(Instant::ZERO);
    let mut buf = Vec::new();
    let mut now = Instant::ZERO;
    for _ in 0..50 {
        now += Duration::from_millis(20);
        a.handle_timeout(now);
        b.handle_timeout(now);
        while a.poll_transmit(&mut buf).is_some() {
            b.handle_datagram(now, IfIndex(0), PeerAddr::synthetic(NodeId(1)), &buf);
        }
        while b.poll_transmit(&mut buf).is_some() {
            a.handle_datagram(now, IfIndex(0), PeerAddr::synthetic(NodeId(2)), &buf);
        }
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
    }
    // Capture one hello frame from b.
    now += Duration::from_millis(100);
    b.handle_timeout(now);
    let mut hello = Vec::new();
    while b.poll_transmit(&mut buf).is_some() {
        hello.clone_from(&buf);
    }
    c.bench_function("node handles a hello", |bench| {
        bench.iter(|| {
            now += Duration::from_millis(1);
            a.handle_datagram(now, IfIndex(0), PeerAddr::synthetic(NodeId(2)), black_box(&hello));
            while a.poll_transmit(&mut buf).is_some() {}
            while a.poll_event().is_some() {}
            a.poll_timeout()
        })
    });
}

const GRID_SCENARIO: &str = "
name: bench-grid
duration: 10s
warmup: 2s
topology:
  grid: { rows: 10, cols: 10 }
workload:
  probe_pairs: 50
  probe_interval: 100ms
faults:
  - at: 4s
    duration: 2s
    crash: { highest_degree: 1 }
";

fn sim_grid(c: &mut Criterion) {
    let scenario = Scenario::parse(GRID_SCENARIO, "bench-grid.yaml").expect("valid");
    let mut group = c.benchmark_group("simulator");
    group.sample_size(10);
    group.bench_function("10x10 grid, 10 simulated seconds", |b| {
        b.iter_batched(
            || x0_sim::build_topology(&scenario, 1).expect("builds"),
            |topo| x0_sim::Simulation::new(&scenario, &topo, 1, 1).expect("valid").run(None).engine.events,
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn phold(c: &mut Criterion) {
    let p = x0_sim::phold::Phold { events: 2_000_000, ..x0_sim::phold::Phold::default() };
    let mut group = c.benchmark_group("phold 1024 LPs x 16, 2M events");
    group.sample_size(10);
    group.bench_function("engine", |b| b.iter(|| x0_sim::phold::run_engine(&p).checksum));
    group.bench_function("raw BinaryHeap", |b| b.iter(|| x0_sim::phold::run_heap_baseline(&p).checksum));
    group.finish();
}

criterion_group!(benches, wire_decode, node_hello, sim_grid, phold);
criterion_main!(benches);
