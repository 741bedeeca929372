//! Per-packet cost of the XDP program by BPF_PROG_TEST_RUN (run by
//! `cargo xtask bench xdp`; needs root).
//!
//! Every case runs the program over one frame `REPEAT` times inside the
//! kernel, which reports the mean time per run; `ROUNDS` such runs give a
//! median. The empty XDP_PASS program (`vrrp_baseline`, built the same way)
//! measures the cost of the test-run loop itself, so the differences are what
//! our program adds. The event case cannot run a million times in a row (the
//! ring buffer would fill and we would time the "full" path), so it runs in
//! batches that fit the ring, drained between batches.
#![expect(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package"
)]

use std::net::{IpAddr, Ipv4Addr};

use aya::{
    Ebpf,
    maps::{Array, HashMap, RingBuf},
};
use tests::{
    frames::{Advert, Checksum, Envelope, udp_frame},
    xdp,
};
use vrrp_common::{
    FAMILY_V4, VRID_F_DELIVER_ALL, VipEntry, VridConfig, VridKey, XDP_PROGRAM, maps, vip_index_v4,
};

const REPEAT: u32 = 1_000_000;
const ROUNDS: usize = 7;
/// Events per batch: fits the 256 KiB ring (each record takes 120 + 8 bytes).
const EVENT_BATCH: u32 = 2000;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

struct Case {
    name: &'static str,
    goal_ns: Option<f64>,
    ns: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time(ebpf: &mut Ebpf, program: &str, frame: &[u8], expect: u32) -> anyhow::Result<f64> {
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let r = xdp::run(ebpf, program, frame, REPEAT)?;
        anyhow::ensure!(
            r.action == expect,
            "{program}: verdict {} (expected {expect})",
            r.action
        );
        samples.push(r.ns_per_run as f64);
    }
    Ok(median(samples))
}

/// The kernel reports whole nanoseconds per run; time batches by wall clock
/// around the syscall instead would include syscall overhead, so use the
/// kernel figure of each batch and take the median over batches.
fn time_events(ebpf: &mut Ebpf, frame: &[u8]) -> anyhow::Result<f64> {
    let batches = (REPEAT / EVENT_BATCH) as usize;
    let mut samples = Vec::with_capacity(batches);
    drain(ebpf)?;
    for _ in 0..batches {
        let r = xdp::run(ebpf, XDP_PROGRAM, frame, EVENT_BATCH)?;
        anyhow::ensure!(r.action == 2, "event advert: verdict {}", r.action);
        samples.push(r.ns_per_run as f64);
        let n = drain(ebpf)?;
        anyhow::ensure!(
            n == EVENT_BATCH,
            "expected {EVENT_BATCH} events, drained {n} (ring full?)"
        );
    }
    Ok(median(samples))
}

/// Empties the ring buffer; returns how many records it held.
fn drain(ebpf: &mut Ebpf) -> anyhow::Result<u32> {
    let mut rb = RingBuf::try_from(ebpf.map_mut(maps::EVENTS).expect("EVENTS map"))?;
    let mut n = 0;
    while rb.next().is_some() {
        n += 1;
    }
    Ok(n)
}

