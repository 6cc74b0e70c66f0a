//! keyguard-aws
