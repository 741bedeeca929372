//! Redis in the lab, for the hot-standby test, `cargo xtask demo redis` and
//! the "service dies" benchmark: a redis-server per host (started by the
//! caller inside the host's namespace from [`server_config`]), a minimal
//! RESP client over `std::net::TcpStream` ([`Conn`]), and a [`Writer`] that
//! writes an increasing counter through the VIP every millisecond and
//! records each client-visible write outage with the acknowledged writes the
//! new master turned out not to have.
//!
//! The client is ours, not the `redis` crate: it needs five commands, one
//! connection at a time and exact control over timeouts, and it keeps the
//! lab library free of an async runtime (xtask builds it without tokio).

use std::{
    fmt,
    io::{self, BufReader, Write as _},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::netns;

/// The port every lab Redis listens on.
pub const PORT: u16 = 6379;
/// The key the [`Writer`] writes.
pub const KEY: &str = "counter";
/// Longest bulk string or array the client accepts (it reads small replies only).
const MAX_LEN: i64 = 1 << 20;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Status(String),
    /// `-ERR ...`, `-READONLY ...`.
    Error(String),
    /// `:42`.
    Int(i64),
    /// `$3\r\nfoo` or the null bulk string `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*2 ...` or the null array `*-1`.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as text (status, bulk or integer), if it is one of those.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Status(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Reply::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Error(e) => write!(f, "-{e}"),
            Reply::Array(Some(items)) => {
                let parts: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", parts.join(", "))
            }
            Reply::Array(None) | Reply::Bulk(None) => write!(f, "(nil)"),
            other => write!(f, "{}", other.text().unwrap_or_default()),
        }
    }
}

/// One connection to a Redis server.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects within `timeout`; each command then has `timeout` to answer.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Conn {
            reader: BufReader::new(stream),
        })
    }

    /// Sends one command and reads its reply (an error reply is `Ok`).
    pub fn cmd(&mut self, args: &[&str]) -> io::Result<Reply> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a.as_bytes());
            req.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&req)?;
        read_reply(&mut self.reader, 0)
    }
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn read_line(r: &mut impl io::BufRead) -> io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    line.strip_suffix("\r\n")
        .map(str::to_owned)
        .ok_or_else(|| bad(format!("RESP line without CRLF: {line:?}")))
}

fn read_reply(r: &mut impl io::BufRead, depth: u8) -> io::Result<Reply> {
    if depth > 8 {
        return Err(bad("RESP reply nested too deep"));
    }
    let line = read_line(r)?;
    let (kind, rest) = line
        .split_at_checked(1)
        .ok_or_else(|| bad("empty RESP line"))?;
    let len = || -> io::Result<i64> {
        let n: i64 = rest
            .parse()
            .map_err(|_| bad(format!("bad RESP length {rest:?}")))?;
        if n > MAX_LEN {
            return Err(bad(format!("RESP length {n} too large")));
        }
        Ok(n)
    };
    match kind {
        "+" => Ok(Reply::Status(rest.to_owned())),
        "-" => Ok(Reply::Error(rest.to_owned())),
        ":" => rest
            .parse()
            .map(Reply::Int)
            .map_err(|_| bad(format!("bad RESP integer {rest:?}"))),
        "$" => {
            let Ok(n) = usize::try_from(len()?) else {
                return Ok(Reply::Bulk(None));
            };
            let mut buf = vec![0; n + 2];
            io::Read::read_exact(r, &mut buf)?;
            if buf.split_off(n) != b"\r\n" {
                return Err(bad("RESP bulk string without CRLF"));
            }
            Ok(Reply::Bulk(Some(buf)))
        }
        "*" => {
            let Ok(n) = usize::try_from(len()?) else {
                return Ok(Reply::Array(None));
            };
            (0..n)
                .map(|_| read_reply(r, depth + 1))
                .collect::<io::Result<Vec<_>>>()
                .map(|v| Reply::Array(Some(v)))
        }
        _ => Err(bad(format!("unknown RESP type {kind:?}"))),
    }
}

