//! The remediator against the emulator rig: a member account with users at every stage through
//! 120 simulated days, idempotence, failures while storing a secret, interrupted rotations,
//! DryRun, restore, the API budget, and no secret in any log or email.

use crate::support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration as StdDuration;

use aws_config::SdkConfig;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use keyguard_aws::inventory::ReportPolling;
use keyguard_aws::org::AccountFilter;
use keyguard_aws::sdk::{Caller, RoleSpec};
use keyguard_aws::secrets::secret_name;
use keyguard_aws::state::StateTable;
use keyguard_core::{Account, Settings, ROTATING_TAG};
use remediator::lease::Taken;
use remediator::{
    run_account, sweep, Forced, Mode, NoticeConfig, Outcome, Remediator, Selection, Summary,
};
use serde_json::Value;
use support::{seed, Org, Rig, UserSpec};

pub(crate) const SENDER: &str = "keyguard@security.example.com";
pub(crate) const ADMIN: &str = "cloud-admins@example.com";
pub(crate) const EXEMPTION_GROUP: &str = "IAMKeyRotationExemptionGroup";

/// Every write the remediator can make in a member account.
pub(crate) const WRITES: &[&str] = &[
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",
    "iam:DeleteAccessKey",
    "iam:TagUser",
    "iam:UntagUser",
    "secretsmanager:CreateSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:PutResourcePolicy",
];

/// The central state table of an organization's tests (leases and keyguard's records).
pub const TABLE: &str = "keyguard-state";

pub(crate) async fn remediator(org: &Org, dry_run: bool) -> Remediator {
    let ses = aws_sdk_sesv2::Client::new(&org.config);
    let _ = ses
        .create_email_identity()
        .email_identity(SENDER)
        .send()
        .await;
    crate::scale::create_table(&org.config, TABLE).await;
    // As deployed: the remediator's execution role in the central (management) account.
    let sdk = Rig::get()
        .as_role(&org.management, "keyguard-remediator", "run")
        .await;
    Remediator {
        state: Some(StateTable::new(&sdk, TABLE)),
        sdk,
        caller: Caller {
            account: org.management.clone(),
            partition: "aws".into(),
            arn: format!(
                "arn:aws:sts::{}:assumed-role/keyguard-remediator/run",
                org.management
            ),
        },
        // The minimum notice is 0 here: these tests start from owners who were told (the
        // notice has its own tests, tests/it/usage_hold.rs), so their first run acts.
        settings: Settings {
            dry_run,
            minimum_notice_days: 0,
            ..Settings::default()
        },
        role: RoleSpec {
            role_name: "keyguard-member-remediator".into(),
            session_name: "keyguard".into(),
            org_role_arn: None,
        },
        polling: ReportPolling {
            interval: StdDuration::from_millis(20),
            attempts: 50,
        },
        notices: NoticeConfig {
            sender: Some(SENDER.into()),
            admins: vec![ADMIN.into()],
            owner_domains: keyguard_core::owner::OwnerDomains::new(&[], &[ADMIN.into()]),
            event_bus: None,
        },
        ..Remediator::new(
            aws_config::SdkConfig::builder().build(),
            Caller {
                account: org.management.clone(),
                partition: "aws".into(),
                arn: String::new(),
            },
            Settings::default(),
            RoleSpec {
                role_name: String::new(),
                session_name: String::new(),
                org_role_arn: None,
            },
        )
    }
}

pub(crate) fn member_account(org: &Org, i: usize) -> Account {
    Account {
        id: org.members[i].clone(),
        name: format!("member-{i}"),
        email: Some(format!("member-{i}@{}.example.com", org.management)),
    }
}

/// (id, active, created) of every key of every user, by user name.
pub(crate) async fn keys_of(
    cfg: &SdkConfig,
) -> BTreeMap<String, Vec<(String, bool, DateTime<Utc>)>> {
    let iam = aws_sdk_iam::Client::new(cfg);
    let mut out = BTreeMap::new();
    for u in iam.list_users().send().await.unwrap().users() {
        let keys = iam
            .list_access_keys()
            .user_name(u.user_name())
            .send()
            .await
            .unwrap();
        out.insert(
            u.user_name().to_string(),
            keys.access_key_metadata()
                .iter()
                .map(|k| {
                    (
                        k.access_key_id().unwrap().to_string(),
                        k.status() == Some(&aws_sdk_iam::types::StatusType::Active),
                        keyguard_aws::to_chrono(k.create_date().unwrap()),
                    )
                })
                .collect(),
        );
    }
    out
}

