//! Health checks and tracking (keepalived's `vrrp_script`,
//! `vrrp_track_process`, `track_file`, `track_interface`, sync groups).
//!
//! Data flows one way: a runner ([`run`], tokio, the only part with I/O)
//! sends a [`CheckEvent`] per result -> the check's rise/fall machine
//! ([`state::CheckStatus::record`], pure) -> on a transition, each instance
//! tracking the check re-evaluates ([`track::evaluate`], pure) -> its
//! effective priority / FAULT / INIT hold go to the protocol core, and sync
//! groups follow [`track::sync_group`] (pure).
//!
//! - [`spec`]: the `[[check]]` table and `track` entries as plain types,
//!   with validation that names the offending key.
//! - [`state`]: rise/fall, keepalived's semantics.
//! - [`track`]: effective priority, FAULT, sync groups.
//! - [`run`]: the exec / tcp / process / file runners.
//! - `sys`: pidfd and inotify, the only unsafe code here.

pub mod run;
pub mod spec;
pub mod state;
mod sys;
pub mod track;

pub use run::{CheckEvent, Runners};
pub use spec::{CheckKind, CheckSpec, InitialState, ProcessTarget, TrackSpec, TrackTarget};
pub use state::{CheckState, CheckStatus, Outcome};
pub use track::{GroupState, MemberWish, Source, TrackInput, Tracked, evaluate, sync_group};
