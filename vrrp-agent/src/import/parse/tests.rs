use super::*;

#[test]
fn comments_respect_quotes_and_escapes() {
    assert_eq!(decomment("priority 100 # main"), "priority 100");
    assert_eq!(decomment("priority 100 ! main"), "priority 100");
    assert_eq!(decomment(r#"script "a#b" # c"#), r#"script "a#b""#);
    assert_eq!(decomment(r"auth_pass pa\#ss"), r"auth_pass pa\#ss");
    assert_eq!(split_words(r"auth_pass pa\#ss"), ["auth_pass", "pa#ss"]);
}

#[test]
fn words_and_quotes() {
    assert_eq!(
        split_words(r#"script "/bin/check a b"  weight"#),
        ["script", "/bin/check a b", "weight"]
    );
    assert_eq!(split_words("notify 'a b' c"), ["notify", "a b", "c"]);
    assert_eq!(split_words(r#"abcd" efg h "mnop"#), ["abcd efg h mnop"]);
}

fn read_str(text: &str) -> (Vec<Stmt>, Vec<Note>) {
    let r = Reader {
        config_id: "lb1".into(),
        files_read: 1,
        defs: HashMap::new(),
        lines: Vec::new(),
        notes: Vec::new(),
    };
    r.read_text(Path::new("/nonexistent/keepalived.conf"), text)
}

#[test]
fn braces_split_lines_and_blocks_attach_to_the_statement_before() {
    let (stmts, notes) = read_str(
        "vrrp_instance A { interface eth0\n  unicast_peer { 192.0.2.2 } }\n\
         global_defs\n{\n router_id x # c\n}\n",
    );
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(stmts.len(), 2);
    let a = stmts[0].block.as_ref().unwrap();
    assert_eq!(a[0].words, ["interface", "eth0"]);
    assert_eq!(a[1].block.as_ref().unwrap()[0].words, ["192.0.2.2"]);
    assert_eq!(a[1].at.line, 2);
    assert_eq!(
        stmts[1].block.as_ref().unwrap()[0].words,
        ["router_id", "x"]
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let (_, notes) = read_str(&"a {\n".repeat(100_000));
    assert!(notes.iter().any(|n| n.severity == Severity::Error));
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "[a-z0-9 {}#!$@~\"'\\\\/.:=\n\t]{0,300}") {
        let (stmts, _) = read_str(&text);
        let _ = crate::import::convert::convert(&stmts, "fuzz.conf");
    }

    /// Instances built from real keywords with odd values: no panic, and
    /// any config produced passes `Config::parse` (convert checks it).
    #[test]
    fn instances_from_keyword_soup_never_panic(
        picks in proptest::collection::vec(0usize..LINES.len(), 0..24),
        global in proptest::collection::vec(0usize..GLOBAL_LINES.len(), 0..4),
    ) {
        let mut text = String::from("global_defs {\n");
        for g in global {
            text.push_str(GLOBAL_LINES[g]);
            text.push('\n');
        }
        text.push_str("}\nvrrp_instance X {\n");
        for p in picks {
            text.push_str(LINES[p]);
            text.push('\n');
        }
        text.push_str("}\n");
        let (stmts, _) = read_str(&text);
        let (toml, _) = crate::import::convert::convert(&stmts, "fuzz.conf");
        if let Some(t) = toml {
            proptest::prop_assert!(crate::config::Config::parse(&t, "fuzz").is_ok());
        }
    }
}

const GLOBAL_LINES: &[&str] = &[
    "vrrp_version 3",
    "vrrp_version 7",
    "vrrp_strict",
    "vrrp_garp_master_repeat 0",
    "vrrp_garp_master_repeat 500",
    "vrrp_garp_interval 5",
    "vrrp_min_garp",
    "router_id",
];
const LINES: &[&str] = &[
    "interface eth0",
    "interface averyveryverylonginterfacename",
    "virtual_router_id 51",
    "virtual_router_id 0",
    "virtual_router_id 51",
    "priority 255",
    "priority 0",
    "priority 100",
    "state MASTER",
    "state BACKUP",
    "version 2",
    "version 3",
    "advert_int 0.01",
    "advert_int 0.5",
    "advert_int 41",
    "advert_int 255",
    "nopreempt",
    "preempt_delay 1000",
    "preempt_delay 5",
    "accept",
    "no_accept",
    "strict_mode off",
    "virtual_ipaddress { 192.0.2.1/24 }",
    "virtual_ipaddress { 192.0.2.1 }",
    "virtual_ipaddress { 2001:db8::1/64 }",
    "virtual_ipaddress { fe80::1/64 }",
    "virtual_ipaddress { 192.0.2.300 }",
    "virtual_ipaddress { 224.0.0.1/4 }",
    "virtual_ipaddress { 192.0.2.2/24 dev eth1 label x }",
    "unicast_peer { 192.0.2.9 }",
    "unicast_peer { 2001:db8::9 }",
    "unicast_peer { 192.0.2.9 192.0.2.9 }",
    "authentication { auth_type PASS\n auth_pass x }",
    "notify /bin/true",
    "notify \"/bin/x a\"",
    "garp_master_repeat 0",
    "track_script { a }",
];

#[test]
fn definitions() {
    assert_eq!(definition("$PRIO=150"), Some(("PRIO", "150")));
    assert_eq!(definition("$1X=1"), None);
    assert_eq!(definition("$A B=1"), None);
}
