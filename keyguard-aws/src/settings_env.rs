//! The policy settings as command-line flags and environment variables, shared by every binary.

use keyguard_core::{DisableWhileInUse, Settings};

/// keyguard's settings, each a flag and an environment variable (the names of the serverless port
/// of the aws-samples solution where it had one, so a migration keeps its configuration).
/// Parse once at start, then call [`SettingsArgs::settings`]: a bad value fails there, naming it.
#[derive(Debug, Clone, clap::Args)]
pub struct SettingsArgs {
    /// Days after which an active key is rotated.
    #[arg(long, env = "ROTATION_PERIOD", default_value_t = 90)]
    pub rotation_period: u32,
    /// Days from rotation to disabling the old key.
    #[arg(long, env = "INSTALLATION_GRACE_PERIOD", default_value_t = 10)]
    pub installation_grace_period: u32,
    /// Days from disabling to deleting a key.
    #[arg(long, env = "RECOVERY_GRACE_PERIOD", default_value_t = 10)]
    pub recovery_grace_period: u32,
    /// Days without use after which an active key is disabled (0 = off).
    #[arg(long, env = "UNUSED_KEY_PERIOD", default_value_t = 45)]
    pub unused_key_period: u32,
    /// Days of warning before each action.
    #[arg(long, env = "PENDING_ACTION_WARN_PERIOD", default_value_t = 14)]
    pub pending_action_warn_period: u32,
    /// Two active keys on one user is a finding.
    #[arg(long, env = "SINGLE_ACTIVE_KEY", default_value_t = true, action = clap::ArgAction::Set)]
    pub single_active_key: bool,
    /// The exemption group.
    #[arg(
        long,
        env = "IAM_EXEMPTION_GROUP",
        default_value = "IAMKeyRotationExemptionGroup"
    )]
    pub exemption_group: String,
    /// The user tag with the exemption's expiry date.
    #[arg(
        long,
        env = "EXEMPTION_EXPIRY_TAG",
        default_value = "keyguard:exemption-expires"
    )]
    pub exemption_expiry_tag: String,
    /// The longest an exemption may run, in days from the evaluation (an expiry further ahead
    /// is no exemption, and a finding).
    #[arg(long, env = "MAX_EXEMPTION_DAYS", default_value_t = 365)]
    pub max_exemption_days: u32,
    /// The user tag with the owner's email address.
    #[arg(long, env = "OWNER_EMAIL_TAG", default_value = "owner-email")]
    pub owner_email_tag: String,
    /// Enforce nothing (the default); set to false to let the remediator write.
    #[arg(long, env = "DRY_RUN_FLAG", default_value_t = true, action = clap::ArgAction::Set)]
    pub dry_run: bool,
    /// The old key's disable after a rotation while it is still used and its successor never
    /// was: `hold` (told each day, at most --max-disable-hold-days) or `proceed`.
    #[arg(long, env = "DISABLE_WHILE_IN_USE", default_value = "hold", value_parser = in_use)]
    pub disable_while_in_use: DisableWhileInUse,
    /// The longest a held disable waits, days after it was due (0..=90).
    #[arg(long, env = "MAX_DISABLE_HOLD_DAYS", default_value_t = 14)]
    pub max_disable_hold_days: u32,
    /// A disable or delete happens no earlier than this many days after its owner was first told
    /// of it (0..=30; 0 = off).
    #[arg(long, env = "MINIMUM_NOTICE_DAYS", default_value_t = 3)]
    pub minimum_notice_days: u32,
}

fn in_use(s: &str) -> Result<DisableWhileInUse, String> {
    DisableWhileInUse::parse(s).ok_or_else(|| format!("{s:?}: expected hold or proceed"))
}

