//! The command line of `vrrp-agent`, defined once: `src/main.rs` parses it,
//! and the hidden `generate` command turns the same definition into man
//! pages ([`write_man_pages`]) and shell completions ([`write_completions`])
//! for the package (`cargo xtask deb`).

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};

use crate::config::XdpMode;

/// `vrrp-agent [--log-level LEVEL] [--log-format text|json] COMMAND`.
#[derive(Parser)]
#[command(
    name = "vrrp-agent",
    version,
    about = "VRRP failover agent with an XDP data plane",
    long_about = None
)]
pub struct Cli {
    /// Log filter: a level (error, warn, info, debug, trace) or a RUST_LOG-style directive.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground until SIGTERM/SIGINT.
    Run {
        /// Config file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// Override `global.xdp`: auto, driver, skb or off.
        #[arg(long, value_name = "MODE")]
        xdp: Option<XdpMode>,
    },
    /// Validate a config file without touching the system.
    Check {
        /// Config file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Convert a keepalived.conf; lists what is not carried, exits 2 if failover changes.
    ImportKeepalived(ImportArgs),
    /// Show the state of a running daemon.
    Status {
        /// Print the JSON document instead of a table.
        #[arg(long)]
        json: bool,
        /// Control socket [default: global.control_socket of --config, else /run/vrrp-agent/control.sock].
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Take the control socket path from this config file.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Write man pages or shell completions (for packagers).
    #[command(hide = true)]
    Generate {
        /// What to write.
        #[command(subcommand)]
        what: Generate,
    },
}

/// `import-keepalived FILE [-o OUT] [--config-id ID]`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The keepalived.conf to convert.
    pub file: PathBuf,
    /// Write the vrrp-agent config here instead of standard output.
    #[arg(long, short, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// keepalived's config id (its `-i`) for `@ID` lines [default: the host name up to the first dot].
    #[arg(long, value_name = "ID")]
    pub config_id: Option<String>,
}

/// `generate man DIR` | `generate completions SHELL DIR`.
#[derive(Subcommand)]
pub enum Generate {
    /// vrrp-agent(1) and a page per command (vrrp-agent-run(1), ...), into DIR.
    Man {
        /// Output directory (created if missing).
        dir: PathBuf,
    },
    /// The completion script for SHELL, into DIR (named as SHELL expects).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
        /// Output directory (created if missing).
        dir: PathBuf,
    },
}

/// The sections of vrrp-agent(1) that clap does not know.
const MAN_EXTRA: &str = r#".SH SIGNALS
.TP
\fBSIGTERM\fR, \fBSIGINT\fR
Graceful stop: every MASTER sends a priority\-0 advertisement (a backup takes
over after its skew time), removes its virtual IPs, the notify scripts for
STOP run, then the agent exits 0.
.TP
\fBSIGHUP\fR
Reload the config file. Instances whose settings did not change keep their
state and timers; changed ones are reconfigured in place; a file that does not
pass \fBvrrp\-agent check\fR is logged and ignored.
.SH SYSTEMD
Under systemd (\fBType=notify\fR) the agent reports READY=1 once every instance
is configured, RELOADING=1 and READY=1 around a reload, STOPPING=1 on a graceful
stop, and WATCHDOG=1 from its main loop when \fBWatchdogSec=\fR is set.
.SH FILES
.TP
\fI/etc/vrrp\-agent/vrrp\-agent.toml\fR
The configuration read by the packaged service; see \fBvrrp\-agent.toml\fR(5).
.TP
\fI/run/vrrp\-agent/control.sock\fR
The control socket \fBvrrp\-agent status\fR asks (mode 0600).
.SH EXIT STATUS
0 on success and after a clean stop; 1 on a start\-up failure, an invalid
config or no answering daemon, with a one\-line reason on standard error;
\fBimport\-keepalived\fR exits 2 when something that changes failover
behaviour was not carried.
.SH "SEE ALSO"
\fBvrrp\-agent.toml\fR(5), \fBkeepalived\fR(8), \fBsystemd.service\fR(5)
"#;

/// The last section of a command's page.
const MAN_SEE_ALSO: &str =
    ".SH \"SEE ALSO\"\n\\fBvrrp\\-agent\\fR(1), \\fBvrrp\\-agent.toml\\fR(5)\n";

/// Writes vrrp-agent(1) and one page per visible command into `dir`;
/// returns the files written.
pub fn write_man_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    // After `build`, a command's display name is `vrrp-agent-run`: the page
    // name the top page's COMMANDS section refers to.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let pages = std::iter::once((cmd.clone(), MAN_EXTRA)).chain(
        cmd.get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| (s.clone(), MAN_SEE_ALSO)),
    );
    let mut written = Vec::new();
    for (cmd, extra) in pages {
        let man = clap_mangen::Man::new(cmd);
        let mut page = Vec::new();
        man.render(&mut page)?;
        page.extend_from_slice(extra.as_bytes());
        let path = dir.join(man.get_filename());
        fs::write(&path, page)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes the completion script for `shell` into `dir`; returns its path.
pub fn write_completions(shell: clap_complete::Shell, dir: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    clap_complete::generate_to(shell, &mut Cli::command(), "vrrp-agent", dir)
}

#[cfg(test)]
mod tests {
    use clap_complete::Shell;

    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let p =
                std::env::temp_dir().join(format!("vrrp-agent-cli-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn man_pages_cover_every_visible_command() {
        let dir = TempDir::new("man");
        let pages = write_man_pages(&dir.0).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "vrrp-agent.1",
                "vrrp-agent-run.1",
                "vrrp-agent-check.1",
                "vrrp-agent-import-keepalived.1",
                "vrrp-agent-status.1",
            ]
        );
        let main = fs::read_to_string(&pages[0]).unwrap();
        assert!(
            main.starts_with(".ie") || main.contains(".TH vrrp-agent 1"),
            "{main}"
        );
        assert!(main.contains("SIGHUP") && main.contains("vrrp\\-agent.toml\\fR(5)"));
        assert!(
            !main.contains("generate"),
            "the hidden command is not documented"
        );
        let run = fs::read_to_string(&pages[1]).unwrap();
        assert!(run.contains("\\-\\-config"), "{run}");
    }

    #[test]
    fn completions_for_bash_zsh_fish() {
        let dir = TempDir::new("completions");
        for (shell, file) in [
            (Shell::Bash, "vrrp-agent.bash"),
            (Shell::Zsh, "_vrrp-agent"),
            (Shell::Fish, "vrrp-agent.fish"),
        ] {
            let path = write_completions(shell, &dir.0).unwrap();
            assert_eq!(path, dir.0.join(file));
            let text = fs::read_to_string(&path).unwrap();
            assert!(text.contains("import-keepalived"), "{shell}: {text}");
        }
    }
}
