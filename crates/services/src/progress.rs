//! Reporting progress of long work without tying the work to a terminal.

/// Receives progress of a long piece of work. Implementations draw a progress bar, update a
/// session, or ignore it.
pub trait Progress: Send + Sync {
    /// Starts a phase of `total` steps, described by `message`.
    fn begin(&self, total: u64, message: &str);
    /// `steps` more steps are done.
    fn advance(&self, steps: u64);
    /// The phase is over.
    fn finish(&self);
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _total: u64, _message: &str) {}
    fn advance(&self, _steps: u64) {}
    fn finish(&self) {}
}
