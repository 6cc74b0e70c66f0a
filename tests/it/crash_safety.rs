//! Crash and concurrency safety of the remediator against the rig (`docs/invariants.md`: invariants 1, 5, 6, 7):
//! a rotation killed at every point, a CreateAccessKey whose answer is lost, two and eight
//! concurrent runs on the same users, forged tags, and a restore racing a sweep.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration as StdDuration;

use aws_config::SdkConfig;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use keyguard_aws::state::StateTable;
use keyguard_core::{Account, ROTATING_TAG};
use remediator::lease::{self, Taken};
use remediator::user_records;
use remediator::{run_account, ActionKind, Forced, Mode, Outcome, Remediator, Selection};

use crate::remediator::{
    keys_of, member_account, record, record_disabled, remediator, scheduled_run, spec, stored_key,
    tag, user_tags, TABLE,
};
use crate::support::{seed, Org, Rig};

/// A name with a path-free `+=,.@-` mix, as IAM allows.
const USER: &str = "ci+deploy=prod,eu.x@y-z";

/// keyguard's records of `user` in the table of `org`.
async fn records_of(org: &Org, account: &str, user: &str) -> BTreeMap<String, String> {
    let table = StateTable::new(&org.config, TABLE);
    remediator::user_records::read(&table, account, user)
        .await
        .unwrap()
}

/// The end state every run must leave: the user's pre-existing key still there (it is used), at
/// most two keys, every key either that one or the one the secret holds (which authenticates),
/// no rotation mark; and every key ever created for the user either stored or deleted.
async fn assert_sound(
    org: &Org,
    cfg: &SdkConfig,
    account: &str,
    user: &str,
    old: &str,
    case: &str,
) {
    let keys = keys_of(cfg).await[user].clone();
    assert!(keys.len() <= 2, "{case}: {keys:?}");
    assert!(
        keys.iter().any(|k| k.0 == old && k.1),
        "{case}: the used key was deleted or disabled: {keys:?}"
    );
    let stored = stored_key(cfg, account, user).await;
    for k in &keys {
        let is_stored = stored
            .as_ref()
            .is_some_and(|(s, works)| s == &k.0 && *works);
        assert!(
            k.0 == old || is_stored,
            "{case}: key {} is nobody's: {keys:?}",
            k.0
        );
    }
    let created: BTreeSet<String> = Rig::get()
        .trail(account)
        .iter()
        .filter(|e| {
            e["eventName"] == "CreateAccessKey" && e["requestParameters"]["userName"] == user
        })
        .filter_map(|e| {
            e["responseElements"]["accessKey"]["accessKeyId"]
                .as_str()
                .map(String::from)
        })
        .collect();
    let present: BTreeSet<String> = keys.iter().map(|k| k.0.clone()).collect();
    for id in created.iter().filter(|id| *id != old) {
        let kept = present.contains(id) && stored.as_ref().is_some_and(|(s, _)| s == id);
        assert!(
            kept || !present.contains(id),
            "{case}: created key {id} is neither stored nor deleted"
        );
    }
    assert!(
        !records_of(org, account, user)
            .await
            .contains_key(ROTATING_TAG),
        "{case}: the rotation mark is left"
    );
    assert!(
        !user_tags(cfg, user).await.contains_key(ROTATING_TAG),
        "{case}: the mark's mirror tag is left"
    );
}

/// One account with `USER` due for rotation (one Active key, 95 days old, used yesterday).
async fn due_user(now: DateTime<Utc>) -> (Org, SdkConfig, Account, String) {
    let org = Org::new(1).await;
    let cfg = org.member(0).await;
    let seeded = seed(
        &cfg,
        &org.members[0],
        &[spec(USER, vec![(95, Some(1), true)])],
        now,
    )
    .await;
    let account = member_account(&org, 0);
    let old = seeded[USER].keys[0].clone();
    (org, cfg, account, old)
}

