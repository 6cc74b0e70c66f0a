//! The remediator: executes `keyguard_core::plan()` against IAM (issue 3). Nothing here yet.
