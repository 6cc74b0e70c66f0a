//! How hard keyguard pushes AWS: the one bound on the concurrent calls of a fan-out.

/// Upper bound on concurrent API calls of one fan-out (users of an account, accounts of an org).
/// IAM's control plane throttles early; eight in flight stays well below its limits.
pub const CONCURRENCY: usize = 8;