pub(crate) async fn user_tags(cfg: &SdkConfig, user: &str) -> BTreeMap<String, String> {
    let iam = aws_sdk_iam::Client::new(cfg);
    iam.list_user_tags()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// A scheduled run of `account`: every user, nothing forced, at `at`.
pub(crate) async fn scheduled_run(
    r: &Remediator,
    account: Account,
    at: DateTime<Utc>,
) -> remediator::AccountReport {
    run_account(r, account, &Selection::All, &Forced::No, Mode::Auto, at).await
}

/// Writes one of keyguard's records of `user` in `account` as keyguard does: in the central
/// state table of `org` (created if needed), and its mirror tag on the user (`cfg`: the account's).
pub async fn record(org: &Org, cfg: &SdkConfig, account: &str, user: &str, key: &str, value: &str) {
    crate::scale::create_table(&org.config, TABLE).await;
    let table = StateTable::new(&org.config, TABLE);
    let r = remediator(org, false).await;
    let holder = remediator::lease::holder_id();
    let Taken::Held(lease) = remediator::lease::take(&r, &table, account, user, &holder)
        .await
        .unwrap()
    else {
        panic!("{user}: the lease is busy")
    };
    let mut kept = remediator::user_records::read(&table, account, user)
        .await
        .unwrap();
    kept.insert(key.to_string(), value.to_string());
    remediator::user_records::write(&table, &lease, &kept, Utc::now())
        .await
        .unwrap();
    remediator::lease::release(&table, &lease).await.unwrap();
    tag(cfg, user, key, value).await;
}

/// Sets one tag on `user` (what a person, or an attacker allowed iam:TagUser, can do).
pub async fn tag(cfg: &SdkConfig, user: &str, key: &str, value: &str) {
    aws_sdk_iam::Client::new(cfg)
        .tag_user()
        .user_name(user)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// Records, as keyguard does, that `key` of `user` in `account` was disabled at `at`.
pub(crate) async fn record_disabled(
    org: &Org,
    cfg: &SdkConfig,
    account: &str,
    user: &str,
    key: &str,
    at: DateTime<Utc>,
) {
    let k = format!("keyguard:disabled:{key}");
    record(org, cfg, account, user, &k, &at.to_rfc3339()).await;
}

/// The key a user's secret holds, and whether that key authenticates (STS GetCallerIdentity
/// signed with it answers with the user's ARN). The secret itself never leaves this function.
pub(crate) async fn stored_key(
    cfg: &SdkConfig,
    account: &str,
    user: &str,
) -> Option<(String, bool)> {
    use secrecy::{ExposeSecret, SecretString};
    let sm = aws_sdk_secretsmanager::Client::new(cfg);
    let out = sm
        .get_secret_value()
        .secret_id(secret_name(account, user))
        .send()
        .await
        .ok()?;
    let v: Value = serde_json::from_str(out.secret_string()?).ok()?;
    let id = v["AccessKeyId"].as_str()?.to_string();
    let secret = SecretString::from(v["SecretAccessKey"].as_str()?.to_string());
    assert_eq!(v["UserName"], user);
    let creds =
        aws_credential_types::Credentials::new(&id, secret.expose_secret(), None, None, "secret");
    let as_user = cfg
        .to_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .build();
    let me = aws_sdk_sts::Client::new(&as_user)
        .get_caller_identity()
        .send()
        .await;
    let works = me.is_ok_and(|m| m.arn().is_some_and(|a| a.ends_with(&format!("/{user}"))));
    Some((id, works))
}

/// Every secret access key stored in the account (to look for in logs and emails).
pub(crate) async fn all_secrets(cfg: &SdkConfig) -> Vec<String> {
    let sm = aws_sdk_secretsmanager::Client::new(cfg);
    let mut out = Vec::new();
    for s in sm.list_secrets().send().await.unwrap().secret_list() {
        for version in sm
            .list_secret_version_ids()
            .secret_id(s.name().unwrap())
            .send()
            .await
            .unwrap()
            .versions()
        {
            let v = sm
                .get_secret_value()
                .secret_id(s.name().unwrap())
                .version_id(version.version_id().unwrap())
                .send()
                .await
                .unwrap();
            let v: Value = serde_json::from_str(v.secret_string().unwrap()).unwrap();
            out.push(v["SecretAccessKey"].as_str().unwrap().to_string());
        }
    }
    out
}

pub(crate) fn writes(calls: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    calls
        .iter()
        .filter(|(k, _)| WRITES.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

pub(crate) fn spec(name: &str, keys: Vec<(i64, Option<i64>, bool)>) -> UserSpec {
    UserSpec {
        name: name.into(),
        tags: vec![(
            "owner-email".into(),
            format!("{}@example.com", name.replace(['+', '@', '/'], "-")),
        )],
        keys,
        ..UserSpec::default()
    }
}

pub(crate) fn done(s: &Summary, user: &str, action: &str) -> bool {
    s.accounts.iter().flat_map(|a| &a.actions).any(|r| {
        r.user == user
            && r.action.as_str() == action
            && matches!(r.outcome, Outcome::Done | Outcome::Preview)
    })
}

/// The users of the lifecycle test: one at every stage of the lifecycle (`docs/invariants.md`).
pub(crate) fn stages(t0: DateTime<Utc>) -> Vec<UserSpec> {
    let mut v = vec![
        spec("fresh", vec![(10, Some(1), true)]),
        spec("at-warn", vec![(80, Some(1), true)]),
        spec("due-used", vec![(95, Some(2), true)]),
        UserSpec {
            name: "due-never".into(),
            keys: vec![(95, None, true)],
            ..UserSpec::default()
        },
        spec(
            "rotated-past-grace",
            vec![(120, Some(5), true), (15, Some(1), true)],
        ),
        spec(
            "disabled-past-recovery",
            vec![(130, None, false), (25, Some(1), true)],
        ),
        UserSpec {
            groups: vec![EXEMPTION_GROUP.into()],
            tags: vec![
                ("owner-email".into(), "exempt@example.com".into()),
                (
                    "keyguard:exemption-expires".into(),
                    (t0 + Duration::days(200)).format("%Y-%m-%d").to_string(),
                ),
            ],
            ..spec("exempt", vec![(150, Some(1), true)])
        },
        UserSpec {
            groups: vec![EXEMPTION_GROUP.into()],
            tags: vec![
                ("owner-email".into(), "expired@example.com".into()),
                (
                    "keyguard:exemption-expires".into(),
                    (t0 - Duration::days(3)).format("%Y-%m-%d").to_string(),
                ),
            ],
            ..spec("exempt-expired", vec![(100, Some(1), true)])
        },
        spec("two-active", vec![(50, Some(1), true), (40, Some(1), true)]),
        UserSpec {
            path: "/ci/".into(),
            ..spec("deploy+bot@x", vec![(92, Some(1), true)])
        },
    ];
    // Two users of one team: their owner gets one email listing both.
    for u in v
        .iter_mut()
        .filter(|u| u.name == "due-used" || u.name == "deploy+bot@x")
    {
        u.tags[0].1 = "team-a@example.com".into();
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_account_goes_through_120_days_of_policy() {
    let rig = Rig::get();
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let t0 = Utc::now().trunc_subsecs(0);
    let seeded = seed(&cfg, &member, &stages(t0), t0).await;
    // The inactive key was disabled by keyguard 15 days ago.
    let inactive = &seeded["disabled-past-recovery"].keys[0];
    record_disabled(
        &org,
        &cfg,
        &member,
        "disabled-past-recovery",
        inactive,
        t0 - Duration::days(15),
    )
    .await;
    let r = remediator(&org, false).await;
    let filter = AccountFilter {
        include: vec![member.clone()],
        exclude: vec![],
    };
    let never_used: BTreeSet<&str> = ["due-never"].into();
    let mut rotations: HashMap<String, usize> = HashMap::new();
    let mut emails_seen = 0;

    for day in (0..=120).step_by(5) {
        let now = t0 + Duration::days(day);
        // Pipelines use each user's newest active key every day.
        let before = keys_of(&cfg).await;
        for (user, keys) in &before {
            if never_used.contains(user.as_str()) {
                continue;
            }
            if let Some((id, ..)) = keys.iter().filter(|k| k.1).max_by_key(|k| k.2) {
                rig.use_key(&member, id, now - Duration::days(1));
            }
        }
        rig.reset_calls(&member);
        let summary = sweep(&r, &filter, Mode::Auto, now).await.unwrap();
        assert_eq!(summary.failures(), 0, "day {day}: {summary:#?}");
        let after = keys_of(&cfg).await;
        // Every key creation attempted succeeded: never a third key tried.
        let created: usize = after
            .iter()
            .map(|(u, keys)| {
                keys.iter()
                    .filter(|k| !before.get(u).is_some_and(|b| b.iter().any(|o| o.0 == k.0)))
                    .count()
            })
            .sum();
        assert_eq!(
            rig.calls(&member)
                .get("iam:CreateAccessKey")
                .copied()
                .unwrap_or(0),
            created as u64,
            "day {day}: CreateAccessKey calls = new keys"
        );
        for (user, old) in &before {
            let new = after.get(user).cloned().unwrap_or_default();
            assert!(new.len() <= 2, "day {day}: {user} has {} keys", new.len());
            // Invariant 1: a key that disappeared was Inactive before the run.
            for (id, active, _) in old {
                if !new.iter().any(|k| &k.0 == id) {
                    assert!(!active, "day {day}: {user}'s Active key {id} was deleted");
                }
            }
            // New keys: IAM dated them with the real clock; move them to the simulated day, and
            // check that the user's secret holds the new key and that it works.
            for (id, ..) in new.iter().filter(|k| !old.iter().any(|o| o.0 == k.0)) {
                *rotations.entry(user.clone()).or_default() += 1;
                let (stored, works) = stored_key(&cfg, &member, user).await.expect("a secret");
                assert_eq!(&stored, id, "day {day}: {user}'s secret holds the new key");
                assert!(works, "day {day}: {user}'s stored key authenticates");
                // (after the check, which used the key on the real clock)
                rig.backdate(&member, id, now, None);
            }
        }

        if day == 0 {
            let emails = rig.emails(&org.management);
            let to = |addr: &str| -> Vec<&Value> {
                emails
                    .iter()
                    .filter(|e| e["to"].as_array().unwrap().iter().any(|t| t == addr))
                    .collect()
            };
            let team = to("team-a@example.com");
            assert_eq!(team.len(), 1, "one email per owner per run: {team:#?}");
            let text = team[0]["text"].as_str().unwrap();
            for needle in [
                "due-used",
                "deploy+bot@x",
                "rotate key",
                &secret_name(&member, "deploy+bot@x"),
                "aws secretsmanager get-secret-value --region us-east-1",
                "Done in this run",
            ] {
                assert!(text.contains(needle), "{needle:?} missing from {text}");
            }
            let fallback = to(&format!("member-0@{}.example.com", org.management));
            assert_eq!(fallback.len(), 1, "no owner tag: the account's email");
            assert!(fallback[0]["text"]
                .as_str()
                .unwrap()
                .contains("disable key"));
            let warn = to("at-warn@example.com");
            assert_eq!(warn.len(), 1);
            let warn_text = warn[0]["text"].as_str().unwrap();
            assert!(
                warn_text.contains("Coming up")
                    && warn_text
                        .contains(&(t0 + Duration::days(10)).format("%Y-%m-%d").to_string()),
                "{warn_text}"
            );
            assert!(
                to("exempt@example.com").is_empty(),
                "exempt users hear nothing"
            );
            assert!(
                to("fresh@example.com").is_empty(),
                "nothing to say to fresh users"
            );
            assert_eq!(to(ADMIN).len(), 1, "one digest per account per run");
            assert!(to("rotated-past-grace@example.com")[0]["text"]
                .as_str()
                .unwrap()
                .contains("disable key"));
            assert!(to("disabled-past-recovery@example.com")[0]["text"]
                .as_str()
                .unwrap()
                .contains("delete key"));
        }
        emails_seen = rig.emails(&org.management).len().max(emails_seen);

        // The same sweep again at once: nothing to write, nothing to say.
        rig.reset_calls(&member);
        let again = sweep(&r, &filter, Mode::Auto, now).await.unwrap();
        assert_eq!(
            writes(&rig.calls(&member)),
            BTreeMap::new(),
            "day {day}: second run wrote: {again:#?}"
        );
        assert!(
            again.accounts[0].actions.is_empty(),
            "day {day}: second run acted: {:#?}",
            again.accounts[0].actions
        );
        assert_eq!(
            rig.emails(&org.management).len(),
            emails_seen,
            "day {day}: second run sent email"
        );
    }

    // Day 120: every key where the policy puts it.
    let end = keys_of(&cfg).await;
    let created_day =
        |user: &str| -> Vec<i64> { end[user].iter().map(|k| (k.2 - t0).num_days()).collect() };
    let expect: &[(&str, &[i64], usize)] = &[
        ("fresh", &[80], 1),
        ("at-warn", &[100], 2),
        ("due-used", &[90], 2),
        ("due-never", &[], 0),
        ("rotated-past-grace", &[75], 1),
        ("disabled-past-recovery", &[65], 1),
        ("exempt", &[-150], 0),
        ("exempt-expired", &[90], 2),
        ("two-active", &[50], 1),
        ("deploy+bot@x", &[90], 2),
    ];
    for (user, days, rotated) in expect {
        assert_eq!(
            &created_day(user),
            days,
            "{user}'s keys at day 120: {:?}",
            end[*user]
        );
        assert!(
            end[*user].iter().all(|k| k.1),
            "{user}: only active keys remain"
        );
        assert_eq!(
            rotations.get(*user).copied().unwrap_or(0),
            *rotated,
            "{user}'s rotations"
        );
    }

    // No secret in any email.
    let secrets = all_secrets(&cfg).await;
    assert!(secrets.len() >= 10);
    let mail = serde_json::to_string(&rig.emails(&org.management)).unwrap();
    assert!(
        !secrets.iter().any(|s| mail.contains(s.as_str())),
        "an email contains a secret access key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dry_run_writes_nothing_and_sends_previews() {
    let rig = Rig::get();
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now();
    seed(&cfg, &member, &stages(now), now).await;
    let mut r = remediator(&org, true).await;
    // Events go to a bus of the central account, ten per PutEvents call.
    let events = aws_sdk_eventbridge::Client::new(&org.config);
    events
        .create_event_bus()
        .name("keyguard-actions")
        .send()
        .await
        .unwrap();
    r.notices.event_bus = Some("keyguard-actions".into());
    rig.reset_calls(&member);
    rig.reset_calls(&org.management);
    let summary = scheduled_run(&r, member_account(&org, 0), now).await;
    let summary = Summary {
        dry_run: true,
        at: now,
        accounts: vec![summary],
        notes: vec![],
    };
    assert!(summary.count(Outcome::Preview) >= 7, "{summary:#?}");
    assert_eq!(summary.count(Outcome::Done), 0);
    assert!(done(&summary, "due-used", "rotate") && done(&summary, "due-never", "disable"));
    assert_eq!(writes(&rig.calls(&member)), BTreeMap::new(), "DryRun wrote");
    let records = summary.accounts[0].actions.len();
    assert_eq!(
        rig.calls(&org.management).get("events:PutEvents").copied(),
        Some(records.div_ceil(10) as u64)
    );
    let emails = rig.emails(&org.management);
    assert!(emails.len() >= 5, "{emails:#?}");
    for e in &emails {
        assert!(e["subject"].as_str().unwrap().contains("preview"), "{e}");
        assert!(e["text"].as_str().unwrap().starts_with("PREVIEW"), "{e}");
    }
    // `mode: preview` makes an enforcing function preview too.
    let enforcing = remediator(&org, false).await;
    let event = serde_json::json!({"kind": "manual", "account": member, "mode": "preview"});
    let s = remediator::handle(&enforcing, event, now).await.unwrap();
    assert!(s.dry_run && s.count(Outcome::Preview) >= 7);
    assert_eq!(
        writes(&rig.calls(&member)),
        BTreeMap::new(),
        "preview mode wrote"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_that_cannot_be_stored_leaves_no_key_and_an_interrupted_rotation_is_repaired() {
    let rig = Rig::get();
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now();
    let seeded = seed(
        &cfg,
        &member,
        &[spec("ci,deploy=prod", vec![(100, Some(1), true)])],
        now,
    )
    .await;
    let user = "ci,deploy=prod";
    let old = seeded[user].keys[0].clone();
    let r = remediator(&org, false).await;
    let run = || scheduled_run(&r, member_account(&org, 0), Utc::now());

    // A KMS key the service rejects, then a resource policy it rejects: the new key is deleted.
    for (action, error) in [
        ("PutSecretValue", "EncryptionFailure"),
        ("PutResourcePolicy", "MalformedPolicyDocumentException"),
    ] {
        rig.fault(Some(&member), action, error, 1);
        let report = run().await;
        assert_eq!(report.failures(), 1, "{action}: {report:#?}");
        let failed = &report
            .actions
            .iter()
            .find(|a| a.outcome == Outcome::Failed)
            .unwrap_or_else(|| panic!("{report:#?}"))
            .why;
        assert!(
            failed.contains("deleted again") && failed.contains(error),
            "{failed}"
        );
        let keys = &keys_of(&cfg).await[user];
        assert_eq!(
            keys.iter().map(|k| k.0.as_str()).collect::<Vec<_>>(),
            [old.as_str()],
            "after {action}"
        );
        assert!(!user_tags(&cfg, user).await.contains_key(ROTATING_TAG));
        let s = Summary {
            dry_run: false,
            at: now,
            accounts: vec![report],
            notes: vec![],
        };
        assert!(matches!(
            s.into_result(),
            Err(remediator::Error::ActionsFailed { failed: 1, .. })
        ));
    }

    // The store fails and so does the clean-up: the run says so, the mark stays…
    rig.fault(Some(&member), "PutSecretValue", "InternalServiceError", 1);
    rig.fault(Some(&member), "DeleteAccessKey", "ServiceFailure", 1);
    let report = run().await;
    let failed = &report
        .actions
        .iter()
        .find(|a| a.outcome == Outcome::Failed)
        .unwrap()
        .why;
    assert!(
        failed.contains("nor deleted") && failed.contains("next run"),
        "{failed}"
    );
    let keys = keys_of(&cfg).await[user].clone();
    assert_eq!(keys.len(), 2, "the orphan is left behind");
    let orphan = keys.iter().find(|k| k.0 != old).unwrap().0.clone();
    assert!(user_tags(&cfg, user).await.contains_key(ROTATING_TAG));

    // …and the next run deletes the orphan, then rotates again.
    let report = run().await;
    assert_eq!(report.failures(), 0, "{report:#?}");
    let actions: Vec<String> = report
        .actions
        .iter()
        .map(|a| a.action.to_string())
        .collect();
    assert_eq!(actions, ["delete-orphan", "rotate"], "{report:#?}");
    let keys = keys_of(&cfg).await[user].clone();
    assert_eq!(keys.len(), 2);
    assert!(!keys.iter().any(|k| k.0 == orphan), "orphan deleted");
    assert!(
        keys.iter().any(|k| k.0 == old),
        "the old key stays for its installation grace"
    );
    let (stored, works) = stored_key(&cfg, &member, user).await.unwrap();
    assert!(keys.iter().any(|k| k.0 == stored) && stored != old && works);
    assert!(!user_tags(&cfg, user).await.contains_key(ROTATING_TAG));
    // The comma became `=2C` and the `=` `=3D` in the secret's name; the secret exists under it.
    assert!(secret_name(&member, user).contains("ci=2Cdeploy=3Dprod"));
}
