//! Progress of live runs on stderr: accounts done / total and failures so far, as a bar when
//! stderr is a terminal, and nothing at all when it is not (a pipe, a file, CI).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keyguard_aws::progress::Sink;

/// A progress bar over the accounts of a fan-out.
pub struct Bar {
    bar: ProgressBar,
    failed: AtomicUsize,
}

impl Bar {
    /// A bar drawn to `target`.
    pub fn new(target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} accounts, {msg} {elapsed}")
                .expect("a valid template"),
        );
        Bar {
            bar,
            failed: AtomicUsize::new(0),
        }
    }
}

impl Sink for Bar {
    fn start(&self, total: usize) {
        self.failed.store(0, Ordering::Relaxed);
        self.bar.reset();
        self.bar.set_length(total as u64);
        self.bar.set_message("0 failed");
    }

    fn account_done(&self, failed: bool) {
        let n = if failed {
            self.failed.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.failed.load(Ordering::Relaxed)
        };
        self.bar.set_message(format!("{n} failed"));
        self.bar.inc(1);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Shows progress on stderr when it is a terminal; does nothing otherwise.
pub fn install_when_interactive() {
    if std::io::stderr().is_terminal() {
        keyguard_aws::progress::install(Box::new(Bar::new(ProgressDrawTarget::stderr())));
    }
}
