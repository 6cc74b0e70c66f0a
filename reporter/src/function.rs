//! What the reporter function is built with, once at start-up: its SDK configuration, who it
//! runs as, the report's options and sources, where reports go, and the queue when deployed.

use aws_config::SdkConfig;
use keyguard_aws::org::AccountFilter;
use keyguard_aws::sdk::Caller;

use crate::deliver::Delivery;
use crate::evidence::Options;
use crate::live::LiveOptions;

/// What the function needs besides the event, built once at start-up.
#[derive(Debug, Clone)]
pub struct Reporter {
    /// The SDK configuration of the function's own account.
    pub sdk: SdkConfig,
    /// Who the function runs as.
    pub caller: Caller,
    /// Policy, rule name, keyguard's roles (`kind` and `as_of` are replaced per event).
    pub options: Options,
    /// Config and CloudTrail sources, member role.
    pub live: LiveOptions,
    /// Which accounts (include / exclude lists).
    pub filter: AccountFilter,
    /// Where reports go (S3 and/or email; a folder makes no sense in Lambda).
    pub delivery: Delivery,
    /// The central state table (with the queue: run progress).
    pub state: Option<keyguard_aws::state::StateTable>,
    /// The report queue's URL: a report is then spread over one invocation per account.
    pub queue: Option<String>,
    /// The report queue's maxReceiveCount.
    pub max_receives: u32,
}
