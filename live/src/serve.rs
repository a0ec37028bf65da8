//! What x0-node serves on TCP: `/metrics` and `/health` over HTTP/1.1, and the JSON-lines
//! event stream. Both run beside the protocol loop and never block it.

use crate::daemon::{Control, ControlCommand, Shared, unix_nanos};
use x0tta6bl4::node::Behaviour;
use x0tta6bl4::scenario::FLOOD_RATE_PER_S_MAX;
use x0tta6bl4::units::Percent;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, warn};

/// Largest HTTP request head read; scrapers send a few hundred bytes.
const REQUEST_HEAD_MAX: usize = 8192;
/// A client that has not sent its (next) request by then is dropped. Connections are kept
/// alive between requests, so a harness probing many times a second pays for one connection,
/// not one per probe.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// `/health` fails when the protocol loop has not turned for this long (it wakes at least
/// once a second).
const HEALTH_STALE_MS: u64 = 3_000;

pub async fn http(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, &shared).await {
                        debug!(%peer, "HTTP connection ended: {e}");
                    }
                });
            }
            Err(e) => {
                warn!("accepting an HTTP client failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Answers requests on one connection until the client closes it, asks to close, sends a
/// body (no endpoint takes one), or stays idle past `REQUEST_TIMEOUT`.
async fn connection(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let head_len = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = match tokio::time::timeout(REQUEST_TIMEOUT, stream.read(&mut chunk)).await {
                Ok(read) => read?,
                Err(_) => return Ok(()),
            };
            if n == 0 || buf.len() + n > REQUEST_HEAD_MAX {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_len]).to_ascii_lowercase();
        let header = |name: &str| head.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()));
        let has_body = header("content-length:").is_some_and(|v| v != "0") || header("transfer-encoding:").is_some();
        // HTTP/1.1 keeps a connection by default, HTTP/1.0 closes it by default.
        let http10 = head.lines().next().is_some_and(|l| l.ends_with("http/1.0"));
        let connection = header("connection:");
        let close = has_body || connection.as_deref() == Some("close") || (http10 && connection.as_deref() != Some("keep-alive"));
        let (status, kind, body) = answer(&buf[..head_len], shared).await;
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: {}\r\n\r\n{body}",
            body.len(),
            if close { "close" } else { "keep-alive" }
        );
        stream.write_all(response.as_bytes()).await?;
        if close {
            return stream.shutdown().await;
        }
        buf.drain(..head_len);
    }
}

/// The status, content type and body answering one request head.
async fn answer(head: &[u8], shared: &Shared) -> (&'static str, &'static str, String) {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let target = String::from_utf8_lossy(target);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    match (method, path) {
        (b"GET", "/metrics") => {
            let mut m = shared.metrics.lock().expect("metrics lock");
            if let Some(xdp) = shared.xdp.lock().expect("xdp lock").as_ref() {
                m.update_xdp(xdp);
            }
            ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", m.render())
        }
        (b"POST", "/probe") => control(probe(shared, query).await, "sent; the outcome is a probe event on the event stream"),
        (b"POST", "/resume") => control(command(shared, ControlCommand::Resume).await, "ok"),
        (b"POST", "/clock") => control(clock(shared, query).await, "ok"),
        (b"POST", "/chaos/behaviour") => control(behaviour(shared, query).await, "ok"),
        (b"POST", "/chaos/flood") => control(flood(shared, query).await, "ok"),
        (b"POST", "/xdp/loss" | "/xdp/block" | "/xdp/unblock") => control(xdp_control(shared, path, query).await, "ok"),
        (b"GET", "/health") => {
            let age_ms = (unix_nanos() / 1_000_000).saturating_sub(shared.heartbeat_ms.load(Ordering::Relaxed));
            if age_ms <= HEALTH_STALE_MS {
                ("200 OK", "text/plain", "ok\n".to_string())
            } else {
                ("503 Service Unavailable", "text/plain", format!("protocol loop stalled for {age_ms} ms\n"))
            }
        }
        (b"GET" | b"POST", _) => ("404 Not Found", "text/plain", "not found; try GET /metrics, GET /health, POST /probe, /clock, /resume, /chaos/behaviour, /chaos/flood, /xdp/loss, /xdp/block, /xdp/unblock\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET and POST are served\n".to_string()),
    }
}

