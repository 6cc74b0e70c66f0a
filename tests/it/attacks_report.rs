//! What a member account's administrator tries against the auditors' report, one test per
//! attack, against the rig: make Config answer COMPLIANT for everyone, exempt a user for ever,
//! pass its own role off as keyguard's. Each builds the live report as the deployed reporter
//! does (`keyguard report` as `keyguard-reporter`, `keyguard-member-reporter` in the members) and
//! fails if its fix is undone.

use std::path::PathBuf;

use aws_sdk_config::types::{ComplianceType, Evaluation};
use chrono::{DateTime, SubsecRound, Utc};

use crate::report::{csv, keyguard, ok, tmp};
use crate::support::{seed, Org, Rig, UserSpec};

/// The weekly live report of `org` in a fresh folder, with the CLI's stderr.
pub(crate) async fn live_report(org: &Org, name: &str, now: DateTime<Utc>) -> (PathBuf, String) {
    live_report_with(org, name, now, &[]).await
}

/// [`live_report`] with more environment variables.
pub(crate) async fn live_report_with(
    org: &Org,
    name: &str,
    now: DateTime<Utc>,
    extra: &[(&'static str, &str)],
) -> (PathBuf, String) {
    let rig = Rig::get();
    let reporter = rig
        .as_role(&org.management, "keyguard-reporter", "report")
        .await;
    let mut env = crate::support::env_of(&reporter).await;
    env.push(("KEYGUARD_MEMBER_ROLE", "keyguard-member-reporter".into()));
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let out = tmp(name);
    let run = keyguard(
        &["report", "--weekly", "--out", out.to_str().unwrap()],
        &env,
    );
    let stderr = ok(&run);
    (
        out.join(reporter::Period::weekly(now.date_naive()).id()),
        stderr,
    )
}

/// One member account whose administrator (`mallory`) made `users` (name, key ages in days):
/// the organization, the account, now, the administrator's SDK configuration and the users.
pub(crate) async fn member_with(
    users: &[(&str, i64)],
) -> (
    Org,
    String,
    DateTime<Utc>,
    aws_config::SdkConfig,
    std::collections::HashMap<String, crate::support::Seeded>,
) {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let now = Utc::now().trunc_subsecs(0);
    let admin = Rig::get()
        .as_role(&member, "AWSReservedSSO_Admin", "mallory")
        .await;
    let specs: Vec<UserSpec> = users
        .iter()
        .map(|(name, age)| UserSpec {
            name: (*name).into(),
            keys: vec![(*age, Some(1), true)],
            ..Default::default()
        })
        .collect();
    let seeded = seed(&admin, &member, &specs, now).await;
    (org, member, now, admin, seeded)
}

/// The member's administrator replaces the rule's function with one that answers COMPLIANT for
/// every user (here: writes those verdicts itself, as that function would). The report's
/// headline would show the account clean; keyguard's own evaluation of what IAM returns
/// disagrees, and the report says so, per user and for the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_rule_that_answers_compliant_is_a_disagreement_in_the_report() {
    let (org, member, now, admin, users) = member_with(&[("hidden", 140), ("fine", 10)]).await;
    let config = aws_sdk_config::Client::new(&admin);
    let evaluations: Vec<Evaluation> = ["hidden", "fine"]
        .iter()
        .map(|u| {
            Evaluation::builder()
                .compliance_resource_type("AWS::IAM::User")
                .compliance_resource_id(&users[*u].user_id)
                .compliance_type(ComplianceType::Compliant)
                .ordering_timestamp(aws_sdk_config::primitives::DateTime::from_secs(
                    now.timestamp(),
                ))
                .build()
                .unwrap()
        })
        .collect();
    config
        .put_evaluations()
        .result_token("keyguard-access-keys/forged")
        .set_evaluations(Some(evaluations))
        .send()
        .await
        .unwrap();

    let (dir, stderr) = live_report(&org, "forged-verdicts", now).await;
    let rows = csv(&dir.join("disagreements.csv"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(
        (row["account"].as_str(), row["user"].as_str()),
        (member.as_str(), "hidden")
    );
    assert_eq!(
        (row["config"].as_str(), row["keyguard"].as_str()),
        ("COMPLIANT", "NON_COMPLIANT")
    );
    assert!(
        row["finding"].starts_with("Config says COMPLIANT; IAM shows key1 is 140d old")
            && row["finding"].ends_with(&format!(
                "the rule in account {member} may have been changed"
            )),
        "{row:?}"
    );
    assert!(
        stderr.contains(&format!(
            "account {member}: Config calls 1 user(s) compliant whom IAM shows out of policy"
        )),
        "{stderr}"
    );
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("Config and IAM disagree (1)"), "the section");
}

/// The member's administrator exempts a user until `9999-12-31`: no exemption, but a finding
/// (the Config rule's reading, `keyguard audit`, says why), and the report's exemption ledger
/// flags the grant as longer than the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exemption_without_end_is_a_finding_and_flagged_in_the_ledger() {
    use aws_sdk_iam::types::Tag;
    let (org, member, now, admin, _) = member_with(&[("forever", 120)]).await;
    let settings = keyguard_core::Settings::default();
    let iam = aws_sdk_iam::Client::new(&admin);
    iam.create_group()
        .group_name(&settings.exemption_group)
        .send()
        .await
        .unwrap();
    iam.add_user_to_group()
        .group_name(&settings.exemption_group)
        .user_name("forever")
        .send()
        .await
        .unwrap();
    iam.tag_user()
        .user_name("forever")
        .tags(
            Tag::builder()
                .key(&settings.exemption_expiry_tag)
                .value("9999-12-31")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let out = keyguard(&["audit", "--account", &member, "--json"], &org.env().await);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let row = rows.iter().find(|r| r["user_name"] == "forever").unwrap();
    assert_eq!(row["compliance"], "NON_COMPLIANT", "{row}");
    assert!(
        row["annotation"]
            .as_str()
            .unwrap()
            .contains("until 9999-12-31, longer than the 365-day cap on exemptions"),
        "{row}"
    );

    let (dir, _) = live_report(&org, "exempt-forever", now).await;
    let ledger = csv(&dir.join("exemption-ledger.csv"));
    let tagged = ledger
        .iter()
        .find(|r| r["change"] == "expiry tag set to 9999-12-31")
        .unwrap_or_else(|| panic!("{ledger:?}"));
    assert_eq!(tagged["beyond_cap"], "true", "{tagged:?}");
    assert!(csv(&dir.join("exemptions-expiring.csv")).is_empty());
}

/// The member's administrator creates a role of its own named `keyguard-remediator` (keyguard's
/// central role's name) and deletes a key with it: the report once counted that as keyguard's
/// action. By full identity it is a person's; the member role in its own account is keyguard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_own_role_named_like_keyguards_is_not_counted_as_keyguard() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let now = Utc::now().trunc_subsecs(0);
    let rig = Rig::get();
    let admin = rig
        .as_role(&member, "AWSReservedSSO_Admin", "mallory")
        .await;
    let users = seed(
        &admin,
        &member,
        &[
            UserSpec {
                name: "victim".into(),
                keys: vec![(30, Some(1), false)],
                ..Default::default()
            },
            UserSpec {
                name: "rotated".into(),
                keys: vec![(30, Some(1), false)],
                ..Default::default()
            },
        ],
        now,
    )
    .await;
    let forged = aws_sdk_iam::Client::new(
        &rig.as_role(&member, "keyguard-remediator", "keyguard")
            .await,
    );
    forged
        .delete_access_key()
        .user_name("victim")
        .access_key_id(&users["victim"].keys[0])
        .send()
        .await
        .unwrap();
    let real = aws_sdk_iam::Client::new(
        &rig.as_role(&member, "keyguard-member-remediator", "keyguard")
            .await,
    );
    real.delete_access_key()
        .user_name("rotated")
        .access_key_id(&users["rotated"].keys[0])
        .send()
        .await
        .unwrap();

    let (dir, _) = live_report(&org, "forged-role", now).await;
    let actions = csv(&dir.join("actions.csv"));
    let by = |user: &str| {
        actions
            .iter()
            .find(|r| r["user"] == user && r["action"] == "delete")
            .unwrap_or_else(|| panic!("{actions:?}"))["by_kind"]
            .clone()
    };
    assert_eq!(by("victim"), "person", "{actions:?}");
    assert_eq!(by("rotated"), "keyguard", "{actions:?}");
}

/// An IAM user that may tag itself sets `owner-email=x@attacker.example`: the notices (account
/// id and name, user names, secret names, the command that reads them) would go there. Outside
/// the organization's mail domains it is no owner: the account's email is told, the digest
/// says why, and the report lists the tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_tag_outside_the_organization_gets_no_mail() {
    use crate::remediator::{member_account, remediator, scheduled_run, spec, ADMIN};
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now().trunc_subsecs(0);
    let mut hostile = spec("self-tagger", vec![(95, Some(1), true)]);
    hostile.tags = vec![("owner-email".into(), "x@attacker.example".into())];
    seed(&cfg, &member, &[hostile], now).await;
    let r = remediator(&org, true).await;
    let report = scheduled_run(&r, member_account(&org, 0), now).await;
    assert!(
        report.notes.iter().any(|n| n.contains(
            "\"x@attacker.example\", outside the organization's mail domains (example.com)"
        )),
        "{report:#?}"
    );
    let mails = Rig::get().emails(&org.management);
    let to = |addr: &str| {
        mails
            .iter()
            .filter(|m| m["to"].as_array().unwrap().iter().any(|t| t == addr))
            .count()
    };
    assert_eq!(to("x@attacker.example"), 0, "{mails:?}");
    assert_eq!(
        to(&member_account(&org, 0).email.unwrap()),
        1,
        "the account's email"
    );
    let digest = mails
        .iter()
        .find(|m| m["to"].as_array().unwrap().iter().any(|t| t == ADMIN))
        .unwrap();
    assert!(digest["text"]
        .as_str()
        .unwrap()
        .contains("x@attacker.example"));

    let (dir, stderr) =
        live_report_with(&org, "outside-owner", now, &[("ADMIN_EMAILS", ADMIN)]).await;
    let rows = csv(&dir.join("outside-owners.csv"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0]["user"].as_str(), rows[0]["address"].as_str()),
        ("self-tagger", "x@attacker.example")
    );
    assert!(
        stderr.contains("1 owner tag(s) name an address outside"),
        "{stderr}"
    );
}

