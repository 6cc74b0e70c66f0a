//! A key keyguard disabled that someone sets Active again without `keyguard restore`, against the
//! rig: the CloudTrail event (as the member stack forwards it) makes the remediator tell the
//! owner and the admin at once, keyguard's records follow (the disable record goes, no grace is
//! given: the next sweep disables it again as the policy says), a leaked key is disabled again
//! at once; a restore through keyguard, and a key keyguard never disabled, change nothing.

use chrono::{Duration, SubsecRound, Utc};
use keyguard_aws::state::StateTable;
use remediator::{handle_invocation, Answer, Invocation, Outcome};
use serde_json::Value;

use crate::remediator::{member_account, record_disabled, remediator, scheduled_run, spec, TABLE};
use crate::support::{fixture, seed, Org, Rig};

/// What a person of the account does: sets `user`'s `key` Active (not `keyguard restore`).
async fn a_person_sets_active(cfg: &aws_config::SdkConfig, user: &str, key: &str) {
    aws_sdk_iam::Client::new(cfg)
        .update_access_key()
        .user_name(user)
        .access_key_id(key)
        .status(aws_sdk_iam::types::StatusType::Active)
        .send()
        .await
        .unwrap();
}

/// No `re-enabled` record in `s`: nothing was said.
fn said_nothing(s: &remediator::Summary) {
    assert!(
        s.accounts[0]
            .actions
            .iter()
            .all(|a| a.action.as_str() != "re-enabled"),
        "{s:#?}"
    );
}

/// The remediator's answer to CloudTrail's UpdateAccessKey to Active of `key` of `user`.
async fn answered(
    r: &remediator::Remediator,
    account: &str,
    user: &str,
    key: &str,
    now: chrono::DateTime<Utc>,
) -> remediator::Summary {
    let inv = Invocation {
        now,
        deadline: None,
    };
    match handle_invocation(r, set_active(account, user, key), inv)
        .await
        .unwrap()
    {
        Answer::Summary(s) => s,
        other => panic!("{other:?}"),
    }
}