impl SettingsArgs {
    /// The validated settings; the error names the offending setting.
    pub fn settings(&self) -> keyguard_core::Result<Settings> {
        let s = Settings {
            rotation_period: self.rotation_period,
            installation_grace_period: self.installation_grace_period,
            recovery_grace_period: self.recovery_grace_period,
            unused_key_period: self.unused_key_period,
            pending_action_warn_period: self.pending_action_warn_period,
            single_active_key: self.single_active_key,
            exemption_group: self.exemption_group.clone(),
            exemption_expiry_tag: self.exemption_expiry_tag.clone(),
            max_exemption_days: self.max_exemption_days,
            owner_email_tag: self.owner_email_tag.clone(),
            dry_run: self.dry_run,
            disable_while_in_use: self.disable_while_in_use,
            max_disable_hold_days: self.max_disable_hold_days,
            minimum_notice_days: self.minimum_notice_days,
        };
        s.validate()?;
        Ok(s)
    }
}

/// How to reach member accounts, as flags and environment variables.
#[derive(Debug, Clone, clap::Args)]
pub struct RoleArgs {
    /// The role keyguard assumes in each member account.
    #[arg(long, env = "KEYGUARD_MEMBER_ROLE", default_value = "keyguard-member")]
    pub member_role: String,
    /// The session name member accounts see in CloudTrail.
    #[arg(long, env = "KEYGUARD_SESSION_NAME", default_value = "keyguard")]
    pub session_name: String,
    /// A role to list the organization's accounts through (deploy/org-list-role.yaml), when the
    /// caller's account may not call organizations:ListAccounts itself. Empty means none.
    #[arg(long, env = "KEYGUARD_ORG_ROLE_ARN")]
    pub org_role_arn: Option<String>,
    /// keyguard's roles in every member account (deployed by its StackSet, guarded by
    /// deploy/member-guard-scp.yaml), besides --member-role: a session of one counts as keyguard
    /// in the report only in the account the role is in (comma-separated). The remediator's, and
    /// the operator's (`keyguard restore` from the CLI runs as `keyguard-member`).
    #[arg(
        long,
        env = "KEYGUARD_ACTOR_ROLES",
        value_delimiter = ',',
        default_value = "keyguard-member-remediator,keyguard-member"
    )]
    pub actor_roles: Vec<String>,
    /// keyguard's roles in the central account (the remediator's execution role): a session of
    /// one counts as keyguard only in the central account, the one the report is made from (or
    /// that collected the evidence). Comma-separated.
    #[arg(
        long,
        env = "KEYGUARD_CENTRAL_ROLES",
        value_delimiter = ',',
        default_value = "keyguard-remediator"
    )]
    pub central_roles: Vec<String>,
}

impl RoleArgs {
    /// keyguard's roles: the member role and the actor roles in every account, the central
    /// roles in the central account (set with [`KeyguardRoles::in_central`]).
    pub fn keyguard_roles(&self) -> KeyguardRoles {
        let names = |list: &[&String]| {
            let mut out: Vec<String> = Vec::new();
            for r in list {
                let r = r.trim();
                if !r.is_empty() && !out.iter().any(|o| o == r) {
                    out.push(r.to_string());
                }
            }
            out
        };
        let member: Vec<&String> = std::iter::once(&self.member_role)
            .chain(&self.actor_roles)
            .collect();
        KeyguardRoles {
            member: names(&member),
            central: names(&self.central_roles.iter().collect::<Vec<_>>()),
            central_account: None,
        }
    }

    /// As a [`crate::sdk::RoleSpec`].
    pub fn spec(&self) -> crate::sdk::RoleSpec {
        crate::sdk::RoleSpec {
            role_name: self.member_role.clone(),
            session_name: self.session_name.clone(),
            org_role_arn: self.org_role_arn.clone(),
        }
    }
}

/// The accounts that must own the buckets keyguard reads and writes (S3's ExpectedBucketOwner:
/// a bucket of the same name in another account is refused, never read from or written to).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BucketOwnerArgs {
    /// The account that owns the report bucket (reports, their history, a queued report's
    /// evidence). Default: the caller's own account.
    #[arg(long, env = "REPORT_BUCKET_OWNER", value_parser = account_id)]
    pub report_bucket_owner: Option<String>,
    /// The account that owns the organization trail's bucket (the log archive account). Unset:
    /// the owner is not checked.
    #[arg(long, env = "TRAIL_BUCKET_OWNER", value_parser = account_id)]
    pub trail_bucket_owner: Option<String>,
}

fn account_id(s: &str) -> Result<String, String> {
    let s = s.trim();
    if keyguard_core::Account::is_id(s) {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not a 12-digit account id"))
    }
}