/// The member's administrator renames a group of its own to the exemption group's name: its
/// members become exempt without an AddUserToGroup. The ledger shows the rename (the alarm's
/// patterns are in `patterns.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_renamed_to_the_exemption_group_is_in_the_ledger() {
    let (org, _member, now, admin, _) = member_with(&[("contractor", 120)]).await;
    let group = keyguard_core::Settings::default().exemption_group;
    let iam = aws_sdk_iam::Client::new(&admin);
    iam.create_group()
        .group_name("contractors")
        .send()
        .await
        .unwrap();
    iam.add_user_to_group()
        .group_name("contractors")
        .user_name("contractor")
        .send()
        .await
        .unwrap();
    iam.update_group()
        .group_name("contractors")
        .new_group_name(&group)
        .send()
        .await
        .unwrap();
    let (dir, _) = live_report(&org, "group-renamed", now).await;
    let ledger = csv(&dir.join("exemption-ledger.csv"));
    assert!(
        ledger.iter().any(
            |r| r["change"] == "group contractors renamed to the exemption group"
                && r["by"].ends_with("/mallory")
        ),
        "{ledger:?}"
    );
}

/// The report bucket's name is in another account (squatted, or a typo): S3 calls name the
/// expected owner (the caller's account unless REPORT_BUCKET_OWNER says otherwise), so the report
/// is refused rather than handed to that account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_bucket_of_another_account_gets_nothing() {
    let org = Org::new(1).await;
    let other = org.member(0).await;
    let s3 = keyguard_aws::s3::client(&other);
    let bucket = format!("squatted-{}", org.members[0]);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let evidence = crate::support::repo_root().join("examples/acme");
    let out = keyguard(
        &[
            "report",
            "--weekly",
            "--evidence",
            evidence.to_str().unwrap(),
            "--s3-uri",
            &format!("s3://{bucket}/keyguard"),
        ],
        &org.env().await,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("AccessDenied"), "{stderr}");
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0), "nothing was written");
    // Named as its owner, the same bucket takes the report: the refusal was the owner check.
    let mut env = org.env().await;
    env.push(("REPORT_BUCKET_OWNER", org.members[0].clone()));
    let uri = format!("s3://{bucket}/keyguard");
    let args = [
        "report",
        "--weekly",
        "--evidence",
        evidence.to_str().unwrap(),
        "--s3-uri",
        uri.as_str(),
    ];
    ok(&keyguard(&args, &env));
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert!(listed.key_count().unwrap_or(0) > 0);
}
