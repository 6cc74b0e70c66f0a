//! What the remediator function is built with, once at start-up: its SDK configuration, who it
//! runs as, the policy, the member role, where notices go, and what is deployed (the state table,
//! the work queue).

use aws_config::SdkConfig;
use keyguard_aws::inventory::ReportPolling;
use keyguard_aws::org::AccountFilter;
use keyguard_aws::sdk::{Caller, RoleSpec};
use keyguard_aws::state::StateTable;
use keyguard_core::Settings;

/// Everything a run needs that does not change between invocations; built once in `main`.
#[derive(Debug, Clone)]
pub struct Remediator {
    /// The function's own SDK configuration (SES and EventBridge are called with it).
    pub sdk: SdkConfig,
    /// Who the function runs as.
    pub caller: Caller,
    /// The policy; its `dry_run` is the switch that allows writes.
    pub settings: Settings,
    /// The member role.
    pub role: RoleSpec,
    /// Credential-report polling.
    pub polling: ReportPolling,
    /// Where notices go.
    pub notices: NoticeConfig,
    /// A customer-managed KMS key for new secrets (the account's default key otherwise).
    pub kms_key_id: Option<String>,
    /// Who may read a new key besides keyguard (`SECRET_READERS`): `self` (the user) and/or
    /// principal ARNs with `{account}`; see [`keyguard_aws::secrets::readers`].
    pub secret_readers: Vec<String>,
    /// Delete a rotation's secret this many days after keyguard first saw its key used
    /// (`SECRET_DELETE_DAYS_AFTER_USE`); `None` keeps secrets.
    pub secret_delete_after_use_days: Option<u32>,
    /// Adopt the aws-samples solution's secrets (`ADOPT_AWS_SAMPLES_SECRETS`):
    /// [`crate::secret_adoption`].
    pub adopt_secrets: bool,
    /// What an AWS Health event of an exposed key does (`EXPOSED_KEY_RESPONSE`).
    pub exposed_response: crate::exposure_event::ExposedKeyResponse,
    /// Which accounts a sweep covers (`EXCLUDED_ACCOUNTS`).
    pub filter: AccountFilter,
    /// The central state table, when deployed (`KEYGUARD_STATE_TABLE`).
    pub state: Option<StateTable>,
    /// The work queue's URL, when deployed (`WORK_QUEUE_URL`): the sweep then hands out one
    /// message per account instead of running them.
    pub queue: Option<String>,
    /// How close to an invocation's deadline no user and no rotation is started.
    pub deadline_margin: std::time::Duration,
    /// Deliveries of a queued message before SQS dead-letters it (the queue's `maxReceiveCount`):
    /// the last one records the account as failed so that its run can finish.
    pub max_receives: u32,
    /// Tell owners where each key with a step is used, from CloudTrail (`KEY_USAGE`).
    pub key_usage: bool,
    /// How long a user's lease lasts ([`crate::lease`]).
    pub lease_ttl: std::time::Duration,
    /// Write without a lease, and with keyguard's records read from user tags, when no state
    /// table is configured (`--no-lease`: one operator, no deployed keyguard, tags trusted).
    pub no_lease: bool,
}

impl Remediator {
    /// A remediator with keyguard's defaults for everything but who it is and its policy: no
    /// notices, no queue or state table, a 60-second deadline margin, 3 receives.
    pub fn new(sdk: SdkConfig, caller: Caller, settings: Settings, role: RoleSpec) -> Self {
        Remediator {
            sdk,
            caller,
            settings,
            role,
            polling: ReportPolling::default(),
            notices: NoticeConfig::default(),
            kms_key_id: None,
            secret_readers: vec!["self".into()],
            secret_delete_after_use_days: None,
            adopt_secrets: false,
            exposed_response: crate::exposure_event::ExposedKeyResponse::default(),
            filter: AccountFilter::default(),
            state: None,
            queue: None,
            deadline_margin: std::time::Duration::from_secs(60),
            max_receives: 3,
            key_usage: true,
            lease_ttl: std::time::Duration::from_secs(15 * 60),
            no_lease: false,
        }
    }

    /// True when a run in `mode` writes nothing: DryRun is on, or the request asks for a preview.
    pub(crate) fn dry_run(&self, mode: crate::requests::Mode) -> bool {
        self.settings.dry_run || mode == crate::requests::Mode::Preview
    }

    /// A remediator for unit tests (no AWS is called).
    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        Self::new(
            aws_config::SdkConfig::builder().build(),
            Caller {
                account: "111122223333".into(),
                partition: "aws".into(),
                arn: "arn:aws:sts::111122223333:assumed-role/r/s".into(),
            },
            Settings::default(),
            RoleSpec {
                role_name: "keyguard-member".into(),
                session_name: "keyguard".into(),
                org_role_arn: None,
            },
        )
    }
}

/// Where notices go. Without a sender no email is sent (the summary says so).
#[derive(Debug, Clone, Default)]
pub struct NoticeConfig {
    /// The SES identity emails come from (`keyguard@example.com`).
    pub sender: Option<String>,
    /// Administrators: the digest's recipients and the owners' last fallback.
    pub admins: Vec<String>,
    /// The domains an owner tag's address must be at (`OWNER_EMAIL_DOMAINS`, by default the
    /// administrators'); the account's own email's domain is admitted too.
    pub owner_domains: keyguard_core::owner::OwnerDomains,
    /// An EventBridge bus to publish one `keyguard key action` event per action to.
    pub event_bus: Option<String>,
}