fn main() -> anyhow::Result<()> {
    anyhow::ensure!(
        xdp::objects_available(),
        "XDP objects not built (AYA_BUILD_SKIP set?)"
    );
    let mut base = xdp::load(xdp::BASELINE_OBJECT, xdp::BASELINE_PROGRAM)?;
    let mut ebpf = xdp::load(xdp::VRRP_OBJECT, XDP_PROGRAM)?;
    let ifindex = nix::net::if_::if_nametoindex("lo")?;

    // One VIP, as the agent would install it.
    let vip = u32::from_ne_bytes(VIP.octets());
    HashMap::<_, u32, u32>::try_from(ebpf.map_mut(maps::VIPS_V4).expect("VIPS_V4"))?
        .insert(vip, 0, 0)?;
    let mut addr = [0u8; 16];
    addr[..4].copy_from_slice(&VIP.octets());
    Array::<_, VipEntry>::try_from(ebpf.map_mut(maps::VIP_TABLE).expect("VIP_TABLE"))?.set(
        vip_index_v4(VIP.octets()),
        VipEntry {
            addr,
            slot: 0,
            family: FAMILY_V4,
            ..VipEntry::default()
        },
        0,
    )?;
    // VRID 9: steady state (suppression); VRID 10: every advert is an event.
    let mut vrids =
        HashMap::<_, VridKey, VridConfig>::try_from(ebpf.map_mut(maps::VRIDS).expect("VRIDS"))?;
    vrids.insert(
        VridKey::new(ifindex, 9, FAMILY_V4),
        VridConfig {
            version: 3,
            ..Default::default()
        },
        0,
    )?;
    vrids.insert(
        VridKey::new(ifindex, 10, FAMILY_V4),
        VridConfig {
            version: 3,
            flags: VRID_F_DELIVER_ALL,
            slot: 1,
            ..Default::default()
        },
        0,
    )?;

    let other = udp_frame(
        IpAddr::V4(HOST),
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 8)),
        18,
    );
    let to_vip = udp_frame(IpAddr::V4(HOST), IpAddr::V4(VIP), 18);
    // keepalived's default v3 IPv4 form (RFC 5798 pseudo-header): the program
    // tries the message-only form first, so this is the longer path.
    let advert = Envelope::v4(9).frame(&Advert::v3(9, 100, &[IpAddr::V4(VIP)]));
    let event_advert = Envelope::v4(10).frame(&Advert::v3(10, 100, &[IpAddr::V4(VIP)]));
    let mut bad = Advert::v3(9, 100, &[IpAddr::V4(VIP)]);
    bad.checksum = Checksum::Corrupt;
    let bad = Envelope::v4(9).frame(&bad);
    let mut ttl = Envelope::v4(9);
    ttl.ttl = 64;
    let ttl = ttl.frame(&Advert::v3(9, 100, &[IpAddr::V4(VIP)]));

    println!(
        "BPF_PROG_TEST_RUN, {REPEAT} runs x {ROUNDS} rounds per case, median of the kernel's ns/run"
    );
    let baseline = time(&mut base, xdp::BASELINE_PROGRAM, &other, 2)?;
    // Prime LAST_SEEN so the advert case measures the steady state.
    xdp::run(&mut ebpf, XDP_PROGRAM, &advert, 1)?;
    let cases = vec![
        Case {
            name: "non-VRRP, not to a VIP",
            goal_ns: Some(5.0),
            ns: time(&mut ebpf, XDP_PROGRAM, &other, 2)?,
        },
        Case {
            name: "to a VIP (counted)",
            goal_ns: Some(10.0),
            ns: time(&mut ebpf, XDP_PROGRAM, &to_vip, 2)?,
        },
        Case {
            name: "valid advert, suppressed (steady state)",
            goal_ns: Some(80.0),
            ns: time(&mut ebpf, XDP_PROGRAM, &advert, 2)?,
        },
        Case {
            name: "valid advert + ring-buffer event",
            goal_ns: None,
            ns: time_events(&mut ebpf, &event_advert)?,
        },
        Case {
            name: "invalid advert: bad checksum",
            goal_ns: None,
            ns: time(&mut ebpf, XDP_PROGRAM, &bad, 1)?,
        },
        Case {
            name: "invalid advert: TTL 64",
            goal_ns: None,
            ns: time(&mut ebpf, XDP_PROGRAM, &ttl, 1)?,
        },
    ];

    println!();
    println!("| case | ns/packet | vs baseline | goal |");
    println!("|---|---:|---:|---|");
    println!("| baseline (empty XDP_PASS) | {baseline:.0} | – | – |");
    let mut missed = 0;
    for c in &cases {
        let d = c.ns - baseline;
        let goal = match c.goal_ns {
            Some(g) if d <= g => format!("<= +{g:.0} ok"),
            Some(g) => {
                missed += 1;
                format!("<= +{g:.0} MISSED")
            }
            None => "–".to_owned(),
        };
        println!("| {} | {:.0} | {:+.0} | {} |", c.name, c.ns, d, goal);
    }
    println!();
    println!("(the kernel reports whole ns per run; differences of 1-2 ns are noise)");
    if missed > 0 {
        println!("{missed} goal(s) missed");
    }
    Ok(())
}