/// An HTTP status line and a message for the body.
type Reply = (&'static str, String);

/// The plain-text answer to a control request: `done` on success, else the refusal.
fn control(result: Result<(), Reply>, done: &str) -> (&'static str, &'static str, String) {
    match result {
        Ok(()) => ("200 OK", "text/plain", format!("{done}\n")),
        Err((status, msg)) => (status, "text/plain", format!("{msg}\n")),
    }
}

fn bad(msg: String) -> Reply {
    ("400 Bad Request", msg)
}

/// A request's query parameters, checked against the names an endpoint takes.
struct Query<'q>(Vec<(&'q str, &'q str)>);

impl<'q> Query<'q> {
    fn parse(query: &'q str, known: &[&str]) -> Result<Self, Reply> {
        let mut pairs = Vec::new();
        for pair in query.split('&').filter(|s| !s.is_empty()) {
            match pair.split_once('=') {
                Some((k, v)) if known.contains(&k) => pairs.push((k, v)),
                _ => return Err(bad(format!("unknown parameter `{pair}`; expected {}", known.join("= and ") + "="))),
            }
        }
        Ok(Query(pairs))
    }

    /// Parameter `name` as a `T`, if given; `what` says what a good value is.
    fn get<T: std::str::FromStr<Err: std::fmt::Display>>(&self, name: &str, what: &str) -> Result<Option<T>, Reply> {
        let Some(&(_, v)) = self.0.iter().find(|(k, _)| *k == name) else { return Ok(None) };
        v.parse().map(Some).map_err(|e| bad(format!("{name}={v}: {e}; give {what}")))
    }

    fn require<T: std::str::FromStr<Err: std::fmt::Display>>(&self, name: &str, what: &str) -> Result<T, Reply> {
        self.get(name, what)?.ok_or_else(|| bad(format!("{name}= is required")))
    }
}

/// `POST /probe?dst=N&id=K`: an end-to-end probe from this node to node N.
async fn probe(shared: &Shared, query: &str) -> Result<(), Reply> {
    let q = Query::parse(query, &["dst", "id"])?;
    let (dst, id) = (q.require::<u32>("dst", "a node id")?, q.require::<u64>("id", "a number")?);
    command(shared, ControlCommand::Probe { dst: x0tta6bl4::ids::NodeId(dst), id }).await
}

/// `POST /clock?skew_ns=N[&drift_ppm=P]`: a clock fault (step and drift of the clock the
/// protocol reads), for the namespace lab and for operators testing their detectors.
async fn clock(shared: &Shared, query: &str) -> Result<(), Reply> {
    let q = Query::parse(query, &["skew_ns", "drift_ppm"])?;
    let skew_ns = q.get::<i64>("skew_ns", "nanoseconds, negative to step back")?.unwrap_or(0);
    let drift_ppm = q.get::<i64>("drift_ppm", "parts per million, negative for a slow clock")?.unwrap_or(0);
    if drift_ppm.abs() >= 1_000_000 {
        return Err(bad(format!("drift_ppm={drift_ppm}: a clock must keep running forward; give less than 1000000 in size")));
    }
    command(shared, ControlCommand::Clock { skew_ns, drift_ppm }).await
}

/// `POST /chaos/behaviour?kind=blackhole|grey_hole|honest[&drop=0.5]`: Byzantine fault
/// injection for the namespace lab; `drop` is a grey hole's share of transit dropped.
async fn behaviour(shared: &Shared, query: &str) -> Result<(), Reply> {
    let q = Query::parse(query, &["kind", "drop"])?;
    let drop = q.get::<f64>("drop", "a share from 0 to 1")?;
    let b = match (q.require::<String>("kind", "honest, blackhole or grey_hole")?.as_str(), drop) {
        ("honest", None) => Behaviour::Honest,
        ("blackhole", None) => Behaviour::Blackhole,
        ("grey_hole", Some(p)) if (0.0..=1.0).contains(&p) => Behaviour::GreyHole { drop: Percent::from_ratio(p) },
        ("grey_hole", _) => return Err(bad("kind=grey_hole needs drop= between 0 and 1".into())),
        ("honest" | "blackhole", Some(_)) => return Err(bad("drop= goes with kind=grey_hole only".into())),
        (other, _) => return Err(bad(format!("kind={other}: expected honest, blackhole or grey_hole"))),
    };
    command(shared, ControlCommand::Behaviour(b)).await
}

/// `POST /chaos/flood?rate_per_s=N`: Byzantine fault injection, random frames from this
/// node at N per second per interface (0 stops).
async fn flood(shared: &Shared, query: &str) -> Result<(), Reply> {
    let q = Query::parse(query, &["rate_per_s"])?;
    let rate_per_s = q.require::<u32>("rate_per_s", "frames per second, 0 to stop")?;
    if rate_per_s > FLOOD_RATE_PER_S_MAX {
        return Err(bad(format!("rate_per_s={rate_per_s}: at most {FLOOD_RATE_PER_S_MAX}")));
    }
    command(shared, ControlCommand::Flood { rate_per_s }).await
}

/// Hands a command to the protocol loop and waits for its answer.
async fn command(shared: &Shared, command: ControlCommand) -> Result<(), Reply> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    shared.commands.try_send(Control { command, reply }).map_err(|_| ("503 Service Unavailable", "command queue full".to_string()))?;
    match answer.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(("409 Conflict", e.to_string())),
        Err(_) => Err(("503 Service Unavailable", "the node is stopping".to_string())),
    }
}

