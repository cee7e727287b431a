#![doc = include_str!("../README.md")]

mod detail;
mod machine;
mod status;

pub use detail::{PeriodOutcome, RecordDetail};
pub use machine::{Counters, RecordState, SyncSession, TransitionError, roll_up, share_done};
pub use status::{RecordStatus, SessionStatus, SyncCategory, SyncType};
