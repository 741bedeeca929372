//! examples/redis stays consistent until config.rs can load it: every TOML
//! parses, every check table uses only SPEC's keys, and every command line
//! splits with keepalived's quoting and names a script shipped next to it
//! that root may execute.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::path::{Path, PathBuf};

use vrrp_agent::cmdline::{self, RunAs};

const CHECK_KEYS: &[&str] = &[
    "name", "kind", "command", "user", "address", "process", "pidfile", "path", "interval",
    "timeout", "rise", "fall",
];
const NOTIFY_KEYS: &[&str] = &[
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
];

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/redis")
}

/// The shipped script a `/etc/vrrp-agent/x.sh` path stands for, checked.
fn shipped(program: &Path) {
    let name = program.file_name().expect("a file name");
    let local = examples().join(name);
    cmdline::preflight(&[&local], RunAs::ROOT).unwrap_or_else(|e| {
        panic!(
            "{} is not shipped or not executable: {e}",
            program.display()
        )
    });
}

#[test]
fn redis_examples_are_consistent() {
    let mut configs = 0;
    for entry in std::fs::read_dir(examples()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        configs += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: toml::Table =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for check in doc["check"].as_array().unwrap() {
            let check = check.as_table().unwrap();
            for key in check.keys() {
                assert!(
                    CHECK_KEYS.contains(&key.as_str()),
                    "{}: unknown check key {key}",
                    path.display()
                );
            }
            if let Some(cmd) = check.get("command") {
                let argv: Vec<&str> = cmd
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                shipped(Path::new(argv[0]));
            }
        }
        for inst in doc["instance"].as_array().unwrap() {
            let inst = inst.as_table().unwrap();
            for key in NOTIFY_KEYS {
                let line = inst[*key].as_str().unwrap();
                let argv = cmdline::parse(line).unwrap();
                shipped(Path::new(&argv[0]));
            }
        }
    }
    assert_eq!(configs, 4, "node A and B, with and without preemption");
}
