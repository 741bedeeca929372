//! The daemon: wires config, data plane, protocol core, sockets, netlink,
//! notify, control socket and metrics together. (Main loop: integrator.)
//!
//! What is here now are the start-up checks that must fail with one clear
//! line before anything is touched: privileges, interfaces, control socket.

use std::path::PathBuf;

use crate::{
    config::{Config, XdpMode},
    control, vips,
};

/// Options of `vrrp-agent run` beyond the config file.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The config file (re-read on SIGHUP).
    pub config_path: PathBuf,
    /// `--xdp`, overriding `global.xdp`.
    pub xdp_override: Option<XdpMode>,
}

impl RunOptions {
    /// The XDP mode in force: the command line wins over the config.
    pub fn xdp_mode(&self, cfg: &Config) -> XdpMode {
        self.xdp_override.unwrap_or(cfg.global.xdp)
    }
}

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(cfg: Config, opts: RunOptions) -> anyhow::Result<()> {
    preflight(&cfg, opts.xdp_mode(&cfg)).await?;
    anyhow::bail!("the daemon main loop is not implemented yet")
}

/// Capabilities the daemon needs (bit numbers of linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_BPF: u32 = 39;
const CAP_SYS_ADMIN: u32 = 21;

/// Why the daemon refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// Missing privileges.
    #[error("must run as root or with {0} (missing: {1})")]
    Privileges(String, String),
    /// A configured interface does not exist.
    #[error("interface `{interface}` of instance `{instance}` does not exist")]
    NoInterface {
        /// Interface name.
        interface: String,
        /// Instance using it.
        instance: String,
    },
    /// Netlink failed.
    #[error(transparent)]
    Netlink(#[from] vips::NetlinkError),
    /// The control socket is taken.
    #[error(transparent)]
    Control(#[from] control::ControlError),
}

/// The one-line start-up checks: effective capabilities (CAP_NET_ADMIN,
/// CAP_NET_RAW, and CAP_BPF for `xdp = driver|skb`), every interface exists,
/// no other daemon answers on the control socket (a stale one is removed).
pub async fn preflight(cfg: &Config, xdp: XdpMode) -> Result<(), PreflightError> {
    check_capabilities(xdp)?;
    let nl = vips::Netlink::new()?;
    for inst in &cfg.instances {
        match nl.link_by_name(&inst.interface).await {
            Ok(_) => {}
            Err(vips::NetlinkError::NoSuchInterface(_)) => {
                return Err(PreflightError::NoInterface {
                    interface: inst.interface.clone(),
                    instance: inst.name.clone(),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    control::check_socket_free(&cfg.global.control_socket).await?;
    Ok(())
}

fn check_capabilities(xdp: XdpMode) -> Result<(), PreflightError> {
    let eff = effective_caps().unwrap_or(0);
    let has = |c: u32| eff & (1u64 << c) != 0;
    let mut need = vec![
        ("CAP_NET_ADMIN", CAP_NET_ADMIN),
        ("CAP_NET_RAW", CAP_NET_RAW),
    ];
    // `auto` falls back to the socket path, so only an explicit XDP mode
    // makes CAP_BPF mandatory.
    if matches!(xdp, XdpMode::Driver | XdpMode::Skb) {
        need.push(("CAP_BPF", CAP_BPF));
    } else if xdp == XdpMode::Auto && !(has(CAP_BPF) || has(CAP_SYS_ADMIN)) {
        tracing::warn!("no CAP_BPF: XDP unavailable, adverts will be received on a socket");
    }
    let missing: Vec<&str> = need
        .iter()
        // CAP_SYS_ADMIN covers BPF on kernels older than 5.8.
        .filter(|(n, c)| !(has(*c) || (*n == "CAP_BPF" && has(CAP_SYS_ADMIN))))
        .map(|(n, _)| *n)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let all: Vec<&str> = need.iter().map(|(n, _)| *n).collect();
    Err(PreflightError::Privileges(
        all.join(", "),
        missing.join(", "),
    ))
}

/// `CapEff` of /proc/self/status.
fn effective_caps() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}
