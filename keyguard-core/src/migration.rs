//! Migrating from the aws-samples "IAM access key auto-rotation" solution: its stack's
//! parameters (`aws cloudformation describe-stacks … --query 'Stacks[0].Parameters'`) as
//! keyguard's central and member stacks' (docs/migrating.md has the table). Pure: the CLI's
//! `keyguard migrate` reads the file and prints the overrides.

use std::collections::BTreeMap;

/// The aws-samples parameters with no keyguard counterpart, and why they need none.
pub const IGNORED: [(&str, &str); 13] = [
    (
        "S3BucketName",
        "keyguard's zips: central.yaml's ArtifactBucket",
    ),
    (
        "S3BucketPrefix",
        "keyguard's zips: central.yaml's ArtifactPrefix",
    ),
    (
        "IAMRoleName",
        "keyguard's member roles have fixed names (keyguard-member-*)",
    ),
    (
        "ExecutionRoleName",
        "keyguard's execution roles have fixed names",
    ),
    (
        "InventoryExecutionRoleName",
        "keyguard has no separate inventory function",
    ),
    (
        "EnvironmentName",
        "keyguard's roles trust by organization and role name, not a tag",
    ),
    (
        "EmailTemplateEnforce",
        "keyguard's notices are its templates (report-templates/)",
    ),
    (
        "EmailTemplateAudit",
        "keyguard's notices are its templates (report-templates/)",
    ),
    (
        "SMTPUserParamName",
        "keyguard sends through SESv2, no SMTP credentials",
    ),
    (
        "SMTPPasswordParamName",
        "keyguard sends through SESv2, no SMTP credentials",
    ),
    ("VpcId", "keyguard does not run in a VPC"),
    ("VpcCidr", "keyguard does not run in a VPC"),
    ("SubnetId", "keyguard does not run in a VPC"),
];

/// keyguard's parameters for an aws-samples stack's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migration {
    /// deploy/central.yaml's parameters.
    pub central: BTreeMap<String, String>,
    /// deploy/member-role.yaml's (the StackSet's) parameters.
    pub member: BTreeMap<String, String>,
    /// What keyguard cannot keep: the migration stops until these are changed.
    pub refused: Vec<String>,
    /// What was left out, and why.
    pub notes: Vec<String>,
}

impl Migration {
    fn both(&mut self, name: &str, value: &str) {
        self.central.insert(name.into(), value.into());
        self.member.insert(name.into(), value.into());
    }
}

fn days(params: &BTreeMap<String, String>, name: &str, m: &mut Migration) -> Option<u32> {
    let v = params.get(name)?.trim();
    match v.parse::<u32>() {
        Ok(d) => Some(d),
        Err(_) => {
            m.refused
                .push(format!("{name} {v:?} is not a number of days"));
            None
        }
    }
}

