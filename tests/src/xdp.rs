//! The XDP objects embedded in vrrp-agent, and a loader for
//! BPF_PROG_TEST_RUN tests and benchmarks.

use aya::{
    Ebpf, EbpfLoader,
    programs::{ProgramError, TestRun, TestRunOptions, Xdp},
};

/// The `vrrp` XDP object (empty when built with `AYA_BUILD_SKIP=1`).
pub static VRRP_OBJECT: &[u8] = vrrp_agent::dataplane::objects::VRRP;
/// The empty XDP_PASS baseline program's object.
pub static BASELINE_OBJECT: &[u8] = vrrp_agent::dataplane::objects::BASELINE;
/// Name of the baseline program in [`BASELINE_OBJECT`].
pub const BASELINE_PROGRAM: &str = "vrrp_baseline";

/// Whether the objects were really built (not stubbed by `AYA_BUILD_SKIP`).
pub fn objects_available() -> bool {
    !VRRP_OBJECT.is_empty() && !BASELINE_OBJECT.is_empty()
}

/// Loads `object` and its XDP program `program` into the kernel (maps are
/// created fresh for every load).
pub fn load(object: &[u8], program: &str) -> anyhow::Result<Ebpf> {
    load_stopping_after(object, program, None)
}

/// [`load`], with the program's `vrrp_common::step::GLOBAL` set to `stop`
/// (a benchmark variant that returns right after that step); `None` keeps
/// the object's default (the agent's program).
pub fn load_stopping_after(
    object: &[u8],
    program: &str,
    stop: Option<u32>,
) -> anyhow::Result<Ebpf> {
    let mut loader = EbpfLoader::new();
    if let Some(stop) = &stop {
        loader.override_global(vrrp_common::step::GLOBAL, stop, true);
    }
    let mut ebpf = loader.load(object)?;
    let prog: &mut Xdp = ebpf
        .program_mut(program)
        .ok_or_else(|| anyhow::anyhow!("program {program} not in the object"))?
        .try_into()?;
    prog.load()?;
    Ok(ebpf)
}

/// Result of one BPF_PROG_TEST_RUN.
#[derive(Debug)]
pub struct Run {
    /// XDP verdict.
    pub action: u32,
    /// The frame after the program.
    pub data_out: Vec<u8>,
    /// Mean time per repetition, as the kernel measured it.
    pub ns_per_run: u64,
}

/// Runs `program` of `ebpf` over `frame` `repeat` times.
pub fn run(ebpf: &mut Ebpf, program: &str, frame: &[u8], repeat: u32) -> Result<Run, ProgramError> {
    let prog: &mut Xdp = ebpf
        .program_mut(program)
        .ok_or_else(|| ProgramError::InvalidName {
            name: program.to_owned(),
        })?
        .try_into()?;
    // Room for the frame; XDP test runs may not grow it beyond headroom.
    let mut out = vec![0u8; frame.len() + 256];
    let res = prog.test_run(TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        repeat,
        ..Default::default()
    })?;
    out.truncate(res.data_size_out as usize);
    Ok(Run {
        action: res.return_value,
        data_out: out,
        ns_per_run: res.duration.as_nanos() as u64,
    })
}

/// Configures a VRID the way the agent does: its `LAST_SEEN` slot
/// (`cfg.slot`) emptied and owned by `key`, its `VRIDS` entry and, when
/// `table` is set, its `VRID_TABLE` entry (the program's fast path; without
/// it the program finds the VRID through `VRIDS`).
pub fn configure_vrid(
    ebpf: &mut Ebpf,
    key: vrrp_common::VridKey,
    cfg: vrrp_common::VridConfig,
    table: bool,
) -> anyhow::Result<()> {
    use aya::maps::{Array, HashMap};
    use vrrp_common::{LastSeen, VridConfig, VridEntry, VridKey, maps, vrid_table_index};
    fn map<'a>(e: &'a mut Ebpf, name: &'static str) -> anyhow::Result<&'a mut aya::maps::Map> {
        e.map_mut(name)
            .ok_or_else(|| anyhow::anyhow!("map {name} not in the object"))
    }
    Array::<_, LastSeen>::try_from(map(ebpf, maps::LAST_SEEN)?)?.set(
        u32::from(cfg.slot),
        LastSeen::owned_by(key),
        0,
    )?;
    HashMap::<_, VridKey, VridConfig>::try_from(map(ebpf, maps::VRIDS)?)?.insert(key, cfg, 0)?;
    if table {
        Array::<_, VridEntry>::try_from(map(ebpf, maps::VRID_TABLE)?)?.set(
            vrid_table_index(key.vrid, key.family),
            VridEntry {
                cfg,
                ifindex: key.ifindex,
                _pad: 0,
            },
            0,
        )?;
    }
    Ok(())
}