/// CloudTrail's UpdateAccessKey to Active of `key` of `user` in `account`, by `by`.
fn set_active(account: &str, user: &str, key: &str) -> Value {
    let text = fixture("remediator/fixtures/cloudtrail-update-access-key.json")
        .replace("444455556666", account)
        .replace("ci-deploy", user)
        .replace("AKIAIOSFODNN7EXAMPLE", key);
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_keyguard_disabled_set_active_by_a_person_is_told_and_followed() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now().trunc_subsecs(0);
    let seeded = seed(
        &cfg,
        &member,
        &[
            spec(
                "ci-deploy",
                vec![(120, Some(5), false), (15, Some(1), true)],
            ),
            spec(
                "untouched",
                vec![(100, Some(5), false), (15, Some(1), true)],
            ),
        ],
        now,
    )
    .await;
    let r = remediator(&org, false).await;
    let old = seeded["ci-deploy"].keys[0].clone();
    record_disabled(
        &org,
        &cfg,
        &member,
        "ci-deploy",
        &old,
        now - Duration::days(3),
    )
    .await;
    // Someone in the account sets it Active (not keyguard restore).
    a_person_sets_active(&cfg, "ci-deploy", &old).await;
    let s = answered(&r, &member, "ci-deploy", &old, now).await;
    let record = s.accounts[0]
        .actions
        .iter()
        .find(|a| a.action.as_str() == "re-enabled")
        .unwrap_or_else(|| panic!("{s:#?}"));
    assert_eq!(record.outcome, Outcome::Warned);
    assert!(
        record.why.contains("set Active again by arn:aws:sts::")
            && record.why.contains("not by keyguard restore")
            && record
                .why
                .contains("disables it again when the policy says"),
        "{record:?}"
    );
    // The owner and the admin are told.
    let mails = Rig::get().emails(&org.management);
    let told: Vec<String> = mails
        .iter()
        .filter(|m| {
            m["text"]
                .as_str()
                .unwrap_or_default()
                .contains("re-enabled")
        })
        .flat_map(|m| m["to"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert!(
        told.iter().any(|a| a == "ci-deploy@example.com")
            && told.iter().any(|a| a == crate::remediator::ADMIN),
        "{told:?}"
    );
    // keyguard's records follow it: no disable record, and no grace (no restore record).
    let table = StateTable::new(&org.config, TABLE);
    let kept = remediator::user_records::read(&table, &member, "ci-deploy")
        .await
        .unwrap();
    assert!(
        !kept.contains_key(&format!("keyguard:disabled:{old}")),
        "{kept:?}"
    );
    assert!(
        !kept.contains_key(&format!("keyguard:restored:{old}")),
        "{kept:?}"
    );
    // A key keyguard never disabled, set Active: nothing to say.
    let other = seeded["untouched"].keys[0].clone();
    a_person_sets_active(&cfg, "untouched", &other).await;
    let s = answered(&r, &member, "untouched", &other, now).await;
    assert!(
        s.accounts[0]
            .actions
            .iter()
            .all(|a| a.action.as_str() != "re-enabled"),
        "{s:#?}"
    );
    // The next sweep disables it again, as the policy says (its successor is 15 days old).
    let sweep = scheduled_run(&r, member_account(&org, 0), now + Duration::hours(1)).await;
    assert!(
        sweep.actions.iter().any(|a| a.user == "ci-deploy"
            && a.action.as_str() == "disable"
            && a.outcome == Outcome::Done),
        "{sweep:#?}"
    );
}

/// `keyguard restore` sets the key Active too: its own CloudTrail event finds no disable
/// record (the restore dropped it first) and says nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyguards_own_restore_is_not_a_reenable() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now().trunc_subsecs(0);
    let seeded = seed(
        &cfg,
        &member,
        &[spec(
            "broke",
            vec![(120, Some(5), false), (15, Some(1), true)],
        )],
        now,
    )
    .await;
    let r = remediator(&org, false).await;
    let old = seeded["broke"].keys[0].clone();
    record_disabled(&org, &cfg, &member, "broke", &old, now - Duration::days(3)).await;
    remediator::restore(&r, &member, "broke", &old, false, now)
        .await
        .unwrap();
    let s = answered(&r, &member, "broke", &old, now).await;
    said_nothing(&s);
}

/// A key keyguard disabled because it leaked, set Active again by a person: told, and disabled
/// again at once (a leaked key gets no grace).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_key_set_active_again_is_disabled_again_at_once() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now().trunc_subsecs(0);
    let seeded = seed(&cfg, &member, &[spec("ci", vec![(20, Some(0), true)])], now).await;
    let mut r = remediator(&org, false).await;
    r.secret_readers = vec!["arn:aws:iam::{account}:role/ci-deployer".into()];
    let leaked = seeded["ci"].keys[0].clone();
    let event = serde_json::json!({"kind": "manual", "account": member, "user": "ci", "leaked": true, "key": leaked});
    remediator::handle(&r, event, now).await.unwrap();
    let iam = aws_sdk_iam::Client::new(&cfg);
    a_person_sets_active(&cfg, "ci", &leaked).await;
    let s = answered(&r, &member, "ci", &leaked, now).await;
    let done: Vec<(String, Outcome)> = s.accounts[0]
        .actions
        .iter()
        .map(|a| (a.action.as_str().to_string(), a.outcome))
        .collect();
    assert_eq!(
        done,
        [
            ("re-enabled".to_string(), Outcome::Warned),
            ("disable".to_string(), Outcome::Done)
        ],
        "{s:#?}"
    );
    let keys = iam.list_access_keys().user_name("ci").send().await.unwrap();
    let status = keys
        .access_key_metadata()
        .iter()
        .find(|k| k.access_key_id() == Some(leaked.as_str()))
        .and_then(|k| k.status().map(|s| s.as_str().to_string()));
    assert_eq!(status.as_deref(), Some("Inactive"));
}