/// A rotation killed at each point: the process dies while the call after that point is in
/// flight (the rig holds it, the test aborts the run). The rotation happens 20 minutes after its
/// invocation started. The next run, once the dead run's lease lapsed, leaves one usable stored
/// key next to the old one and never deletes a used key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotation_killed_at_every_point_is_repaired_by_the_next_run() {
    // (point, the call held, matching calls let through first, in the member or central account)
    let points: [(&str, &str, u32, bool); 6] = [
        ("after the mark", "CreateAccessKey", 0, false),
        ("after CreateAccessKey", "CreateSecret", 0, false),
        ("after CreateSecret", "PutResourcePolicy", 0, false),
        ("after PutResourcePolicy", "PutSecretValue", 0, false),
        // The mark was the first write to the records (a transaction fenced by the lease); the
        // second writes them without it.
        ("after PutSecretValue", "TransactWriteItems", 1, true),
        (
            "before the mark's mirror tag is removed",
            "UntagUser",
            0,
            false,
        ),
    ];
    let runs = points
        .iter()
        .map(|&(point, call, skip, central)| async move {
            let rig = Rig::get();
            let now = Utc::now().trunc_subsecs(0);
            let (org, cfg, account, old) = due_user(now).await;
            let mut r = remediator(&org, false).await;
            r.lease_ttl = StdDuration::from_secs(3);
            let held_in = if central {
                org.management.clone()
            } else {
                account.id.clone()
            };
            rig.hang(&held_in, call, skip);
            let started = now - Duration::minutes(20);
            let dying = {
                let (r, account) = (r.clone(), account.clone());
                tokio::spawn(async move {
                    run_account(
                        &r,
                        account,
                        &Selection::Name(USER.into()),
                        &Forced::No,
                        Mode::Auto,
                        started,
                    )
                    .await
                })
            };
            assert_eq!(rig.held(&held_in).await, call, "{point}");
            dying.abort();
            let _ = dying.await;
            rig.release(&held_in);
            tokio::time::sleep(StdDuration::from_secs(4)).await; // the dead run's lease lapses
            let r = remediator(&org, false).await;
            let next = scheduled_run(&r, account.clone(), Utc::now()).await;
            assert_eq!(next.failures(), 0, "{point}: {next:#?}");
            assert_sound(&org, &cfg, &account.id, USER, &old, point).await;
            let stored = stored_key(&cfg, &account.id, USER).await;
            assert!(
                stored.is_some_and(|(id, works)| id != old && works),
                "{point}: no usable stored successor"
            );
            let repaired = next
                .actions
                .iter()
                .any(|a| a.action == ActionKind::DeleteOrphan && a.outcome == Outcome::Done);
            let rotated = next.actions.iter().any(|a| a.action == ActionKind::Rotate);
            // Before the value was stored the key is a leftover (deleted, then a new rotation);
            // after, the rotation stands.
            let stored_before = matches!(call, "TransactWriteItems" | "UntagUser");
            assert_eq!(
                (repaired, rotated),
                if stored_before {
                    (false, false)
                } else {
                    (call != "CreateAccessKey", true)
                },
                "{point}: {next:#?}"
            );
        });
    futures::future::join_all(runs).await;
}

/// IAM creates the key but its answer is lost; the SDK's retry then meets IAM's two-key limit.
/// The run lists the keys again, deletes the unseen key, and the next run rotates cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_create_access_key_answer_leaves_no_key_behind() {
    let rig = Rig::get();
    let now = Utc::now().trunc_subsecs(0);
    let (org, cfg, account, old) = due_user(now).await;
    rig.fault_json(serde_json::json!({
        "account": account.id, "action": "CreateAccessKey", "error": "InternalFailure",
        "status": 500, "drop_response": true,
    }));
    let r = remediator(&org, false).await;
    let first = scheduled_run(&r, account.clone(), now).await;
    let rotate = first
        .actions
        .iter()
        .find(|a| a.action == ActionKind::Rotate)
        .unwrap_or_else(|| panic!("{first:#?}"));
    assert_eq!(rotate.outcome, Outcome::Failed, "{first:#?}");
    let keys = &keys_of(&cfg).await[USER];
    assert_eq!(
        keys.len(),
        1,
        "the key whose answer was lost is deleted: {keys:?}"
    );
    assert_eq!(keys[0].0, old);
    // The mark stays for the next run: only a refusal proves that no attempt created a key (IAM
    // may list a key late), and the next run repairs from a fresh list before it rotates.
    assert!(records_of(&org, &account.id, USER)
        .await
        .contains_key(ROTATING_TAG));
    let next = scheduled_run(&r, account.clone(), Utc::now()).await;
    assert_eq!(next.failures(), 0, "{next:#?}");
    assert_sound(&org, &cfg, &account.id, USER, &old, "after a lost answer").await;
    assert!(stored_key(&cfg, &account.id, USER)
        .await
        .is_some_and(|(id, w)| id != old && w));
}

