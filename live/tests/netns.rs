//! x0-node on real interfaces: three network namespaces in a line, a - b - c, joined by
//! veth pairs. The nodes find each other and route a to c through b; a's event stream and
//! b's metrics and health answer; XDP counts b's peers, and loss and quarantine injected in
//! a's kernel cut b off and heal; SIGKILL on b is detected by a, and b restarted is a new
//! incarnation; a's XDP counters show the blocklist dropping all of b's packets and loss at
//! p = 0.5 within 3 sigma; SIGTERM stops a cleanly.
//! Needs root (namespaces); without it the test says so and skips.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};
use x0_live::lab::{Lab, Ns, is_root};
use x0tta6bl4::eventlog::{Detail, EventRecord, Kind};

const NODE: &str = env!("CARGO_BIN_EXE_x0-node");
const METRICS: &str = "127.0.0.1:9100";
const EVENTS: &str = "127.0.0.1:9101";

fn config(dir: &std::path::Path, id: u32, ifaces: &[&str], xdp: bool) -> String {
    let path = dir.join(format!("n{id}.yaml"));
    let text = format!(
        "node_id: {id}\nidentity: {}\ninterfaces: [{}]\nmetrics: {METRICS}\nevents: {EVENTS}\nxdp: {xdp}\n",
        dir.join(format!("n{id}.key")).display(),
        ifaces.join(", ")
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Connects to a node's event stream from inside its namespace, retrying while it starts.
fn connect(lab: &Lab, ns: Ns) -> TcpStream {
    lab.in_namespace(ns, || {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match TcpStream::connect(EVENTS) {
                Ok(s) => return s,
                Err(e) if Instant::now() > deadline => panic!("event stream never came up: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    })
    .unwrap()
}

/// Reads event lines until one satisfies `want`, or fails after `timeout`.
fn wait_for(lines: &mut impl BufRead, timeout: Duration, what: &str, want: impl Fn(&EventRecord) -> bool) -> EventRecord {
    let deadline = Instant::now() + timeout;
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) => panic!("event stream closed while waiting for {what}"),
            Ok(_) => {
                let r: EventRecord = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("bad event line {line:?}: {e}"));
                if want(&r) {
                    return r;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("reading events: {e}"),
        }
    }
    panic!("no {what} within {timeout:?}");
}

fn http(lab: &Lab, ns: Ns, method: &str, path: &str) -> String {
    lab.in_namespace(ns, || {
        let mut s = TcpStream::connect(METRICS).unwrap();
        write!(s, "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .unwrap()
}

/// Probes `dst` from `ns` until a probe comes back, and returns its record. Routes may come
/// up before the test has connected to the event stream (a node on its first run routes
/// at once), and a probe needs a route each way, so readiness is judged by a round trip.
fn probe_until_delivered(lab: &Lab, ns: Ns, events: &mut impl BufRead, dst: u32, first_id: u64) -> EventRecord {
    let deadline = Instant::now() + Duration::from_secs(5);
    for id in first_id.. {
        assert!(http(lab, ns, "POST", &format!("/probe?dst={dst}&id={id}")).starts_with("HTTP/1.1 200"));
        let r = wait_for(events, Duration::from_secs(3), "a probe judged", |r| r.event == Kind::Probe && r.probe_id == Some(id));
        if r.detail == Some(Detail::Delivered) {
            return r;
        }
        assert!(Instant::now() < deadline, "no probe from {ns:?} to node {dst} came back within 5 s; last: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    unreachable!("probe ids run out")
}

/// The node's metrics once they contain `needle`. XDP attaches in the background while the
/// protocol runs (routes may come up first), and a peer's counter appears with its first
/// packet after that, so the test waits for them rather than sampling once.
fn metrics_with(lab: &Lab, ns: Ns, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = http(lab, ns, "GET", "/metrics");
        if m.contains(needle) || Instant::now() > deadline {
            return m;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A scratch directory for one test's configs and keys, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("x0-live-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A lab for the test `what` (and its scratch directory, dropped after the lab), or `None`
/// with a loud message when not root.
fn lab_for(what: &str, tag: &str) -> Option<(Lab, Scratch)> {
    if !is_root() {
        eprintln!("SKIPPED: x0-node {what} test needs root to create network namespaces (CI runs it as root)");
        return None;
    }
    Some((Lab::new(tag).unwrap(), Scratch::new(tag)))
}

/// Starts nodes 1 in `a` and 2 in `b` on their interface `e0` and returns a's event stream
/// once a probe from a to b has come back.
fn two_nodes(lab: &mut Lab, dir: &Scratch, a: Ns, b: Ns) -> BufReader<TcpStream> {
    lab.spawn(a, NODE, &[&config(&dir.0, 1, &["e0"], true)], Stdio::inherit()).unwrap();
    lab.spawn(b, NODE, &[&config(&dir.0, 2, &["e0"], true)], Stdio::inherit()).unwrap();
    let stream = connect(lab, a);
    stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut events = BufReader::new(stream);
    probe_until_delivered(lab, a, &mut events, 2, 1);
    events
}

#[test]
fn three_nodes_on_veth_route_detect_a_crash_and_stop_cleanly() {
    let Some((mut lab, scratch)) = lab_for("netns", "t") else { return };
    let dir = &scratch.0;
    let (a, b, c) = (lab.add_namespace().unwrap(), lab.add_namespace().unwrap(), lab.add_namespace().unwrap());
    lab.link(a, "to-b", b, "to-a").unwrap();
    lab.link(b, "to-c", c, "to-b").unwrap();
    // c runs without XDP: the userspace-only mode, which must route all the same.
    let configs = [config(dir, 1, &["to-b"], true), config(dir, 2, &["to-a", "to-c"], true), config(dir, 3, &["to-b"], false)];
    let pa = lab.spawn(a, NODE, &[&configs[0]], Stdio::inherit()).unwrap();
    let pb = lab.spawn(b, NODE, &[&configs[1]], Stdio::inherit()).unwrap();
    lab.spawn(c, NODE, &[&configs[2]], Stdio::inherit()).unwrap();

    let stream = connect(&lab, a);
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut events = BufReader::new(stream);
    // A probe from a to c across b comes back, measured.
    let probe = probe_until_delivered(&lab, a, &mut events, 3, 100);
    assert!(probe.rtt_ns.is_some_and(|ns| ns > 0), "{probe:?}");
    assert!(http(&lab, a, "POST", "/probe?dst=99&id=8").starts_with("HTTP/1.1 200"));
    let nowhere = wait_for(&mut events, Duration::from_secs(3), "probe 8 judged", |r| r.event == Kind::Probe && r.probe_id == Some(8));
    assert_eq!(nowhere.detail, Some(Detail::NoRoute), "{nowhere:?}");
    let bad = http(&lab, a, "POST", "/probe?dst=x");
    assert!(bad.starts_with("HTTP/1.1 400") && bad.contains("dst=x"), "{bad}");

    let health = http(&lab, b, "GET", "/health");
    assert!(health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"), "{health}");
    // Connections are kept alive: two pipelined requests, one connection, two answers.
    let two = http(&lab, b, "GET", "/health HTTP/1.1\r\nhost: x\r\n\r\nGET /health");
    assert_eq!(two.matches("HTTP/1.1 200").count(), 2, "{two}");
    assert!(two.contains("connection: keep-alive") && two.contains("connection: close"), "{two}");
    // Clock faults: a small step and drift is taken; a clock that would run backwards is not.
    let stepped = http(&lab, b, "POST", "/clock?skew_ns=1000000&drift_ppm=10");
    assert!(stepped.starts_with("HTTP/1.1 200"), "{stepped}");
    let refused = http(&lab, b, "POST", "/clock?drift_ppm=-2000000");
    assert!(refused.starts_with("HTTP/1.1 400") && refused.contains("drift_ppm"), "{refused}");
    let resumed = http(&lab, b, "POST", "/resume");
    assert!(resumed.starts_with("HTTP/1.1 200"), "{resumed}");
    let metrics = http(&lab, b, "GET", "/metrics");
    assert!(metrics.contains("x0_neighbours 2"), "b should have two neighbours:\n{metrics}");
    assert!(metrics.contains("# TYPE x0_frames_rx counter"), "{metrics}");
    assert!(http(&lab, b, "GET", "/nope").starts_with("HTTP/1.1 404"));

    // XDP on veth: b counts its peers' packets in the kernel.
    let metrics = metrics_with(&lab, b, "x0_xdp_peer_packets_total{peer=\"fe80::");
    assert!(metrics.contains("x0_xdp_peer_packets_total{peer=\"fe80::"), "no per-peer XDP counters on b:\n{metrics}");
    let passed = metrics.lines().find_map(|l| l.strip_prefix("x0_xdp_passed_total ")).and_then(|v| v.parse::<u64>().ok());
    assert!(passed.is_some_and(|n| n > 0), "XDP passed nothing on b:\n{metrics}");

    // A partition injected in a's kernel: a stops hearing b, declares it down, and finds it
    // again when the loss is lifted.
    let up = |r: &EventRecord| r.event == Kind::Neighbour && r.peer == Some(2) && r.detail == Some(Detail::Up);
    let down = |r: &EventRecord| r.event == Kind::Neighbour && r.peer == Some(2) && r.detail == Some(Detail::Down);
    assert!(http(&lab, a, "POST", "/xdp/loss?p=1").starts_with("HTTP/1.1 200"));
    wait_for(&mut events, Duration::from_secs(3), "a losing b to injected loss", down);
    assert!(http(&lab, a, "POST", "/xdp/loss?p=0").starts_with("HTTP/1.1 200"));
    wait_for(&mut events, Duration::from_secs(3), "a finding b again", up);
    // Quarantine of b's address on a's link, then lifted.
    let addr = lab.address(b, "to-a").unwrap();
    assert!(http(&lab, a, "POST", &format!("/xdp/block?peer={addr}")).starts_with("HTTP/1.1 200"));
    wait_for(&mut events, Duration::from_secs(3), "a losing quarantined b", down);
    assert!(http(&lab, a, "POST", &format!("/xdp/unblock?peer={addr}")).starts_with("HTTP/1.1 200"));
    wait_for(&mut events, Duration::from_secs(3), "a finding b after quarantine", up);
    let refused = http(&lab, c, "POST", "/xdp/loss?p=1");
    assert!(refused.starts_with("HTTP/1.1 503") && refused.contains("userspace-only"), "{refused}");
    let bad = http(&lab, a, "POST", "/xdp/loss?p=2");
    assert!(bad.starts_with("HTTP/1.1 400") && bad.contains("between 0 and 1"), "{bad}");

    // b's process dies, its host stays up: the probe a sends through it comes back as a
    // port unreachable, and so does the confirmation ping, which is what declares b down.
    std::thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    lab.signal(pb, libc::SIGKILL);
    lab.wait(pb, Duration::from_secs(1)).expect("SIGKILL did not stop b");
    assert!(http(&lab, a, "POST", "/probe?dst=3&id=9").starts_with("HTTP/1.1 200"));
    let record = wait_for(&mut events, Duration::from_secs(3), "a declaring b down", down);
    eprintln!("a declared b down {:?} after SIGKILL (record {record:?})", killed.elapsed());
    let m = http(&lab, a, "GET", "/metrics");
    let downs = m.lines().find_map(|l| l.strip_prefix("x0_unreachable_downs_total ")).and_then(|v| v.trim().parse::<u64>().ok());
    assert_eq!(downs, Some(1), "b's host answered nothing a could use:\n{m}");
    // b comes back; killed and restarted at once, before a can notice the silence, it is
    // recognised as a new incarnation: every start draws a new one.
    let pb = lab.spawn(b, NODE, &[&configs[1]], Stdio::inherit()).unwrap();
    wait_for(&mut events, Duration::from_secs(3), "b back up", up);
    lab.signal(pb, libc::SIGKILL);
    lab.wait(pb, Duration::from_secs(1)).expect("SIGKILL did not stop b");
    lab.spawn(b, NODE, &[&configs[1]], Stdio::inherit()).unwrap();
    wait_for(&mut events, Duration::from_secs(3), "b seen restarted", |r| {
        r.event == Kind::Incident && r.detail == Some(Detail::NeighbourRestarted) && r.peer == Some(2)
    });

    // Judged on a's XDP counters, not on what its socket saw. a's one peer is b, and the
    // per-peer counter counts every packet before the drop decision.
    let counters = |lab: &Lab| {
        let m = http(lab, a, "GET", "/metrics");
        let value = |prefix: &str| {
            m.lines().find_map(|l| l.strip_prefix(prefix).and_then(|v| v.trim().parse::<f64>().ok())).unwrap_or(0.0)
        };
        let from_b = format!("x0_xdp_peer_packets_total{{peer=\"{addr}\"}} ");
        (value(&from_b), value("x0_xdp_passed_total "), value("x0_xdp_blocked_total "), value("x0_xdp_lost_total "))
    };
    // The blocklist drops all of b's packets.
    assert!(http(&lab, a, "POST", &format!("/xdp/block?peer={addr}")).starts_with("HTTP/1.1 200"));
    let before = counters(&lab);
    std::thread::sleep(Duration::from_millis(1500));
    let after = counters(&lab);
    assert!(http(&lab, a, "POST", &format!("/xdp/unblock?peer={addr}")).starts_with("HTTP/1.1 200"));
    let (sent, passed, blocked) = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
    // (The two counters are read one after the other: a packet may fall between them.)
    assert!(sent >= 5.0 && passed == 0.0 && (blocked - sent).abs() <= 1.0, "block: {sent} from b, {blocked} blocked, {passed} passed");
    // Injected loss at p = 0.5 drops a share within three standard deviations of a half.
    assert!(http(&lab, a, "POST", "/xdp/loss?p=0.5").starts_with("HTTP/1.1 200"));
    let before = counters(&lab);
    std::thread::sleep(Duration::from_secs(4));
    let after = counters(&lab);
    assert!(http(&lab, a, "POST", "/xdp/loss?p=0").starts_with("HTTP/1.1 200"));
    let (passed, lost) = (after.1 - before.1, after.3 - before.3);
    let n = passed + lost;
    let sigma = (0.25 / n).sqrt();
    assert!(n >= 20.0 && (lost / n - 0.5).abs() <= 3.0 * sigma, "loss 0.5: {lost} of {n} dropped (3 sigma = {:.3})", 3.0 * sigma);
    eprintln!("XDP: blocked {blocked} of {sent}; at p = 0.5 dropped {lost} of {n} ({:.3}, 3 sigma {:.3})", lost / n, 3.0 * sigma);

    lab.signal(pa, libc::SIGTERM);
    let status = lab.wait(pa, Duration::from_secs(3)).expect("x0-node did not stop within 3 s of SIGTERM");
    assert!(status.success(), "x0-node exited with {status} on SIGTERM");
}

/// Links with configured addresses only (no link-local address at all, as on some tunnels
/// and provisioned networks): the nodes greet, admit and route over those addresses, and
/// XDP counts the peer by its configured address.
#[test]
fn nodes_run_on_configured_addresses_without_link_local() {
    let Some((mut lab, dir)) = lab_for("configured-address", "ca") else { return };
    let (a, b) = (lab.add_namespace().unwrap(), lab.add_namespace().unwrap());
    lab.link(a, "e0", b, "e0").unwrap();
    lab.configure_address(a, "e0", "fd00:77::1".parse().unwrap()).unwrap();
    lab.configure_address(b, "e0", "fd00:77::2".parse().unwrap()).unwrap();
    assert!(lab.address(a, "e0").unwrap().segments()[0] == 0xfd00, "a has only its configured address");
    two_nodes(&mut lab, &dir, a, b);
    let metrics = metrics_with(&lab, a, "peer=\"fd00:77::2\"");
    assert!(metrics.contains("peer=\"fd00:77::2\""), "XDP counts b by its configured address:\n{metrics}");
}

/// Runs `nft` with `args` in `ns`, failing loudly if it is missing (`make test` installs it).
fn nft(lab: &Lab, ns: Ns, args: &str) {
    let out = lab
        .in_namespace(ns, || std::process::Command::new("nft").args(args.split(' ')).output())
        .unwrap()
        .unwrap_or_else(|e| panic!("running nft (package nftables; `make deps` installs it): {e}"));
    assert!(out.status.success(), "nft {args}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A host firewall on a drops every frame from b for 250 ms: a's XDP program still passes
/// them (it runs before the firewall), so a's kernel counts show b sending while a's node
/// hears nothing. a puts off its suspicion until b's frames get through again, at most
/// 250 ms plus two hello intervals after the last one it heard, within the 500 ms grace:
/// b is never suspected. Without the counts a suspects b 231 ms after the last hello it
/// heard, always within the 250 ms (and, when that hello came just before the firewall
/// rule, declares it down 95 ms later).
#[test]
fn frames_a_host_firewall_drops_do_not_make_an_alive_neighbour_suspected() {
    let Some((mut lab, dir)) = lab_for("host-firewall", "fw") else { return };
    let (a, b) = (lab.add_namespace().unwrap(), lab.add_namespace().unwrap());
    lab.link(a, "e0", b, "e0").unwrap();
    let mut events = two_nodes(&mut lab, &dir, a, b);
    let addr = lab.address(b, "e0").unwrap();
    metrics_with(&lab, a, &format!("x0_xdp_peer_passed_total{{peer=\"{addr}\"}}"));
    // A few more hellos, so that a has sampled its kernel's counts for b.
    std::thread::sleep(Duration::from_millis(300));

    nft(&lab, a, "add table ip6 x0test");
    nft(&lab, a, "add chain ip6 x0test in { type filter hook input priority 0 ; }");
    nft(&lab, a, &format!("add rule ip6 x0test in ip6 saddr {addr} meta l4proto udp drop"));
    std::thread::sleep(Duration::from_millis(250));
    nft(&lab, a, "delete table ip6 x0test");
    // Anything about b from the 250 ms and the second after them.
    let until = Instant::now() + Duration::from_secs(1);
    let mut line = String::new();
    let mut changes = Vec::new();
    while Instant::now() < until {
        line.clear();
        if let Ok(n) = events.read_line(&mut line)
            && n > 0
        {
            let r: EventRecord = serde_json::from_str(line.trim()).unwrap();
            if r.event == Kind::Neighbour && r.peer == Some(2) {
                changes.push(r.detail);
            }
        }
    }
    let m = http(&lab, a, "GET", "/metrics");
    let value = |name: &str| m.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<u64>().ok());
    let (unhandled, deferrals) = (value("x0_kernel_unhandled_total "), value("x0_kernel_deferrals_total "));
    eprintln!("host firewall: {unhandled:?} frames from b lost on a, {deferrals:?} suspicions put off, b's changes {changes:?}");
    assert!(changes.is_empty(), "a changed its view of b: {changes:?}");
    assert!(unhandled.is_some_and(|n| n >= 2), "a's kernel counted no frames lost on the host:\n{m}");
    assert!(deferrals.is_some_and(|n| n >= 1), "no suspicion was put off:\n{m}");
}

#[test]
fn a_bad_config_names_the_line_and_field() {
    let dir = Scratch::new("cfg");
    let path = dir.0.join("bad.yaml");
    std::fs::write(&path, "node_id: 1\nidentity: /tmp/k\ninterfaces: [eth0]\nprotocol:\n  hello_interval: 0s\n").unwrap();
    let out = std::process::Command::new(NODE).arg(&path).arg("--check").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.yaml:5:") && err.contains("hello_interval"), "{err}");
    std::fs::write(&path, "node_id: 1\nidentity: /tmp/k\ninterfaces: [eth0]\npeers: [{ interface: eth1, address: 'fe80::1' }]\n").unwrap();
    let out = std::process::Command::new(NODE).arg(&path).arg("--check").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("interface `eth1` is not in `interfaces`"), "{err}");
    std::fs::write(&path, "node_id: 1\nidentity: /tmp/k\ninterfaces: [eth0]\ncolour: blue\n").unwrap();
    let out = std::process::Command::new(NODE).arg(&path).arg("--check").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("colour") && err.contains("bad.yaml"), "{err}");
}
