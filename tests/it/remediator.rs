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
    run_account, sweep, ActionKind, Forced, Mode, NoticeConfig, Outcome, Remediator, Selection,
    Summary,
};
use serde_json::Value;
use support::{seed, Org, Rig, UserSpec};

const SENDER: &str = "keyguard@security.example.com";
const ADMIN: &str = "cloud-admins@example.com";
const EXEMPTION_GROUP: &str = "IAMKeyRotationExemptionGroup";

/// Every write the remediator can make in a member account.
const WRITES: &[&str] = &[
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
        settings: Settings {
            dry_run,
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
    let mut kept = remediator::records::read(&table, account, user)
        .await
        .unwrap();
    kept.insert(key.to_string(), value.to_string());
    remediator::records::write(&table, &lease, &kept, Utc::now())
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
async fn all_secrets(cfg: &SdkConfig) -> Vec<String> {
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

fn writes(calls: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
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

/// The users of the lifecycle test: one at every stage DESIGN.md and the issue name.
fn stages(t0: DateTime<Utc>) -> Vec<UserSpec> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn remediation_events_forced_rotation_and_restore() {
    let rig = Rig::get();
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now();
    let seeded = seed(
        &cfg,
        &member,
        &[
            UserSpec {
                path: "/ci/".into(),
                ..spec("deploy+bot@x", vec![(95, Some(1), true)])
            },
            spec("leaked", vec![(20, Some(1), true)]),
            spec("broke", vec![(120, Some(1), false), (20, Some(1), true)]),
        ],
        now,
    )
    .await;
    let r = remediator(&org, false).await;

    // Config remediation (the SSM document's payload): one user by UserId, path and all.
    let event = serde_json::json!({"resourceId": seeded["deploy+bot@x"].user_id, "accountId": member, "resourceType": "AWS::IAM::User"});
    let s = remediator::handle(&r, event, now).await.unwrap();
    assert!(done(&s, "deploy+bot@x", "rotate"), "{s:#?}");
    assert_eq!(s.accounts[0].examined, 1);
    let unknown = serde_json::json!({"resourceId": "AIDANOSUCHUSER", "accountId": member});
    let s = remediator::handle(&r, unknown, now).await.unwrap();
    assert!(s.accounts[0].error.is_some(), "{s:#?}");
    assert!(s.accounts[0]
        .error
        .as_deref()
        .unwrap()
        .contains("AIDANOSUCHUSER"));
    assert!(
        s.into_result().is_err(),
        "an unknown user fails the invocation"
    );
    let bad = remediator::handle(
        &r,
        serde_json::json!({"messageType": "ScheduledNotification"}),
        now,
    )
    .await;
    assert!(bad.unwrap_err().to_string().contains("unknown event"));

    // A forced rotation of a key that is not due.
    let event = serde_json::json!({"kind": "manual", "account": member, "user": "leaked", "forceRotate": true});
    let s = remediator::handle(&r, event, now).await.unwrap();
    assert!(done(&s, "leaked", "rotate"), "{s:#?}");
    assert_eq!(keys_of(&cfg).await["leaked"].len(), 2);
    let again = serde_json::json!({"kind": "manual", "account": member, "user": "leaked", "forceRotate": true});
    let s = remediator::handle(&r, again, now).await.unwrap();
    let refused = s.accounts[0]
        .actions
        .iter()
        .find(|a| a.outcome == Outcome::Failed);
    assert!(
        refused.is_some_and(|a| a.why.contains("never creates a third")),
        "{s:#?}"
    );
    assert_eq!(keys_of(&cfg).await["leaked"].len(), 2);

    // Restore: the disabled key of "broke" was disabled 3 days ago.
    let disabled = seeded["broke"].keys[0].clone();
    record_disabled(
        &org,
        &cfg,
        &member,
        "broke",
        &disabled,
        now - Duration::days(3),
    )
    .await;
    let record = remediator::restore(&r, &member, "broke", &disabled, false, now)
        .await
        .unwrap();
    assert_eq!(record.outcome, Outcome::Done);
    let keys = &keys_of(&cfg).await["broke"];
    assert!(keys.iter().all(|k| k.1), "re-enabled");
    let tags = user_tags(&cfg, "broke").await;
    assert!(
        tags.contains_key(&format!("keyguard:restored:{disabled}"))
            && !tags.contains_key(&format!("keyguard:disabled:{disabled}"))
    );
    // The next sweep leaves it alone for the installation grace, then disables it again.
    let report = run_account(
        &r,
        member_account(&org, 0),
        &Selection::Name("broke".into()),
        &Forced::No,
        Mode::Auto,
        now + Duration::days(1),
    )
    .await;
    assert!(
        !report
            .actions
            .iter()
            .any(|a| a.action == ActionKind::Disable),
        "{report:#?}"
    );
    let later = now + Duration::days(11);
    rig.use_key(&member, &seeded["broke"].keys[1], later - Duration::days(1));
    rig.use_key(&member, &disabled, later - Duration::days(1));
    let report = run_account(
        &r,
        member_account(&org, 0),
        &Selection::Name("broke".into()),
        &Forced::No,
        Mode::Auto,
        later,
    )
    .await;
    assert!(
        report
            .actions
            .iter()
            .any(|a| a.action == ActionKind::Disable && a.outcome == Outcome::Done),
        "{report:#?}"
    );
    // A key past its recovery grace is not restorable.
    let err = remediator::restore(
        &r,
        &member,
        "broke",
        &disabled,
        false,
        later + Duration::days(11),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("recovery grace ended"), "{err}");
}

/// The central account itself is reached without AssumeRole: keyguard works there with the
/// remediator's own execution role (deploy/central.yaml grants it the member role's actions for
/// that account only), exactly as in a member account.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_central_account_is_remediated_with_the_functions_own_role() {
    let org = Org::new(0).await;
    let central = org.management.clone();
    let t0 = Utc::now().trunc_subsecs(0);
    let seeded = seed(&org.config, &central, &stages(t0), t0).await;
    record_disabled(
        &org,
        &org.config,
        &central,
        "disabled-past-recovery",
        &seeded["disabled-past-recovery"].keys[0],
        t0 - Duration::days(15),
    )
    .await;
    // A rotation of `fresh` was interrupted an hour ago (before it created a key).
    let mark = keyguard_core::RotationMark {
        at: t0 - Duration::hours(1),
        attempt: "kg-interrupted".into(),
    };
    record(
        &org,
        &org.config,
        &central,
        "fresh",
        ROTATING_TAG,
        &mark.value(),
    )
    .await;
    let r = remediator(&org, false).await;
    let filter = AccountFilter {
        include: vec![central.clone()],
        exclude: vec![],
    };
    let summary = sweep(&r, &filter, Mode::Auto, t0).await.unwrap();
    assert_eq!(summary.failures(), 0, "{summary:#?}");
    for (user, action) in [
        ("due-used", "rotate"),
        ("due-never", "disable"),
        ("rotated-past-grace", "disable"),
        ("disabled-past-recovery", "delete"),
    ] {
        assert!(
            done(&summary, user, action),
            "{user} {action}: {summary:#?}"
        );
    }
    let (stored, _) = stored_key(&org.config, &central, "due-used")
        .await
        .expect("the new key's secret, in the central account");
    let keys = keys_of(&org.config).await;
    assert!(keys["due-used"].iter().any(|k| k.0 == stored && k.1));
    // The interrupted rotation was checked against the secret and its mark cleared.
    assert!(!user_tags(&org.config, "fresh")
        .await
        .contains_key(ROTATING_TAG));
    // A person's request for one user, by name.
    let manual = remediator::handle(
        &r,
        serde_json::json!({"kind": "manual", "account": central, "user": "at-warn"}),
        t0,
    )
    .await
    .unwrap();
    assert_eq!(manual.failures(), 0, "{manual:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_account_failing_does_not_stop_the_sweep() {
    let rig = Rig::get();
    let org = Org::new(2).await;
    let now = Utc::now();
    for i in 0..2 {
        let cfg = org.member(i).await;
        seed(
            &cfg,
            &org.members[i],
            &[spec("due", vec![(95, Some(1), true)])],
            now,
        )
        .await;
    }
    let mut r = remediator(&org, false).await;
    // The accounts come through the org-list role (deploy/org-list-role.yaml), as when the central
    // account is neither the management account nor a delegated admin.
    r.role.org_role_arn = Some(format!(
        "arn:aws:iam::{}:role/keyguard-org-list",
        org.management
    ));
    // The first member throttles its inventory beyond the retries.
    rig.fault(
        Some(&org.members[0]),
        "GetAccountAuthorizationDetails",
        "Throttling",
        20,
    );
    let filter = AccountFilter {
        include: org.members.clone(),
        exclude: vec![],
    };
    let s = sweep(&r, &filter, Mode::Auto, now).await.unwrap();
    rig.clear_faults(&org.members[0]);
    let listed_by = rig.calls_by_role();
    assert!(
        listed_by["keyguard-org-list"]["organizations:ListAccounts"] >= 1,
        "{listed_by:?}"
    );
    let by_id: HashMap<&str, &remediator::AccountReport> =
        s.accounts.iter().map(|a| (a.account.as_str(), a)).collect();
    assert!(
        by_id[org.members[0].as_str()]
            .error
            .as_deref()
            .unwrap()
            .contains("GetAccountAuthorizationDetails"),
        "{s:#?}"
    );
    assert!(by_id[org.members[1].as_str()]
        .actions
        .iter()
        .any(|a| a.action == ActionKind::Rotate && a.outcome == Outcome::Done));
    assert_eq!(s.failures(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_calls_stay_within_the_budget() {
    let rig = Rig::get();
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now();
    let mut specs: Vec<UserSpec> = (0..48)
        .map(|i| spec(&format!("fresh-{i}"), vec![(20, Some(1), true)]))
        .collect();
    for i in 0..4 {
        specs.push(spec(&format!("rotate-{i}"), vec![(95, Some(1), true)]));
    }
    for i in 0..2 {
        specs.push(spec(
            &format!("rotate-again-{i}"),
            vec![(95, Some(1), true)],
        ));
    }
    for i in 0..3 {
        specs.push(spec(&format!("disable-{i}"), vec![(95, None, true)]));
    }
    for i in 0..3 {
        specs.push(spec(
            &format!("delete-{i}"),
            vec![(130, None, false), (40, Some(1), true)],
        ));
    }
    let seeded = seed(&cfg, &member, &specs, now).await;
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    for i in 0..3 {
        let user = format!("delete-{i}");
        let id = &seeded[&user].keys[0];
        record_disabled(&org, &cfg, &member, &user, id, now - Duration::days(15)).await;
    }
    for i in 0..2 {
        // A secret from an earlier rotation (or from the aws-samples solution) exists.
        sm.create_secret()
            .name(secret_name(&member, &format!("rotate-again-{i}")))
            .secret_string("{}")
            .send()
            .await
            .unwrap();
    }
    let (u, f) = (specs.len(), 12);
    let r = remediator(&org, false).await;
    rig.reset_calls(&member);
    rig.reset_calls(&org.management);
    let report = scheduled_run(&r, member_account(&org, 0), now).await;
    assert_eq!(report.failures(), 0, "{report:#?}");
    assert_eq!(
        report.examined, f,
        "only users needing action are read live"
    );
    let member_calls: u64 = rig.calls(&member).values().sum();
    let central = rig.calls(&org.management);
    let central_calls: u64 = central.values().sum();
    let total = member_calls + central_calls;
    // 6 to read the account (AssumeRole, report, authorization details), 1 Query of keyguard's
    // records; per user acted on at most 12: the lease (PutItem, DeleteItem), its records
    // (GetItem, PutItem; a rotation's mark one more), the live read, the re-check before a
    // disable or delete, the writes, and the owner's email.
    let bound = 7 + u.div_ceil(1000) as u64 + 12 * f as u64;
    println!("remediator API calls: U={u} F={f}: {total} (member {member_calls}, central {central_calls}: {central:?}); bound {bound}");
    println!("member calls: {:?}", rig.calls(&member));
    assert!(total <= bound, "{total} calls > {bound}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_log_of_an_enforcing_run_holds_no_secret() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now();
    seed(&cfg, &member, &stages(now), now).await;
    let ses = aws_sdk_sesv2::Client::new(&org.config);
    let _ = ses
        .create_email_identity()
        .email_identity(SENDER)
        .send()
        .await;
    crate::scale::create_table(&org.config, TABLE).await;
    // Without the table's lease (or --no-lease) the CLI refuses to write.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args(["remediate", "--account", &member, "--dry-run", "false"])
        .envs(org.env().await)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--no-lease"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(all_secrets(&cfg).await.is_empty(), "nothing written");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args(["remediate", "--account", &member, "--dry-run", "false"])
        .args(["--state-table", TABLE])
        .args(["--notice-sender", SENDER, "--admin-emails", ADMIN])
        .envs(org.env().await)
        .env("KEYGUARD_LOG", "trace")
        .output()
        .unwrap();
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "keyguard remediate failed");
    let rotated = ["due-used", "exempt-expired", "deploy+bot@x"];
    for user in rotated {
        assert!(log.contains(user), "the log names {user}");
    }
    assert!(
        log.contains("CreateAccessKey") || log.contains("rotate"),
        "the log shows the run"
    );
    let secrets = all_secrets(&cfg).await;
    assert_eq!(secrets.len(), rotated.len(), "one stored key per rotation");
    for s in &secrets {
        // Never print the secret or the log on failure: that would leak it into test output.
        assert!(
            !log.contains(s.as_str()),
            "the log contains a secret access key"
        );
    }
}

#[test]
fn plan_from_evidence_prints_dated_steps() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args(["plan", "--evidence"])
        .arg(support::repo_root().join("examples/acme"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("due now") && stdout.contains("rotate") && stdout.contains("disable"),
        "{stdout}"
    );
    let json = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args(["plan", "--json", "--as-of", "2026-12-01", "--evidence"])
        .arg(support::repo_root().join("examples/acme"))
        .output()
        .unwrap();
    let plans: Vec<Value> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(plans.len(), 56, "one plan per user of the example");
    assert!(plans.iter().any(|p| p["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["note"] == "exempt")));
    // Enforcing with --as-of is refused: the future cannot be enforced.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args([
            "remediate",
            "--account",
            "111122223333",
            "--dry-run",
            "false",
            "--as-of",
            "2027-01-01",
        ])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only with DryRun"));
}