/// `n` runs at once on the same users (sweeps and single-user requests, jittered starts), `reps`
/// times: one writer per user, so every end state is sound and each user rotated once.
async fn concurrent_runs(n: usize, reps: usize) {
    for rep in 0..reps {
        let now = Utc::now().trunc_subsecs(0);
        let org = Org::new(1).await;
        let cfg = org.member(0).await;
        let users: Vec<String> = (0..3).map(|i| format!("svc-{i}+ci@x")).collect();
        let specs: Vec<_> = users
            .iter()
            .map(|u| spec(u, vec![(95, Some(1), true)]))
            .collect();
        let seeded = seed(&cfg, &org.members[0], &specs, now).await;
        let r = remediator(&org, false).await;
        let account = member_account(&org, 0);
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let (r, account, users) = (r.clone(), account.clone(), users.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(StdDuration::from_millis(fastrand::u64(0..40))).await;
                    let selection = if i % 2 == 0 {
                        Selection::All
                    } else {
                        Selection::Name(users[i % users.len()].clone())
                    };
                    run_account(&r, account, &selection, &Forced::No, Mode::Auto, Utc::now()).await
                })
            })
            .collect();
        let mut rotations: BTreeMap<String, usize> = BTreeMap::new();
        for t in tasks {
            let report = t.await.unwrap();
            for a in &report.actions {
                if a.action == ActionKind::Rotate && a.outcome == Outcome::Done {
                    *rotations.entry(a.user.clone()).or_default() += 1;
                }
            }
        }
        for u in &users {
            let case = format!("{n} runs, rep {rep}, {u}");
            assert_sound(&org, &cfg, &account.id, u, &seeded[u].keys[0], &case).await;
            assert_eq!(
                rotations.get(u),
                Some(&1),
                "{case}: rotations {rotations:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_runs_never_touch_one_user_together() {
    concurrent_runs(2, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_runs_never_touch_one_user_together() {
    concurrent_runs(8, 3).await;
}

/// Anyone allowed iam:TagUser sets `keyguard:rotating` to an Active, used key's creation time and
/// backdates the disable date of a key a person disabled today: keyguard acts on its own records
/// only, deletes and disables nothing, starts the disabled key's grace today, and rewrites the
/// mirror tags.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_tags_cannot_make_keyguard_act_earlier() {
    let rig = Rig::get();
    let now = Utc::now().trunc_subsecs(0);
    let org = Org::new(1).await;
    let cfg = org.member(0).await;
    let member = org.members[0].clone();
    let seeded = seed(
        &cfg,
        &member,
        &[
            spec("pipeline", vec![(30, Some(1), true)]),
            spec("paused", vec![(30, Some(2), false), (20, Some(1), true)]),
        ],
        now,
    )
    .await;
    let used = &seeded["pipeline"].keys[0];
    let created = keys_of(&cfg).await["pipeline"][0].2;
    tag(&cfg, "pipeline", ROTATING_TAG, &created.to_rfc3339()).await;
    let paused = &seeded["paused"].keys[0];
    let backdated = (now - Duration::days(30)).to_rfc3339();
    tag(
        &cfg,
        "paused",
        &format!("keyguard:disabled:{paused}"),
        &backdated,
    )
    .await;
    let r = remediator(&org, false).await;
    rig.reset_calls(&member);
    let report = scheduled_run(&r, member_account(&org, 0), now).await;
    assert_eq!(report.failures(), 0, "{report:#?}");
    let calls = rig.calls(&member);
    for write in [
        "iam:DeleteAccessKey",
        "iam:UpdateAccessKey",
        "iam:CreateAccessKey",
    ] {
        assert_eq!(calls.get(write), None, "{write}: {report:#?}");
    }
    let keys = keys_of(&cfg).await;
    assert!(keys["pipeline"].iter().any(|k| &k.0 == used && k.1));
    assert!(keys["paused"].iter().any(|k| &k.0 == paused && !k.1));
    // The grace of the paused key starts today, in keyguard's record and its mirror.
    let disabled = format!("keyguard:disabled:{paused}");
    let recorded = records_of(&org, &member, "paused").await[&disabled].clone();
    assert!(
        recorded.starts_with(&now.format("%Y-%m-%d").to_string()),
        "{recorded}"
    );
    assert_eq!(user_tags(&cfg, "paused").await[&disabled], recorded);
    // The forged mark's tag is gone: the mirror says what keyguard's records say.
    assert!(!user_tags(&cfg, "pipeline").await.contains_key(ROTATING_TAG));
    // The forged records keep doing nothing on the next runs, up to the real due dates.
    let later = scheduled_run(&r, member_account(&org, 0), now + Duration::days(5)).await;
    assert!(
        !later.actions.iter().any(|a| a.action == ActionKind::Delete),
        "{later:#?}"
    );
}

/// A restore lands while a sweep is between its account-wide read and its writes to the user: the
/// sweep holds the user's lease, so the restore waits its turn, and once restored the key stays
/// Active (the sweep decides on the table's restore record, not a stale read).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_racing_a_sweep_stays_restored() {
    let rig = Rig::get();
    let now = Utc::now().trunc_subsecs(0);
    let org = Org::new(1).await;
    let cfg = org.member(0).await;
    let member = org.members[0].clone();
    // `broke`: its old key disabled by keyguard 3 days ago, the successor 20 days old and used.
    let seeded = seed(
        &cfg,
        &member,
        &[spec(
            "broke",
            vec![(120, Some(4), false), (20, Some(1), true)],
        )],
        now,
    )
    .await;
    let old = seeded["broke"].keys[0].clone();
    record_disabled(&org, &cfg, &member, "broke", &old, now - Duration::days(3)).await;
    let r = remediator(&org, false).await;
    // The sweep reads the account, takes the lease, and is held at its live read of the user.
    rig.hang(&member, "ListAccessKeys", 0);
    let held_sweep = {
        let (r, account) = (r.clone(), member_account(&org, 0));
        tokio::spawn(async move {
            let broke = Selection::Name("broke".into());
            run_account(&r, account, &broke, &Forced::No, Mode::Auto, Utc::now()).await
        })
    };
    rig.held(&member).await;
    let busy = remediator::restore(&r, &member, "broke", &old, false, Utc::now()).await;
    assert!(
        busy.as_ref()
            .is_err_and(|e| e.to_string().contains("another keyguard run")),
        "{busy:?}"
    );
    rig.release(&member); // the SDK retries the held call; the sweep goes on
    let swept = held_sweep.await.unwrap();
    assert_eq!(swept.failures(), 0, "{swept:#?}");
    let restored = remediator::restore(&r, &member, "broke", &old, false, Utc::now())
        .await
        .unwrap();
    assert_eq!(restored.outcome, Outcome::Done);
    // Sweeps after the restore leave it Active (a fresh installation grace).
    for _ in 0..2 {
        let s = scheduled_run(&r, member_account(&org, 0), Utc::now()).await;
        assert_eq!(s.failures(), 0, "{s:#?}");
    }
    let keys = &keys_of(&cfg).await["broke"];
    assert!(
        keys.iter().all(|k| k.1),
        "restored and kept Active: {keys:?}"
    );
}

/// Without the table a run with writes is refused unless `no_lease` says otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_without_a_lease_are_refused() {
    let now = Utc::now().trunc_subsecs(0);
    let (org, cfg, account, _) = due_user(now).await;
    let r = Remediator {
        state: None,
        ..remediator(&org, false).await
    };
    let report = scheduled_run(&r, account.clone(), now).await;
    assert!(
        report.error.as_deref().is_some_and(|e| e.contains("lease")),
        "{report:#?}"
    );
    assert_eq!(keys_of(&cfg).await[USER].len(), 1, "nothing written");
}

