//! The remediator's own settings as flags and environment variables (beside the policy's
//! [`keyguard_aws::settings_env::SettingsArgs`] and the member role's
//! [`keyguard_aws::settings_env::RoleArgs`]): where notices go, and how it is deployed.

use keyguard_aws::state::StateTable;

use crate::email_templates::valid_address;
use crate::error::{Error, Result};
use crate::exposure_event::ExposedKeyResponse;
use crate::function::{NoticeConfig, Remediator};

/// The remediator's own settings, as flags and environment variables (with the policy's
/// [`keyguard_aws::settings_env::SettingsArgs`] and [`keyguard_aws::settings_env::RoleArgs`]).
#[derive(Debug, Clone, clap::Args)]
pub struct NoticeArgs {
    /// The SES identity notices are sent from; without it no email is sent.
    #[arg(long, env = "NOTICE_SENDER")]
    pub notice_sender: Option<String>,
    /// Administrators (the digest's recipients and the last owner fallback) and the
    /// organization's mail domains owners must be at.
    #[command(flatten)]
    pub owners: keyguard_aws::settings_env::OwnerArgs,
    /// An EventBridge bus for one `keyguard key action` event per action.
    #[arg(long, env = "EVENT_BUS")]
    pub event_bus: Option<String>,
    /// A customer-managed KMS key id or ARN for new secrets.
    #[arg(long, env = "SECRET_KMS_KEY_ID")]
    pub secret_kms_key_id: Option<String>,
    /// Who may read a new key besides keyguard (comma-separated): `self` (the user itself, as
    /// aws-samples does: whoever holds the old key can read the new one) and/or principal ARNs,
    /// `{account}` standing for the user's account (e.g. a CI role). After a leak never the user.
    #[arg(
        long,
        env = "SECRET_READERS",
        value_delimiter = ',',
        default_value = "self"
    )]
    pub secret_readers: Vec<String>,
    /// Tell owners where each key with a step is used, from CloudTrail's LookupEvents (needs
    /// cloudtrail:LookupEvents in the member role); `false`: IAM's last use only.
    #[arg(long, env = "KEY_USAGE", default_value_t = true, action = clap::ArgAction::Set)]
    pub key_usage: bool,
    /// Delete a rotation's secret this many days after keyguard first saw its new key used (the
    /// owner installed it), restorable for 7 days; a secret costs $0.40 a month. Unset: kept.
    #[arg(long, env = "SECRET_DELETE_DAYS_AFTER_USE", value_name = "DAYS")]
    pub secret_delete_days_after_use: Option<u32>,
    /// Adopt the secrets an earlier rotator (the aws-samples solution) left under keyguard's
    /// names: each sweep tags `Account_<account>_User_<user>_AccessKey` secrets of existing users,
    /// created after the user, as keyguard's, so that retention and the report's cost include
    /// them (docs/migrating.md).
    #[arg(long, env = "ADOPT_AWS_SAMPLES_SECRETS", default_value_t = false, action = clap::ArgAction::Set)]
    pub adopt_aws_samples_secrets: bool,
    /// What an AWS Health event of an exposed key does (`rotate-and-disable`, `disable`,
    /// `notify`); the first two act even while DryRun is on (docs/security.md).
    #[arg(long, env = "EXPOSED_KEY_RESPONSE", value_enum, default_value_t = ExposedKeyResponse::RotateAndDisable)]
    pub exposed_key_response: ExposedKeyResponse,
}

/// How the remediator is deployed, as flags and environment variables: the central state
/// table, the work queue, and its deadline guard.
#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    /// The central state table (DynamoDB): previews already sent, and with the queue, run
    /// progress and notice pieces.
    #[arg(long, env = "KEYGUARD_STATE_TABLE")]
    pub state_table: Option<String>,
    /// The work queue (SQS URL): the scheduled sweep hands out one message per account.
    #[arg(long, env = "WORK_QUEUE_URL", hide = true)]
    pub work_queue_url: Option<String>,
    /// No user and no rotation is started this close to the invocation's deadline (seconds).
    #[arg(long, env = "DEADLINE_MARGIN_SECONDS", default_value_t = 60)]
    pub deadline_margin_seconds: u64,
    /// The work queue's maxReceiveCount: the last delivery records an account as failed.
    #[arg(long, env = "MAX_RECEIVE_COUNT", default_value_t = 3, hide = true)]
    pub max_receive_count: u32,
    /// Write without the state table's per-user lease, reading keyguard's records from user tags
    /// (which anyone allowed iam:TagUser can set). Only when no keyguard is deployed and nobody
    /// else runs it: without a lease two runs can work on one user at once.
    #[arg(long, conflicts_with = "state_table")]
    pub no_lease: bool,
}

impl ScaleArgs {
    /// Writes need the state table's lease, or an explicit `--no-lease`: an error saying so.
    pub fn lease_or_bail(&self) -> Result<()> {
        if self.no_lease
            || self
                .state_table
                .as_deref()
                .is_some_and(|t| !t.trim().is_empty())
        {
            return Ok(());
        }
        Err(Error::Refused(
            "writes take each user's lease in the central state table: give --state-table TABLE \
             (KEYGUARD_STATE_TABLE), or --no-lease if no deployed keyguard and no other operator \
             can work on these users now (keyguard's records are then read from user tags)"
                .into(),
        ))
    }

    /// Applies these settings to `r`; the state table is reached with `r.sdk`.
    pub fn apply(&self, r: &mut Remediator) {
        let blank = |s: &Option<String>| s.clone().filter(|v| !v.trim().is_empty());
        r.state = blank(&self.state_table).map(|t| StateTable::new(&r.sdk, t));
        r.queue = blank(&self.work_queue_url);
        r.deadline_margin = std::time::Duration::from_secs(self.deadline_margin_seconds);
        r.max_receives = self.max_receive_count.max(1);
        r.no_lease = self.no_lease;
    }
}

impl NoticeArgs {
    /// The notice configuration; a malformed address is an error naming the variable.
    pub fn config(&self) -> Result<NoticeConfig> {
        let admins: Vec<String> = self
            .owners
            .admin_emails
            .iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        for a in self.notice_sender.iter().chain(&admins) {
            if !valid_address(a) {
                return Err(Error::MalformedEvent(format!(
                    "NOTICE_SENDER / ADMIN_EMAILS: {a:?} is not an email address"
                )));
            }
        }
        Ok(NoticeConfig {
            sender: self.notice_sender.clone(),
            owner_domains: keyguard_core::owner::OwnerDomains::new(
                &self.owners.owner_email_domains,
                &admins,
            ),
            admins,
            event_bus: self.event_bus.clone().filter(|b| !b.is_empty()),
        })
    }
}
