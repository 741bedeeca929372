//! vrrp-agent command line: `run`, `check`, `status`, `import-keepalived`.
#![expect(
    unused_crate_dependencies,
    reason = "the binary links the library's dependencies; the library reports its own unused ones"
)]

use std::{path::PathBuf, process::ExitCode};

use clap::Parser as _;
use vrrp_agent::{
    cli::{self, Cli, Command, Generate, ImportArgs, LogFormat},
    config::{Config, ConfigError, DEFAULT_CONTROL_SOCKET},
    control,
    daemon::{self, RunOptions},
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_level.as_deref(), cli.log_format);
    match cli.command {
        Command::Check { config } => match Config::load_with_warnings(&config) {
            Ok((_, warnings)) => {
                for w in warnings {
                    eprintln!("{w}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                print_config_error(&e);
                ExitCode::from(1)
            }
        },
        Command::ImportKeepalived(args) => import_keepalived(args),
        Command::Generate { what } => generate(what),
        Command::Status {
            json,
            socket,
            config,
        } => status(json, socket, config),
        Command::Run { config, xdp } => {
            let cfg = match Config::load_with_warnings(&config) {
                Ok((c, warnings)) => {
                    for w in warnings {
                        tracing::warn!("{w}");
                    }
                    c
                }
                Err(e) => {
                    // One line, as for every start-up failure; `check` lists all.
                    let lines = e.lines();
                    let more = match lines.len() {
                        0 | 1 => String::new(),
                        n => format!(
                            " (and {} more; see `vrrp-agent check --config {}`)",
                            n - 1,
                            config.display()
                        ),
                    };
                    eprintln!(
                        "vrrp-agent: invalid config: {}{more}",
                        lines.first().map_or("", String::as_str)
                    );
                    return ExitCode::from(1);
                }
            };
            let opts = RunOptions {
                config_path: config,
                xdp_override: xdp,
            };
            match runtime().and_then(|rt| rt.block_on(daemon::run(cfg, opts))) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("vrrp-agent: {}", one_line(&e));
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn import_keepalived(args: ImportArgs) -> ExitCode {
    let opts = vrrp_agent::import::ReadOptions {
        config_id: args.config_id,
    };
    let conv = match vrrp_agent::import::import(&args.file, &opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vrrp-agent: {e}");
            return ExitCode::from(1);
        }
    };
    for n in &conv.notes {
        eprintln!("{n}");
    }
    if let Some(toml) = &conv.toml {
        let written = match &args.output {
            Some(out) => std::fs::write(out, toml)
                .map_err(|e| format!("cannot write {}: {e}", out.display())),
            None => {
                print!("{toml}");
                Ok(())
            }
        };
        if let Err(e) = written {
            eprintln!("vrrp-agent: {e}");
            return ExitCode::from(1);
        }
    }
    ExitCode::from(conv.exit_status())
}

/// The hidden `generate` command: man pages, completions.
fn generate(what: Generate) -> ExitCode {
    let res = match what {
        Generate::Man { dir } => cli::write_man_pages(&dir).map(|pages| pages.len()),
        Generate::Completions { shell, dir } => cli::write_completions(shell, &dir).map(|_| 1),
    };
    match res {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vrrp-agent: generate: {e}");
            ExitCode::from(1)
        }
    }
}

fn status(json: bool, socket: Option<PathBuf>, config: Option<PathBuf>) -> ExitCode {
    let path = match (socket, config) {
        (Some(s), _) => s,
        (None, Some(c)) => match Config::load(&c) {
            Ok(cfg) => cfg.global.control_socket,
            Err(e) => {
                print_config_error(&e);
                return ExitCode::from(1);
            }
        },
        (None, None) => PathBuf::from(DEFAULT_CONTROL_SOCKET),
    };
    let res = runtime().and_then(|rt| Ok(rt.block_on(control::query_status(&path))?));
    match res {
        Ok(st) => {
            if json {
                match serde_json::to_string_pretty(&st) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("vrrp-agent: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else {
                print!("{}", control::render_table(&st));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vrrp-agent: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

fn print_config_error(e: &ConfigError) {
    for line in e.lines() {
        eprintln!("{line}");
    }
}

/// An error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn init_logging(level: Option<&str>, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // netlink-packet-route warns about every attribute newer than itself;
    // that is noise for operators unless they ask for it.
    let quiet = |d: String| {
        if d.contains("netlink") {
            d
        } else {
            format!("{d},netlink_packet_route=error")
        }
    };
    let directives = match level {
        Some(l) => quiet(l.to_owned()),
        None => quiet(
            std::env::var("RUST_LOG")
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "info".into()),
        ),
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("vrrp-agent: bad log level: {e}; using info");
        EnvFilter::new("info")
    });
    // Colours only on a terminal: logs usually go to journald or a file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
