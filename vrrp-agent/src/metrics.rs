//! Prometheus text exposition (format 0.0.4) of the daemon's [`Status`], served
//! by a deliberately tiny HTTP/1.1 server on `global.metrics_listen`:
//! `GET /metrics` answers the metrics, anything else 404/405, one request per
//! connection.
//!
//! Every series carries `instance`, `interface` and `vrid` labels. Beyond the
//! SPEC list there are `vrrp_effective_priority`, `vrrp_garp_sent_total`,
//! `vrrp_priority_zero_{received,sent}_total`, `vrrp_advert_interval_seconds`,
//! `vrrp_master_advert_interval_seconds`, `vrrp_xdp_info{mode}` and
//! `vrrp_agent_connections_refused_total`. Connections go through the
//! bounded accept loop of [`crate::control::accept`].

use std::{fmt::Write as _, future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use vrrp_common::DropReason;

use crate::control::{ConnLimit, InstanceStatus, STATES, Status, accept};

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const MAX_REQUEST_HEAD: usize = 8192;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Per-instance gauges: name, help, value.
type Series<T> = (&'static str, &'static str, fn(&InstanceStatus) -> T);

const GAUGES: [Series<f64>; 4] = [
    ("vrrp_priority", "Configured priority.", |i| {
        i.priority.into()
    }),
    ("vrrp_effective_priority", "Priority in use.", |i| {
        i.effective_priority.into()
    }),
    (
        "vrrp_advert_interval_seconds",
        "Our advertisement interval.",
        |i| i.advert_interval_ms as f64 / 1000.0,
    ),
    (
        "vrrp_master_advert_interval_seconds",
        "Advertisement interval learned from the master.",
        |i| i.master_adver_interval_ms as f64 / 1000.0,
    ),
];

const COUNTERS: [Series<u64>; 7] = [
    ("vrrp_transitions_total", "State changes.", |i| {
        i.transitions
    }),
    (
        "vrrp_adverts_received_total",
        "Valid adverts received.",
        |i| i.counters.adverts_rx,
    ),
    ("vrrp_adverts_sent_total", "Adverts sent.", |i| {
        i.counters.adverts_tx
    }),
    (
        "vrrp_priority_zero_received_total",
        "Priority-0 adverts received.",
        |i| i.counters.prio0_rx,
    ),
    (
        "vrrp_priority_zero_sent_total",
        "Priority-0 adverts sent.",
        |i| i.counters.prio0_tx,
    ),
    (
        "vrrp_garp_sent_total",
        "Gratuitous ARPs and unsolicited NAs sent.",
        |i| i.counters.garp_tx,
    ),
    (
        "vrrp_adverts_first_not_link_local_total",
        "IPv6 adverts accepted although their first address is not link-local.",
        |i| i.counters.rx_first_not_link_local,
    ),
];

/// Renders the metrics page.
pub fn render(status: &Status) -> String {
    let mut out = String::new();
    let insts = &status.instances;
    family(
        &mut out,
        "vrrp_state",
        "gauge",
        "1 for the instance's current state, 0 for the others.",
    );
    for i in insts {
        for s in STATES {
            let v = u8::from(i.state == s);
            let _ = writeln!(out, "vrrp_state{{{},state=\"{s}\"}} {v}", labels(i));
        }
    }
    for (name, help, f) in GAUGES {
        gauge(&mut out, insts, name, help, f);
    }
    for (name, help, f) in COUNTERS {
        counter(&mut out, insts, name, help, f);
    }
    drops(&mut out, insts);
    vip_traffic(&mut out, insts);
    interarrival(&mut out, insts);
    checks(&mut out, status);
    family(
        &mut out,
        "vrrp_xdp_info",
        "gauge",
        "Data plane mode in use.",
    );
    let _ = writeln!(
        out,
        "vrrp_xdp_info{{mode=\"{}\"}} 1",
        escape(&status.xdp.mode)
    );
    family(
        &mut out,
        "vrrp_agent_connections_refused_total",
        "counter",
        "Control socket and metrics connections refused at the connection cap.",
    );
    let _ = writeln!(
        out,
        "vrrp_agent_connections_refused_total {}",
        status.connections_refused
    );
    out
}

/// `vrrp_check_up{check}`: 1 up, 0 down or no result yet; and each
/// check's consecutive equal results.
fn checks(out: &mut String, status: &Status) {
    if status.checks.is_empty() {
        return;
    }
    family(
        out,
        "vrrp_check_up",
        "gauge",
        "1 when the health check is up, 0 when down or without a result yet.",
    );
    for c in &status.checks {
        let up = u8::from(c.state == "up");
        let _ = writeln!(out, "vrrp_check_up{{check=\"{}\"}} {up}", escape(&c.name));
    }
}

fn drops(out: &mut String, insts: &[InstanceStatus]) {
    family(
        out,
        "vrrp_rx_dropped_total",
        "counter",
        "Adverts dropped, by reason.",
    );
    for i in insts {
        let reasons = DropReason::ALL
            .iter()
            .map(|r| (r.label(), i.counters.rx_dropped.get(*r)))
            .chain([("vrid", i.counters.rx_dropped.vrid)]);
        for (reason, n) in reasons {
            let _ = writeln!(
                out,
                "vrrp_rx_dropped_total{{{},reason=\"{reason}\"}} {n}",
                labels(i)
            );
        }
    }
}

fn vip_traffic(out: &mut String, insts: &[InstanceStatus]) {
    for (name, help, bytes) in [
        (
            "vrrp_vip_rx_packets_total",
            "Packets addressed to a virtual IP.",
            false,
        ),
        (
            "vrrp_vip_rx_bytes_total",
            "Bytes addressed to a virtual IP.",
            true,
        ),
    ] {
        family(out, name, "counter", help);
        for i in insts {
            for v in &i.vip_counters {
                let n = if bytes { v.rx_bytes } else { v.rx_packets };
                let _ = writeln!(out, "{name}{{{},vip=\"{}\"}} {n}", labels(i), v.vip);
            }
        }
    }
}

fn interarrival(out: &mut String, insts: &[InstanceStatus]) {
    let name = "vrrp_advert_interarrival_seconds";
    family(
        out,
        name,
        "histogram",
        "Time between consecutive adverts (kernel receive timestamps).",
    );
    for i in insts {
        let h = &i.advert_interarrival;
        let cum = h.cumulative();
        for (b, c) in h.bounds.iter().zip(&cum) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{},le=\"{}\"}} {c}",
                labels(i),
                float(*b)
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{},le=\"+Inf\"}} {}",
            labels(i),
            h.count
        );
        let _ = writeln!(out, "{name}_sum{{{}}} {}", labels(i), float(h.sum));
        let _ = writeln!(out, "{name}_count{{{}}} {}", labels(i), h.count);
    }
}

