//! A terminal progress bar for long commands (hidden when standard error is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;

/// Draws [`capstats_services::Progress`] as an indicatif bar on standard error.
pub struct TerminalProgress {
    bar: Mutex<Option<ProgressBar>>,
}

impl TerminalProgress {
    pub fn new() -> Self {
        Self {
            bar: Mutex::new(None),
        }
    }

    fn with_bar(&self, action: impl FnOnce(&mut Option<ProgressBar>)) {
        let mut bar = self
            .bar
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        action(&mut bar);
    }
}

impl capstats_services::Progress for TerminalProgress {
    fn begin(&self, total: u64, message: &str) {
        self.with_bar(|slot| {
            let bar = if total == 0 {
                ProgressBar::new_spinner()
            } else {
                ProgressBar::new(total)
            };
            let template = if total == 0 {
                "{spinner} {msg}: {pos} [{elapsed}]"
            } else {
                "{msg} [{bar:40}] {pos}/{len} ({percent}%, {eta} left)"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_message(message.to_owned());
            *slot = Some(bar);
        });
    }

    fn advance(&self, steps: u64) {
        self.with_bar(|slot| {
            if let Some(bar) = slot {
                bar.inc(steps);
            }
        });
    }

    fn finish(&self) {
        self.with_bar(|slot| {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        });
    }
}
