//! Progress of the per-account fan-out ([`crate::org::per_account`]), for a CLI that shows it.
//! The libraries only report; a process that wants to see it installs one [`Sink`] (the CLI: a
//! progress bar on a terminal). Without a sink, as in the Lambdas, reporting costs nothing.

use std::sync::OnceLock;

/// Receives the progress of a fan-out.
pub trait Sink: Send + Sync {
    /// A fan-out over `total` accounts starts.
    fn start(&self, total: usize);
    /// One account is done; `failed` when its outcome is a failure.
    fn account_done(&self, failed: bool);
    /// The fan-out is over.
    fn finish(&self);
}

static SINK: OnceLock<Box<dyn Sink>> = OnceLock::new();

/// Installs the process's sink (once; later calls are ignored).
pub fn install(sink: Box<dyn Sink>) {
    let _ = SINK.set(sink);
}

pub(crate) fn start(total: usize) {
    if let Some(s) = SINK.get() {
        s.start(total);
    }
}

pub(crate) fn account_done(failed: bool) {
    if let Some(s) = SINK.get() {
        s.account_done(failed);
    }
}

pub(crate) fn finish() {
    if let Some(s) = SINK.get() {
        s.finish();
    }
}

/// Whether one account's outcome counts as a failure in the progress shown.
pub trait Outcome {
    /// True for a failed account.
    fn failed(&self) -> bool;
}

impl<T, E> Outcome for Result<T, E> {
    fn failed(&self) -> bool {
        self.is_err()
    }
}