/// keyguard's records are written only while the writer's lease holds: not once it lapsed, and
/// not after another run took it over, whose records stay as it wrote them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_records_write_under_a_lost_lease_is_refused() {
    let org = Org::new(1).await;
    crate::scale::create_table(&org.config, TABLE).await;
    let table = StateTable::new(&org.config, TABLE);
    let mut r = remediator(&org, false).await;
    r.lease_ttl = StdDuration::from_secs(2);
    let account = &org.members[0];
    let records = |v: &str| BTreeMap::from([("keyguard-probe".to_string(), v.to_string())]);
    let take = |holder: &'static str| {
        let (r, table) = (&r, &table);
        async move {
            match lease::take(r, table, account, USER, holder).await.unwrap() {
                Taken::Held(l) => l,
                Taken::Busy { .. } => panic!("{holder}: the lease is busy"),
            }
        }
    };
    let first = take("first").await;
    user_records::write(&table, &first, &records("first"), Utc::now())
        .await
        .unwrap();
    tokio::time::sleep(StdDuration::from_secs(3)).await;
    let lapsed = user_records::write(&table, &first, &records("late"), Utc::now()).await;
    assert!(
        matches!(&lapsed, Err(e) if e.error_type() == "LeaseLost"),
        "{lapsed:?}"
    );
    let second = take("second").await;
    user_records::write(&table, &second, &records("second"), Utc::now())
        .await
        .unwrap();
    let stale = user_records::write(&table, &first, &records("stale"), Utc::now()).await;
    assert!(
        matches!(&stale, Err(e) if e.error_type() == "LeaseLost"),
        "{stale:?}"
    );
    assert_eq!(records_of(&org, account, USER).await, records("second"));
    // The confirmation agrees: the holder's lease is confirmed, a taken-over one is not, and a
    // released one is not (nor brought back by the check).
    second.confirm(&table).await.unwrap();
    let confirmed = first.confirm(&table).await;
    assert!(
        matches!(&confirmed, Err(e) if e.error_type() == "LeaseLost"),
        "{confirmed:?}"
    );
    lease::release(&table, &second).await.unwrap();
    let released = second.confirm(&table).await;
    assert!(
        matches!(&released, Err(e) if e.error_type() == "LeaseLost"),
        "{released:?}"
    );
    assert_eq!(
        table.get(&format!("lease#{account}"), USER).await.unwrap(),
        None
    );
}