/// Runs `f` on a thread that has entered network namespace `ns`.
pub fn in_netns<R: Send>(ns: &str, f: impl FnOnce() -> R + Send) -> anyhow::Result<R> {
    thread::scope(|s| {
        s.spawn(|| {
            netns::enter_named(ns)?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// One command to `addr` from namespace `ns`, on a fresh connection.
pub fn command(ns: &str, addr: &str, args: &[&str]) -> anyhow::Result<Reply> {
    let sa: SocketAddr = format!("{addr}:{PORT}").parse()?;
    in_netns(ns, || {
        Conn::connect(sa, Duration::from_millis(500))?
            .cmd(args)
            .with_context(|| format!("{args:?} to {sa}"))
    })?
}

/// `ROLE`'s first element ("master", "slave") of the Redis at `addr`, seen
/// from `ns`; `None` if it does not answer.
pub fn role(ns: &str, addr: &str) -> Option<String> {
    match command(ns, addr, &["ROLE"]).ok()? {
        Reply::Array(Some(items)) => items.first()?.text(),
        _ => None,
    }
}

/// Whether the Redis at `addr` is a replica whose link to its master is up.
pub fn replica_in_sync(ns: &str, addr: &str) -> bool {
    command(ns, addr, &["INFO", "replication"])
        .ok()
        .and_then(|r| r.text())
        .is_some_and(|t| t.contains("master_link_status:up"))
}

/// The counter the Redis at `addr` holds (0 if none); `None` if unreachable.
pub fn counter(ns: &str, addr: &str) -> Option<u64> {
    parse_counter(&command(ns, addr, &["GET", KEY]).ok()?)
}

fn parse_counter(r: &Reply) -> Option<u64> {
    match r {
        Reply::Bulk(None) => Some(0),
        Reply::Bulk(Some(b)) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// A redis.conf for a lab host: listening on loopback (for the checks and
/// the notify scripts), the host's address and the VIP (which it may not
/// hold yet: the namespace needs `net.ipv4.ip_nonlocal_bind = 1`), no
/// persistence, files in `dir`, the pid in `pidfile`; a replica of
/// `replicaof` if given. `repl-diskless-sync-delay 0`: Redis 7 otherwise
/// waits 5 s before each full resync for more replicas to join.
pub fn server_config(dir: &Path, bind: &[&str], pidfile: &Path, replicaof: Option<&str>) -> String {
    let mut c = format!(
        "port {PORT}\nbind 127.0.0.1 {}\nprotected-mode no\ndaemonize no\nsave \"\"\nappendonly no\n\
         dir {}\npidfile {}\nlogfile \"\"\nrepl-diskless-sync yes\nrepl-diskless-sync-delay 0\n",
        bind.join(" "),
        dir.display(),
        pidfile.display()
    );
    if let Some(master) = replicaof {
        c.push_str(&format!("replicaof {master} {PORT}\n"));
    }
    c
}

/// Writes `<dir>/<name>.conf` ([`server_config`]) and returns the argv that
/// starts it: `redis-server` itself, or with `comm` a symlink to it named
/// `comm` (at most 15 bytes), so that this node's Redis has a process name
/// of its own (all lab hosts share one pid namespace, and a check by
/// process name would see every host's `redis-server`).
pub fn server_argv(
    dir: &Path,
    name: &str,
    config: &str,
    comm: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let conf = dir.join(format!("{name}.conf"));
    std::fs::write(&conf, config).with_context(|| format!("write {}", conf.display()))?;
    let bin = match comm {
        None => PathBuf::from("redis-server"),
        Some(comm) => {
            if comm.len() > 15 {
                bail!("process name {comm:?} longer than 15 bytes");
            }
            let real = which("redis-server").context("redis-server not installed")?;
            let link = dir.join(comm);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&real, &link)
                .with_context(|| format!("symlink {}", link.display()))?;
            link
        }
    };
    Ok(vec![bin.display().to_string(), conf.display().to_string()])
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Waits until the Redis at `addr`, seen from `ns`, answers PING.
pub fn wait_ready(ns: &str, addr: &str, timeout: Duration) -> anyhow::Result<()> {
    let t0 = Instant::now();
    loop {
        match command(ns, addr, &["PING"]) {
            Ok(Reply::Status(s)) if s == "PONG" => return Ok(()),
            r if t0.elapsed() > timeout => bail!("redis at {addr} not ready: {r:?}"),
            _ => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// One client-visible write outage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outage {
    /// When the first write failed, since the writer started (ms).
    pub at_ms: f64,
    /// From the last acknowledged write before it to the first after it (ms).
    pub ms: f64,
    /// The counter last acknowledged before it.
    pub last_acked: u64,
    /// With `WAIT`: the counter last confirmed on a replica before it.
    pub last_confirmed: Option<u64>,
    /// The counter the server answering after it held, read before the
    /// first write to it (`None` if it could not be read).
    pub found: Option<u64>,
}

impl Outage {
    /// Acknowledged writes (with `WAIT`: writes confirmed on a replica)
    /// the server after the outage does not have.
    pub fn lost(&self) -> u64 {
        let last = self.last_confirmed.unwrap_or(self.last_acked);
        self.found.map_or(0, |found| last.saturating_sub(found))
    }
}

/// What a [`Writer`] saw.
#[derive(Debug, Clone, Default)]
pub struct WriterReport {
    /// Writes acknowledged (the last counter value acknowledged).
    pub acked: u64,
    /// With `WAIT`: the last counter value a replica was confirmed to have.
    pub confirmed: Option<u64>,
    /// Outages, in order; one still open at the end is left out.
    pub outages: Vec<Outage>,
    /// The last error seen, for diagnostics.
    pub last_error: Option<String>,
}

/// A client writing `SET counter N` (N = 1, 2, …) to `target` every
/// `period` from a thread inside a namespace. A write counts as
/// acknowledged on `+OK`; otherwise the same N is written again. With
/// `wait`, each write is followed by `WAIT 1 <ms>`, and N is *confirmed*
/// when that says a replica has it (a write is not retried when it is not:
/// after a failover there may be no replica for a long time). After a failure
/// it reconnects as fast as it can (connect timeout 20 ms) and, on the first
/// server that answers, reads the counter before writing again.
pub struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    handle: JoinHandle<WriterReport>,
}

impl Writer {
    /// Starts writing from namespace `ns` to `target` (the VIP).
    pub fn start(
        ns: &str,
        target: &str,
        period: Duration,
        wait: Option<Duration>,
    ) -> anyhow::Result<Writer> {
        let sa: SocketAddr = format!("{target}:{PORT}").parse()?;
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let ns = ns.to_owned();
        let (s, a) = (stop.clone(), acked.clone());
        let handle = thread::Builder::new()
            .name("redis-writer".into())
            .spawn(move || {
                if let Err(e) = netns::enter_named(&ns) {
                    return WriterReport {
                        last_error: Some(format!("{e:#}")),
                        ..WriterReport::default()
                    };
                }
                write_loop(sa, period, wait, &s, &a)
            })?;
        Ok(Writer {
            stop,
            acked,
            handle,
        })
    }

    /// Writes acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` writes are acknowledged; false on timeout.
    pub fn wait_acked(&self, n: u64, timeout: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if self.acked() >= n {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Stops and returns what it saw.
    pub fn stop(self) -> WriterReport {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_else(|_| WriterReport {
            last_error: Some("the writer thread panicked".into()),
            ..WriterReport::default()
        })
    }
}

/// The writer's loop (runs inside the client namespace).
fn write_loop(
    target: SocketAddr,
    period: Duration,
    wait: Option<Duration>,
    stop: &AtomicBool,
    acked_out: &AtomicU64,
) -> WriterReport {
    const CONNECT: Duration = Duration::from_millis(20);
    // A reply later than this breaks the connection. WAIT answers only
    // after its timeout when no replica confirms, and Redis checks blocked
    // clients' timeouts every 100 ms (hz 10): allow for both.
    let reply = Duration::from_millis(200) + wait.map_or(Duration::ZERO, |w| w * 5);
    let t0 = Instant::now();
    let mut report = WriterReport::default();
    let mut conn: Option<Conn> = None;
    let mut last_ack = t0;
    // The open outage: when it began, and whether the counter was read yet.
    let mut open: Option<Outage> = None;
    let mut next = t0;
    let wait_ms = wait.map(|w| w.as_millis().to_string());
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
        next = next.max(now - period) + period;
        let c = match &mut conn {
            Some(c) => c,
            None => match Conn::connect(target, CONNECT) {
                Ok(mut c) => {
                    let _ = c.set_reply_timeout(reply);
                    if let Some(o) = open.as_mut().filter(|o| o.found.is_none()) {
                        o.found = c.cmd(&["GET", KEY]).ok().as_ref().and_then(parse_counter);
                    }
                    conn.insert(c)
                }
                Err(e) => {
                    fail(&mut report, &mut open, t0, format!("connect: {e}"));
                    continue;
                }
            },
        };
        let n = (report.acked + 1).to_string();
        let ok = match c.cmd(&["SET", KEY, &n]) {
            Ok(Reply::Status(s)) if s == "OK" => match &wait_ms {
                None => Ok(()),
                Some(ms) => match c.cmd(&["WAIT", "1", ms]) {
                    Ok(Reply::Int(k)) => {
                        if k >= 1 {
                            report.confirmed = Some(report.acked + 1);
                        }
                        Ok(())
                    }
                    Ok(r) => Err((format!("WAIT: {r}"), false)),
                    Err(e) => Err((format!("WAIT: {e}"), true)),
                },
            },
            Ok(r) => Err((format!("SET: {r}"), false)),
            Err(e) => Err((format!("SET: {e}"), true)),
        };
        match ok {
            Ok(()) => {
                report.acked += 1;
                acked_out.store(report.acked, Ordering::Relaxed);
                let now = Instant::now();
                if let Some(mut o) = open.take() {
                    o.ms = (now - last_ack).as_secs_f64() * 1000.0;
                    report.outages.push(o);
                }
                last_ack = now;
            }
            Err((e, broken)) => {
                if broken {
                    conn = None;
                }
                fail(&mut report, &mut open, t0, e);
            }
        }
    }
    report
}

/// Records a failed write: the error, and the outage it opens (if none is open).
fn fail(report: &mut WriterReport, open: &mut Option<Outage>, t0: Instant, e: String) {
    report.last_error = Some(e);
    open.get_or_insert(Outage {
        at_ms: t0.elapsed().as_secs_f64() * 1000.0,
        ms: 0.0,
        last_acked: report.acked,
        last_confirmed: report.confirmed,
        found: None,
    });
}

impl Conn {
    /// Sets how long a command may take to answer.
    pub fn set_reply_timeout(&mut self, t: Duration) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(Some(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> io::Result<Reply> {
        read_reply(&mut io::Cursor::new(bytes), 0)
    }

    #[test]
    fn parses_every_reply_kind() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Reply::Status("OK".into()));
        assert_eq!(
            parse(b"-READONLY no\r\n").unwrap(),
            Reply::Error("READONLY no".into())
        );
        assert_eq!(parse(b":-3\r\n").unwrap(), Reply::Int(-3));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Reply::Bulk(None));
        assert_eq!(
            parse(b"$2\r\n42\r\n").unwrap(),
            Reply::Bulk(Some(b"42".to_vec()))
        );
        let role = parse(b"*3\r\n$6\r\nmaster\r\n:10\r\n*0\r\n").unwrap();
        assert_eq!(
            role,
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"master".to_vec())),
                Reply::Int(10),
                Reply::Array(Some(vec![])),
            ]))
        );
        assert_eq!(parse_counter(&parse(b"$2\r\n42\r\n").unwrap()), Some(42));
    }

    #[test]
    fn rejects_malformed_replies() {
        for bad in [
            &b""[..],
            b"+OK\n",
            b"?x\r\n",
            b"$5\r\nab\r\n",
            b"$99999999999\r\n",
            b":x\r\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lost_counts_acknowledged_writes_missing_after() {
        let o = Outage {
            at_ms: 0.0,
            ms: 10.0,
            last_acked: 100,
            last_confirmed: None,
            found: Some(97),
        };
        assert_eq!(o.lost(), 3);
        assert_eq!(
            Outage {
                found: Some(120),
                ..o
            }
            .lost(),
            0
        );
        let waited = Outage {
            last_confirmed: Some(96),
            ..o
        };
        assert_eq!(waited.lost(), 0, "only confirmed writes count with WAIT");
    }
}