/// The kernel-side controls, for operators and the namespace lab:
/// `POST /xdp/loss?p=0.3[&peer=fe80::1]` (p = 1 is a partition, p = 0 on a peer removes its
/// override), `POST /xdp/block?peer=…` (quarantine), `POST /xdp/unblock?peer=…`.
async fn xdp_control(shared: &Shared, path: &str, query: &str) -> Result<(), Reply> {
    let q = Query::parse(query, &["peer", "p"])?;
    // Just after start, XDP may still be attaching: answer once it is there or known absent.
    let _ = shared.xdp_settled.clone().wait_for(|settled| *settled).await;
    let peer = q.get::<std::net::Ipv6Addr>("peer", "an IPv6 address")?;
    let p = q.get::<f64>("p", "a probability from 0 to 1")?;
    let mut xdp = shared.xdp.lock().expect("xdp lock");
    let xdp = xdp.as_mut().ok_or(("503 Service Unavailable", "XDP is not attached: this node runs in userspace-only mode".to_string()))?;
    let result = match path {
        "/xdp/loss" => xdp.set_loss(peer, p.ok_or_else(|| bad("p= is required".into()))?),
        _ => xdp.set_blocked(peer.ok_or_else(|| bad("peer= is required".into()))?, path == "/xdp/block"),
    };
    result.map_err(|e| bad(e.to_string()))
}

/// Streams every event from the moment a client connects, one JSON object per line. A
/// client that falls more than the backlog behind gets `{"lagged":N}` in place of the N
/// events it missed, so a gap is never silent.
pub async fn events(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!("accepting an event-stream client failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut rx = shared.events.subscribe();
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                let line = match rx.recv().await {
                    Ok(line) => line,
                    Err(RecvError::Lagged(n)) => {
                        shared.metrics.lock().expect("metrics lock").events_lagged.inc_by(n);
                        Arc::from(format!("{{\"lagged\":{n}}}"))
                    }
                    Err(RecvError::Closed) => return,
                };
                if stream.write_all(line.as_bytes()).await.is_err() || stream.write_all(b"\n").await.is_err() {
                    debug!(%peer, "event-stream client went away");
                    return;
                }
            }
        });
    }
}