/// A run paused in the middle of a rotation (its host stopped it) past its lease, at each point
/// where it holds a write: inside CreateAccessKey (carried out only after the other run
/// finished, so it meets IAM's two-key limit and looks for a lost key), before the new key's
/// secret is stored (the lease is confirmed first), and at the records' write after the store.
/// Another run takes the lease over and finishes the user; an operator then records something.
/// When the paused run resumes, it deletes nothing of the other run's, overwrites neither the
/// secret nor the records, and reports the lost lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_paused_past_its_lease_overwrites_nothing() {
    // (point, the call paused, matching calls let through first, in the member or central account)
    let points: [(&str, &str, u32, bool); 3] = [
        ("inside CreateAccessKey", "CreateAccessKey", 0, false),
        ("before the secret is stored", "UpdateItem", 0, true),
        (
            "at the records' write after the store",
            "TransactWriteItems",
            1,
            true,
        ),
    ];
    let runs = points
        .iter()
        .map(|&(point, call, skip, central)| async move {
            let rig = Rig::get();
            let now = Utc::now().trunc_subsecs(0);
            let (org, cfg, account, old) = due_user(now).await;
            let mut r = remediator(&org, false).await;
            r.lease_ttl = StdDuration::from_secs(5);
            let paused_in = if central {
                org.management.clone()
            } else {
                account.id.clone()
            };
            rig.pause(&paused_in, call, skip);
            let paused = {
                let (r, account) = (r.clone(), account.clone());
                tokio::spawn(async move {
                    run_account(
                        &r,
                        account,
                        &Selection::Name(USER.into()),
                        &Forced::No,
                        Mode::Auto,
                        now,
                    )
                    .await
                })
            };
            assert_eq!(rig.held(&paused_in).await, call, "{point}");
            tokio::time::sleep(StdDuration::from_secs(6)).await; // its lease lapses
            let other =
                scheduled_run(&remediator(&org, false).await, account.clone(), Utc::now()).await;
            assert_eq!(other.failures(), 0, "{point}: {other:#?}");
            let successor = stored_key(&cfg, &account.id, USER).await;
            assert!(
                successor
                    .as_ref()
                    .is_some_and(|(id, works)| *id != old && *works),
                "{point}: the other run stored no usable successor"
            );
            record(
                &org,
                &cfg,
                &account.id,
                USER,
                "keyguard-operator-note",
                "kept",
            )
            .await;
            let before = records_of(&org, &account.id, USER).await;
            rig.release(&paused_in);
            let resumed = paused.await.unwrap();
            assert!(
                resumed
                    .actions
                    .iter()
                    .any(|a| a.outcome == Outcome::Failed && a.why.starts_with("lease lost:")),
                "{point}: {resumed:#?}"
            );
            assert_eq!(
                records_of(&org, &account.id, USER).await,
                before,
                "{point}: the records were overwritten"
            );
            assert_eq!(
                stored_key(&cfg, &account.id, USER).await,
                successor,
                "{point}: the other run's successor was replaced or deleted"
            );
            assert_sound(&org, &cfg, &account.id, USER, &old, point).await;
        });
    futures::future::join_all(runs).await;
}

