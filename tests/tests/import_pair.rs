//! A converted config against its original: one node runs
//! `vrrp-agent/tests/keepalived/lab_pair.conf` under keepalived 2.2.7, the
//! other runs `import-keepalived`'s conversion of the same file (the other
//! `@ID`), and the pair elects, fails over and preempts correctly both ways.
//! The file leaves the version to keepalived's default (VRRPv2), so this
//! also proves the importer keeps the pair on one version. Run as root.

use std::{path::Path, time::Duration};

use nix::sys::signal::Signal;
use tests::{
    cluster::{Lab, sole_holder, wait_holder},
    netns::{ChildGuard, unique_name},
};
use vrrp_agent::import::{ReadOptions, import};

const VIP: &str = "192.0.2.10";
/// VRRPv2 at 1 s: Master_Down_Interval plus start-up, with margin.
const SETTLE: Duration = Duration::from_secs(15);

fn corpus_file() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../vrrp-agent/tests/keepalived/lab_pair.conf"
    ))
}

/// The conversion for node `id`; it must be faithful (exit status 0).
fn converted(id: &str) -> String {
    let opts = ReadOptions {
        config_id: Some(id.to_owned()),
    };
    let conv = import(corpus_file(), &opts).expect("corpus file");
    assert_eq!(conv.exit_status(), 0, "{:?}", conv.notes);
    let toml = conv.toml.expect("converted");
    assert!(toml.contains("version = 2"), "{toml}");
    toml
}

/// keepalived on router `router` with the corpus file, as node `id`
/// (keepalived's `-i`, which `netns::keepalived` does not pass).
fn keepalived_as(lab: &Lab, router: usize, id: &str) -> ChildGuard {
    let name = unique_name("ka");
    let p = |suffix: &str| {
        lab.dir
            .path()
            .join(format!("{name}.{suffix}"))
            .display()
            .to_string()
    };
    let conf = corpus_file().display().to_string();
    let log = lab.dir.path().join(format!("{name}.log"));
    let args = [
        "--dont-fork",
        "--log-console",
        "--vrrp",
        "--config-id",
        id,
        "--use-file",
        &conf,
        "--pid",
        &p("pid"),
        "--vrrp_pid",
        &p("vrrp.pid"),
        "--checkers_pid",
        &p("checkers.pid"),
    ];
    lab.router(router)
        .spawn("keepalived", &args, Some(&log))
        .expect("keepalived")
}

/// keepalived is the preferred master (lb1, 150), the converted agent its
/// backup (lb2, 100).
#[test]
fn converted_backup_beside_keepalived_master() {
    let lab = Lab::new("imb", 2);
    let hosts = [lab.router(0), lab.router(1)];
    let mut ka = keepalived_as(&lab, 0, "lb1");
    let agent = lab.agent(1, &converted("lb2"));

    agent.wait_state("VI_LAB", "BACKUP", SETTLE).unwrap();
    wait_holder(&hosts, VIP, 0);
    assert_eq!(
        agent.state("VI_LAB").as_deref(),
        Some("BACKUP"),
        "{}",
        agent.log_tail(20)
    );

    // keepalived stops (priority 0): the agent takes over.
    ka.stop(Duration::from_secs(5));
    agent.wait_state("VI_LAB", "MASTER", SETTLE).unwrap();
    wait_holder(&hosts, VIP, 1);

    // keepalived returns with the higher priority and preempts.
    let _ka = keepalived_as(&lab, 0, "lb1");
    agent.wait_state("VI_LAB", "BACKUP", SETTLE).unwrap();
    wait_holder(&hosts, VIP, 0);
    assert_eq!(sole_holder(&hosts, VIP), Some(0));
}

/// The converted agent is the preferred master (lb1, 150), keepalived its
/// backup (lb2, 100).
#[test]
fn converted_master_beside_keepalived_backup() {
    let lab = Lab::new("imm", 2);
    let hosts = [lab.router(0), lab.router(1)];
    let _ka = keepalived_as(&lab, 0, "lb2");
    let mut agent = lab.agent(1, &converted("lb1"));

    agent.wait_state("VI_LAB", "MASTER", SETTLE).unwrap();
    wait_holder(&hosts, VIP, 1);
    // Several adverts later keepalived still accepts ours.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        sole_holder(&hosts, VIP),
        Some(1),
        "keepalived took the VIP: it rejects the converted agent's adverts"
    );

    // The agent stops gracefully: keepalived takes over.
    agent.signal(Signal::SIGTERM).unwrap();
    assert!(agent.wait_exit(Duration::from_secs(5)));
    wait_holder(&hosts, VIP, 0);

    // The agent returns with the higher priority and preempts.
    let again = lab.agent(1, &converted("lb1"));
    again.wait_state("VI_LAB", "MASTER", SETTLE).unwrap();
    wait_holder(&hosts, VIP, 1);
    assert_eq!(sole_holder(&hosts, VIP), Some(1));
}