/// Maps an aws-samples stack's parameters to keyguard's. The secrets it left are adopted
/// (`AdoptAwsSamplesSecrets`): they already carry keyguard's names.
pub fn from_aws_samples(params: &BTreeMap<String, String>) -> Migration {
    let mut m = Migration::default();
    let get = |k: &str| params.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let rotation = days(params, "RotationPeriod", &mut m);
    if let Some(d) = rotation {
        m.both("RotationPeriod", &d.to_string());
    }
    // aws-samples disables at InactivePeriod days of age, InactiveBuffer after the rotation;
    // keyguard disables InstallationGracePeriod after the successor was created.
    let buffer = days(params, "InactiveBuffer", &mut m);
    let inactive = days(params, "InactivePeriod", &mut m);
    let grace = match (buffer, inactive, rotation) {
        (Some(b), Some(i), Some(r)) if i.checked_sub(r) != Some(b) => {
            m.notes.push(format!(
                "InactivePeriod {i} − RotationPeriod {r} is not InactiveBuffer {b}: \
                 InstallationGracePeriod is InactiveBuffer"
            ));
            Some(b)
        }
        (Some(b), _, _) => Some(b),
        (None, Some(i), Some(r)) if i > r => Some(i - r),
        (None, Some(i), Some(r)) => {
            m.refused.push(format!(
                "InactivePeriod {i} is not after RotationPeriod {r}"
            ));
            None
        }
        _ => None,
    };
    if let Some(g) = grace {
        m.both("InstallationGracePeriod", &g.to_string());
    }
    if let Some(d) = days(params, "RecoveryGracePeriod", &mut m) {
        m.both("RecoveryGracePeriod", &d.to_string());
    }
    if let Some(g) = get("IAMExemptionGroup") {
        m.both("ExemptionGroup", g);
    }
    if let Some(tag) = get("ResourceOwnerTag") {
        m.both("OwnerEmailTag", tag);
    }
    if let Some(org) = get("AWSOrgID") {
        m.both("OrganizationId", org);
    }
    match get("DryRunFlag").map(str::to_ascii_lowercase).as_deref() {
        Some(v @ ("true" | "false")) => {
            m.central.insert("DryRun".into(), v.into());
        }
        Some(other) => m
            .refused
            .push(format!("DryRunFlag {other:?} is not True or False")),
        None => {}
    }
    // aws-samples' AdminEmailAddress is the address its mail comes from.
    if let Some(admin) = get("AdminEmailAddress") {
        m.central.insert("NoticeSender".into(), admin.into());
        m.central.insert("AdminEmails".into(), admin.into());
    }
    if let Some(account) = get("OrgListAccount") {
        let role = get("OrgListRole").unwrap_or("asa-iam-key-rotation-list-accounts-role");
        m.central.insert(
            "OrgListRoleArn".into(),
            format!("arn:aws:iam::{account}:role/{role}"),
        );
        m.notes.push(format!(
            "OrgListRoleArn names aws-samples' {role}; deploy/org-list-role.yaml's keyguard-org-list \
             replaces it once the aws-samples stacks are removed"
        ));
    }
    for (flag, why) in [
        (
            "StoreSecretsInCentralAccount",
            "keyguard keeps each secret in its user's account",
        ),
        ("RunLambdaInVPC", "keyguard does not run in a VPC"),
    ] {
        if get(flag).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            m.refused.push(format!("{flag} True: {why}"));
        }
    }
    if let Some(regions) = get("CredentialReplicationRegions") {
        m.refused.push(format!(
            "CredentialReplicationRegions {regions:?}: keyguard does not replicate secrets"
        ));
    }
    m.central
        .insert("AdoptAwsSamplesSecrets".into(), "true".into());
    const MAPPED: [&str; 14] = [
        "RotationPeriod",
        "InactiveBuffer",
        "InactivePeriod",
        "RecoveryGracePeriod",
        "IAMExemptionGroup",
        "ResourceOwnerTag",
        "AWSOrgID",
        "DryRunFlag",
        "AdminEmailAddress",
        "OrgListAccount",
        "OrgListRole",
        "StoreSecretsInCentralAccount",
        "RunLambdaInVPC",
        "CredentialReplicationRegions",
    ];
    for name in params.keys() {
        if !MAPPED.contains(&name.as_str()) && !IGNORED.iter().any(|(n, _)| n == name) {
            m.refused.push(format!(
                "{name}: not an aws-samples parameter keyguard knows"
            ));
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_buffer_is_the_installation_grace_and_the_owner_tag_is_kept() {
        let m = from_aws_samples(&params(&[
            ("RotationPeriod", "90"),
            ("InactivePeriod", "100"),
            ("InactiveBuffer", "10"),
            ("RecoveryGracePeriod", "10"),
            ("ResourceOwnerTag", "owner"),
            ("DryRunFlag", "True"),
            ("S3BucketName", "x"),
        ]));
        assert!(m.refused.is_empty(), "{:?}", m.refused);
        assert_eq!(m.member["InstallationGracePeriod"], "10");
        assert_eq!(m.member["OwnerEmailTag"], "owner");
        assert_eq!(m.central["DryRun"], "true");
        assert_eq!(m.central["AdoptAwsSamplesSecrets"], "true");
        // Without the buffer, the inactive period gives it.
        let m = from_aws_samples(&params(&[
            ("RotationPeriod", "60"),
            ("InactivePeriod", "75"),
        ]));
        assert_eq!(m.central["InstallationGracePeriod"], "15");
    }

    #[test]
    fn what_keyguard_cannot_keep_is_refused() {
        let m = from_aws_samples(&params(&[
            ("StoreSecretsInCentralAccount", "True"),
            ("CredentialReplicationRegions", "us-west-2"),
            ("RotationPeriod", "ninety"),
            ("Frobnicate", "1"),
        ]));
        assert_eq!(m.refused.len(), 4, "{:?}", m.refused);
    }
}