impl BucketOwnerArgs {
    /// The report bucket's owner: the one given, else `caller` (the caller's account).
    pub fn report(&self, caller: &str) -> Option<String> {
        self.report_bucket_owner
            .clone()
            .or_else(|| Some(caller.to_string()))
    }
}

/// Who keyguard's notices may go to, as flags and environment variables: the administrators and
/// the organization's mail domains (an owner tag's address elsewhere is not an owner).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OwnerArgs {
    /// Administrators (comma-separated): the digest's recipients and the last owner fallback.
    #[arg(long, env = "ADMIN_EMAILS", value_delimiter = ',')]
    pub admin_emails: Vec<String>,
    /// The organization's mail domains (comma-separated): an owner tag's address elsewhere is
    /// not an owner (notices go to the account's email or the administrators, and the digest and
    /// the report say so). Default: the domains of ADMIN_EMAILS; a user's account email's domain
    /// is admitted too.
    #[arg(long, env = "OWNER_EMAIL_DOMAINS", value_delimiter = ',')]
    pub owner_email_domains: Vec<String>,
}

impl OwnerArgs {
    /// The domains owners must be at; `None` when neither domains nor administrators are given
    /// (nothing to check against).
    pub fn domains(&self) -> Option<keyguard_core::owner::OwnerDomains> {
        let d =
            keyguard_core::owner::OwnerDomains::new(&self.owner_email_domains, &self.admin_emails);
        (!d.list().is_empty()).then_some(d)
    }
}

/// The roles whose CloudTrail actions are keyguard's, by full identity: a role *name* means
/// nothing across accounts (any account can create a role called `keyguard-remediator`), so a
/// member role counts only in its own account, a central role only in the central account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyguardRoles {
    /// Roles keyguard's StackSet deploys in every account.
    pub member: Vec<String>,
    /// keyguard's roles in the central account.
    pub central: Vec<String>,
    /// The central account, when known (without it no central role counts).
    pub central_account: Option<String>,
}

impl KeyguardRoles {
    /// These roles, with `account` as the central account.
    pub fn in_central(mut self, account: Option<String>) -> Self {
        self.central_account = account;
        self
    }

    /// Whether `actor` (a CloudTrail `userIdentity.arn`) acting in `account` is keyguard: an
    /// assumed-role session (`arn:<partition>:sts::<acct>:assumed-role/<role>/<session>`) of a
    /// member role in `account` itself, or of a central role in the central account.
    pub fn acted(&self, actor: &str, account: &str) -> bool {
        let Some((head, rest)) = actor.split_once(":assumed-role/") else {
            return false;
        };
        let Some(acct) = head.strip_prefix("arn:").and_then(|h| h.split(':').nth(3)) else {
            return false;
        };
        let role = rest.split('/').next().unwrap_or("");
        (acct == account && self.member.iter().any(|r| r == role))
            || (self.central_account.as_deref() == Some(acct)
                && self.central.iter().any(|r| r == role))
    }
}

#[cfg(test)]
mod tests {
    use super::KeyguardRoles;

    #[test]
    fn a_role_counts_as_keyguard_only_in_its_own_place() {
        let roles = KeyguardRoles {
            member: vec!["keyguard-member-remediator".into()],
            central: vec!["keyguard-remediator".into()],
            central_account: Some("999999999999".into()),
        };
        let member = "arn:aws:sts::111122223333:assumed-role/keyguard-member-remediator/keyguard";
        assert!(roles.acted(member, "111122223333"));
        // The same name acting in another account is not keyguard's role there.
        assert!(!roles.acted(member, "444455556666"));
        let central = "arn:aws:sts::999999999999:assumed-role/keyguard-remediator/run";
        assert!(roles.acted(central, "999999999999"));
        // A member's own role named after the central one.
        let forged = "arn:aws:sts::111122223333:assumed-role/keyguard-remediator/run";
        assert!(!roles.acted(forged, "111122223333"));
        assert!(!roles.acted(
            "arn:aws:iam::111122223333:user/keyguard-remediator",
            "111122223333"
        ));
        assert!(!roles.in_central(None).acted(central, "999999999999"));
    }
}