/// A leaked-key request whose run loses the user's lease before the successor is stored: the
/// run that took over owns the user, so the paused run does not disable the leaked key behind
/// its back; it reports the key still Active and asks for the request again, which then
/// disables it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leaked_key_request_that_lost_its_lease_says_the_key_is_still_active() {
    let rig = Rig::get();
    let now = Utc::now().trunc_subsecs(0);
    let org = Org::new(1).await;
    let cfg = org.member(0).await;
    seed(
        &cfg,
        &org.members[0],
        &[spec(USER, vec![(30, Some(1), true)])],
        now,
    )
    .await;
    let account = member_account(&org, 0);
    let leaked = keys_of(&cfg).await[USER][0].0.clone();
    let mut r = remediator(&org, false).await;
    r.secret_readers = vec!["arn:aws:iam::{account}:role/ci-deployer".into()];
    r.lease_ttl = StdDuration::from_secs(5);
    let leak = Forced::Leaked {
        key: None,
        rotate: true,
        because: None,
    };
    rig.pause(&org.management, "UpdateItem", 0); // the confirmation before the store
    let paused = {
        let (r, account, leak) = (r.clone(), account.clone(), leak.clone());
        tokio::spawn(async move {
            run_account(
                &r,
                account,
                &Selection::Name(USER.into()),
                &leak,
                Mode::Auto,
                now,
            )
            .await
        })
    };
    assert_eq!(rig.held(&org.management).await, "UpdateItem");
    tokio::time::sleep(StdDuration::from_secs(6)).await; // its lease lapses
    let other = scheduled_run(&remediator(&org, false).await, account.clone(), Utc::now()).await;
    assert_eq!(other.failures(), 0, "{other:#?}");
    rig.release(&org.management);
    let resumed = paused.await.unwrap();
    assert!(
        resumed
            .actions
            .iter()
            .any(|a| a.action == ActionKind::Disable
                && a.outcome == Outcome::Failed
                && a.why.contains("still Active")),
        "{resumed:#?}"
    );
    let keys: Vec<(String, bool)> = keys_of(&cfg).await[USER]
        .iter()
        .map(|k| (k.0.clone(), k.1))
        .collect();
    assert_eq!(
        keys,
        vec![(leaked.clone(), true)],
        "only the leaked key, untouched"
    );
    assert_eq!(
        keys,
        vec![(leaked.clone(), true)],
        "only the leaked key, untouched"
    );
    // The request again: the leaked key is disabled at once.
    let again = run_account(
        &r,
        account,
        &Selection::Name(USER.into()),
        &leak,
        Mode::Auto,
        Utc::now(),
    )
    .await;
    assert_eq!(again.failures(), 0, "{again:#?}");
    assert!(keys_of(&cfg).await[USER]
        .iter()
        .any(|k| k.0 == leaked && !k.1));
}

