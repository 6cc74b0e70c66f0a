//! SECRET_DELETE_DAYS_AFTER_USE: a rotation's secret is deleted a set number of days after
//! keyguard first saw its new key used (the owner installed it), restorable, and restored by the
//! next rotation; a secret whose key is not used yet is kept.

use chrono::{Duration, SubsecRound, Utc};
use remediator::{run_account, ActionKind, Forced, Mode, Outcome, Selection};

use crate::remediator::{keys_of, member_account, remediator, spec, stored_key};
use crate::support::{seed, Org, Rig};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotations_secret_goes_days_after_its_key_is_first_used() {
    let rig = Rig::get();
    let org = Org::new(1).await;
    let now = Utc::now().trunc_subsecs(0);
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    seed(
        &cfg,
        &member,
        &[
            spec("installed", vec![(95, Some(1), true)]),
            spec("waiting", vec![(95, Some(1), true)]),
        ],
        now,
    )
    .await;
    let mut r = remediator(&org, false).await;
    r.secret_delete_after_use_days = Some(7);
    let run = |at| {
        let r = r.clone();
        let account = member_account(&org, 0);
        async move { run_account(&r, account, &Selection::All, &Forced::No, Mode::Auto, at).await }
    };
    // Day 0: both rotated; their secrets hold the new keys.
    let day0 = run(now).await;
    assert_eq!(day0.failures(), 0, "{day0:#?}");
    // (Read without authenticating with the keys: that would use them.)
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let stored = |user: &'static str| {
        let sm = sm.clone();
        let member = member.clone();
        async move {
            keyguard_aws::secrets::stored_key_id(&sm, &member, user)
                .await
                .unwrap()
        }
    };
    let installed_key = stored("installed").await.unwrap();
    assert!(stored("waiting").await.is_some());
    // The owner of `installed` puts the new key to use; `waiting`'s stays unused.
    let created = keys_of(&cfg).await["installed"]
        .iter()
        .find(|k| k.0 == installed_key)
        .unwrap()
        .2;
    rig.backdate(&member, &installed_key, created, Some(Utc::now()));
    // Day 1: keyguard sees it used and records the day; day 8: the secret goes.
    let day1 = run(now + Duration::days(1)).await;
    assert!(
        !day1
            .actions
            .iter()
            .any(|a| a.action == ActionKind::DeleteSecret),
        "{day1:#?}"
    );
    // Day 8: seven days since, but the old key still works (the new one may only have been
    // tried): kept. Day 11: the old key is disabled (its grace ended on day 10), and the secret goes.
    let day8 = run(now + Duration::days(8)).await;
    assert!(
        !day8
            .actions
            .iter()
            .any(|a| a.action == ActionKind::DeleteSecret),
        "{day8:#?}"
    );
    let day10 = run(now + Duration::days(11)).await;
    let deleted: Vec<_> = day10
        .actions
        .iter()
        .filter(|a| a.action == ActionKind::DeleteSecret)
        .collect();
    assert_eq!(deleted.len(), 1, "{day10:#?}");
    assert_eq!(
        (deleted[0].user.as_str(), deleted[0].outcome),
        ("installed", Outcome::Done)
    );
    assert!(
        stored_key(&cfg, &member, "installed").await.is_none(),
        "scheduled for deletion"
    );
    assert!(
        stored_key(&cfg, &member, "waiting").await.is_some(),
        "unused key: secret kept"
    );
    // The old key is deleted (day 21); the next rotation (day 200) restores the secret and stores
    // the newer key in it.
    for day in [21] {
        let r = run(now + Duration::days(day)).await;
        assert_eq!(r.failures(), 0, "day {day}: {r:#?}");
    }
    rig.backdate(
        &member,
        &installed_key,
        created,
        Some(now + Duration::days(199)),
    );
    let later = run(now + Duration::days(200)).await;
    assert_eq!(later.failures(), 0, "{later:#?}");
    let (again, works) = stored_key(&cfg, &member, "installed")
        .await
        .expect("restored and stored");
    assert!(again != installed_key && works);
}