fn labels(i: &InstanceStatus) -> String {
    format!(
        "instance=\"{}\",interface=\"{}\",vrid=\"{}\"",
        escape(&i.name),
        escape(&i.interface),
        i.vrid
    )
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(
    out: &mut String,
    insts: &[InstanceStatus],
    name: &str,
    help: &str,
    f: impl Fn(&InstanceStatus) -> f64,
) {
    family(out, name, "gauge", help);
    for i in insts {
        let _ = writeln!(out, "{name}{{{}}} {}", labels(i), float(f(i)));
    }
}

fn counter(
    out: &mut String,
    insts: &[InstanceStatus],
    name: &str,
    help: &str,
    f: impl Fn(&InstanceStatus) -> u64,
) {
    family(out, name, "counter", help);
    for i in insts {
        let _ = writeln!(out, "{name}{{{}}} {}", labels(i), f(i));
    }
}

fn float(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Label value escaping of the text format: backslash, double quote, newline.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Binds the metrics listener.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `GET /metrics` forever, at most `limit`'s connections at once
/// (shared with the control socket); `status` is asked for a fresh
/// [`Status`] per scrape.
pub async fn serve<F, Fut>(listener: TcpListener, limit: Arc<ConnLimit>, status: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Status> + Send + 'static,
{
    let status = Arc::new(status);
    accept::serve(&listener, "metrics", limit, move |stream| {
        let status = status.clone();
        async move { handle(stream, &*status).await }
    })
    .await
}

async fn handle<F, Fut>(mut stream: TcpStream, status: &F) -> io::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Status>,
{
    let head = tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "request head timeout"))??;
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (code, ctype, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", CONTENT_TYPE, render(&status().await)),
        ("GET" | "HEAD", "/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            "vrrp-agent: metrics at /metrics\n".to_owned(),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".to_owned(),
        ),
    };
    let mut resp = format!(
        "HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        resp.push_str(&body);
    }
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

async fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Histogram, MAX_CONNECTIONS, VipCounters};

    fn status() -> Status {
        let mut i = InstanceStatus {
            name: "VI \"1\"".into(),
            interface: "eth0".into(),
            vrid: 51,
            state: crate::proto::State::Backup,
            priority: 100,
            effective_priority: 90,
            transitions: 2,
            vip_counters: vec![VipCounters {
                vip: "192.0.2.10".parse().unwrap(),
                rx_packets: 7,
                rx_bytes: 700,
            }],
            ..Default::default()
        };
        i.counters.adverts_rx = 40;
        i.counters.rx_dropped.add(DropReason::Checksum, 3);
        i.counters.rx_dropped.vrid = 4;
        i.counters.rx_dropped.add(DropReason::Auth, 2);
        i.counters.rx_first_not_link_local = 6;
        i.advert_interarrival = Histogram::new(&[0.5, 1.0]);
        i.advert_interarrival.observe(Duration::from_millis(1000));
        i.advert_interarrival.observe(Duration::from_millis(1000));
        i.advert_interarrival.observe(Duration::from_millis(300));
        i.advert_interarrival.observe(Duration::from_secs(3));
        Status {
            router_id: "lb1".into(),
            instances: vec![i],
            checks: vec![
                crate::control::CheckStatus {
                    name: "redis_ping".into(),
                    state: "up".into(),
                    ..Default::default()
                },
                crate::control::CheckStatus {
                    name: "redis_alive".into(),
                    state: "init".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn renders_spec_series() {
        let text = render(&status());
        let l = r#"instance="VI \"1\"",interface="eth0",vrid="51""#;
        for want in [
            format!("vrrp_state{{{l},state=\"BACKUP\"}} 1"),
            format!("vrrp_state{{{l},state=\"MASTER\"}} 0"),
            format!("vrrp_state{{{l},state=\"INIT\"}} 0"),
            format!("vrrp_priority{{{l}}} 100"),
            format!("vrrp_effective_priority{{{l}}} 90"),
            format!("vrrp_transitions_total{{{l}}} 2"),
            format!("vrrp_adverts_received_total{{{l}}} 40"),
            format!("vrrp_adverts_sent_total{{{l}}} 0"),
            format!("vrrp_rx_dropped_total{{{l},reason=\"checksum\"}} 3"),
            format!("vrrp_rx_dropped_total{{{l},reason=\"ttl\"}} 0"),
            format!("vrrp_rx_dropped_total{{{l},reason=\"vrid\"}} 4"),
            format!("vrrp_rx_dropped_total{{{l},reason=\"auth\"}} 2"),
            format!("vrrp_adverts_first_not_link_local_total{{{l}}} 6"),
            format!("vrrp_vip_rx_packets_total{{{l},vip=\"192.0.2.10\"}} 7"),
            format!("vrrp_vip_rx_bytes_total{{{l},vip=\"192.0.2.10\"}} 700"),
            format!("vrrp_advert_interarrival_seconds_bucket{{{l},le=\"0.5\"}} 1"),
            format!("vrrp_advert_interarrival_seconds_bucket{{{l},le=\"1\"}} 3"),
            format!("vrrp_advert_interarrival_seconds_bucket{{{l},le=\"+Inf\"}} 4"),
            format!("vrrp_advert_interarrival_seconds_count{{{l}}} 4"),
            format!("vrrp_advert_interarrival_seconds_sum{{{l}}} 5.3"),
            "vrrp_check_up{check=\"redis_ping\"} 1".to_owned(),
            "vrrp_check_up{check=\"redis_alive\"} 0".to_owned(),
            "# TYPE vrrp_check_up gauge".to_owned(),
            "# TYPE vrrp_advert_interarrival_seconds histogram".to_owned(),
            "# TYPE vrrp_transitions_total counter".to_owned(),
        ] {
            assert!(
                text.lines().any(|x| x == want),
                "missing `{want}` in\n{text}"
            );
        }
        // One series per state for the instance.
        assert_eq!(
            text.lines()
                .filter(|x| x.starts_with("vrrp_state{"))
                .count(),
            STATES.len()
        );
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(line.starts_with("vrrp_"), "{line}");
        }
    }

    #[tokio::test]
    async fn http_endpoint() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, ConnLimit::new(MAX_CONNECTIONS), || async {
            status()
        }));
        let get = |path: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = get("/metrics").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains(CONTENT_TYPE));
        let body = ok.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(body, render(&status()));
        let nf = get("/nope").await;
        assert!(nf.starts_with("HTTP/1.1 404"), "{nf}");
        server.abort();
    }
}