/// A person re-enables a key between the run's plan (delete: Inactive past its grace) and the
/// delete: the status read again right before the write cancels it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_re_enabled_after_the_plan_is_not_deleted() {
    let rig = Rig::get();
    let now = Utc::now().trunc_subsecs(0);
    let org = Org::new(1).await;
    let cfg = org.member(0).await;
    let member = org.members[0].clone();
    let seeded = seed(
        &cfg,
        &member,
        &[spec(
            "old-ci",
            vec![(130, None, false), (40, Some(1), true)],
        )],
        now,
    )
    .await;
    let inactive = seeded["old-ci"].keys[0].clone();
    record_disabled(
        &org,
        &cfg,
        &member,
        "old-ci",
        &inactive,
        now - Duration::days(15),
    )
    .await;
    let r = remediator(&org, false).await;
    // The live read is ListAccessKeys 1; the re-check before the delete is 2.
    rig.hang(&member, "ListAccessKeys", 1);
    let run = {
        let (r, account) = (r.clone(), member_account(&org, 0));
        tokio::spawn(async move {
            let user = Selection::Name("old-ci".into());
            run_account(&r, account, &user, &Forced::No, Mode::Auto, Utc::now()).await
        })
    };
    rig.held(&member).await;
    aws_sdk_iam::Client::new(&cfg)
        .update_access_key()
        .user_name("old-ci")
        .access_key_id(&inactive)
        .status(aws_sdk_iam::types::StatusType::Active)
        .send()
        .await
        .unwrap();
    rig.release(&member);
    let report = run.await.unwrap();
    let delete = report
        .actions
        .iter()
        .find(|a| a.action == ActionKind::Delete)
        .unwrap_or_else(|| panic!("{report:#?}"));
    assert_eq!(delete.outcome, Outcome::Skipped, "{report:#?}");
    assert!(
        delete.why.contains("Active since the plan"),
        "{}",
        delete.why
    );
    assert!(keys_of(&cfg).await["old-ci"]
        .iter()
        .any(|k| k.0 == inactive && k.1));
}

/// A key about to be disabled for non-use is used between the plan and the write: its last use,
/// read again right before, cancels the disable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_used_after_the_plan_is_not_disabled() {
    let rig = Rig::get();
    let now = Utc::now().trunc_subsecs(0);
    let org = Org::new(1).await;
    let cfg = org.member(0).await;
    let member = org.members[0].clone();
    let seeded = seed(&cfg, &member, &[spec("idle", vec![(95, None, true)])], now).await;
    let key = seeded["idle"].keys[0].clone();
    let created = keys_of(&cfg).await["idle"][0].2;
    let r = remediator(&org, false).await;
    // The live read's GetAccessKeyLastUsed is 1; the re-check before the disable is 2.
    rig.hang(&member, "GetAccessKeyLastUsed", 1);
    let run = {
        let (r, account) = (r.clone(), member_account(&org, 0));
        tokio::spawn(async move {
            let user = Selection::Name("idle".into());
            run_account(&r, account, &user, &Forced::No, Mode::Auto, Utc::now()).await
        })
    };
    rig.held(&member).await;
    rig.backdate(&member, &key, created, Some(Utc::now()));
    rig.release(&member);
    let report = run.await.unwrap();
    let disable = report
        .actions
        .iter()
        .find(|a| a.action == ActionKind::Disable)
        .unwrap_or_else(|| panic!("{report:#?}"));
    assert_eq!(disable.outcome, Outcome::Skipped, "{report:#?}");
    assert!(
        disable.why.contains("used since the plan"),
        "{}",
        disable.why
    );
    assert!(
        keys_of(&cfg).await["idle"].iter().all(|k| k.1),
        "still Active"
    );
}
