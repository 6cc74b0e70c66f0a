//! The operator's path, against the rig: the README's and the runbook's live commands
//! (`docs/operating.md`) run as written, from the operator's own role in the central account,
//! through the member role the member stack creates for it (`keyguard-member`, the CLI's
//! default); `./test.sh`'s least-privilege step then checks that role's actions against exactly
//! these calls. A restore is also a manual event to the remediator, under the user's lease and
//! published like every step.

use chrono::{Duration, Utc};
use remediator::Outcome;

use crate::remediator::{keys_of, record_disabled, remediator, spec, TABLE};
use crate::report::{keyguard, ok, tmp};
use crate::support::{env_of, seed, Org, Rig};

/// The operator's environment: its own role's credentials (a session of OperatorRoleArn), the
/// CLI's defaults for the rest.
async fn operator_env(org: &Org) -> Vec<(&'static str, String)> {
    let me = Rig::get()
        .as_role(&org.management, "keyguard-operator", "alice")
        .await;
    env_of(&me).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbooks_live_commands_work_through_the_operator_role() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now();
    let seeded = seed(
        &cfg,
        &member,
        &[
            spec("ci-deploy", vec![(95, Some(1), true)]),
            spec("broke", vec![(120, Some(1), false), (20, Some(1), true)]),
        ],
        now,
    )
    .await;
    // keyguard disabled broke's old key three days ago (its record in the state table).
    crate::scale::create_table(&org.config, TABLE).await;
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
    let bus = "keyguard-events";
    aws_sdk_eventbridge::Client::new(&org.config)
        .create_event_bus()
        .name(bus)
        .send()
        .await
        .unwrap();

    let env = operator_env(&org).await;
    let evidence = tmp("operator-evidence");
    let reports = tmp("operator-reports");
    let e = evidence.to_str().unwrap();
    // docs/operating.md, "Pointing it at an AWS organization", and the runbook, as written.
    let commands: Vec<Vec<&str>> = vec![
        vec!["audit"],
        vec!["audit", "--account", &member],
        vec!["collect", "--out", e],
        vec!["audit", "--evidence", e],
        vec!["plan", "--account", &member],
        vec!["usage", "--account", &member, "--user", "ci-deploy"],
        vec!["report", "--weekly", "--out", reports.to_str().unwrap()],
    ];
    for c in &commands {
        let out = keyguard(c, &env);
        ok(&out);
    }
    let audited =
        String::from_utf8(keyguard(&["audit", "--account", &member], &env).stdout).unwrap();
    assert!(
        audited.contains("ci-deploy") && audited.contains("NON_COMPLIANT"),
        "{audited}"
    );

    // "A pipeline broke after its old key was disabled": restore it, under the lease, published.
    let rig = Rig::get();
    rig.reset_calls(&org.management);
    let restored = keyguard(
        &[
            "restore",
            "--account",
            &member,
            "--user",
            "broke",
            "--key",
            &disabled,
            "--state-table",
            TABLE,
            "--event-bus",
            bus,
        ],
        &env,
    );
    let stdout = ok(&restored);
    let _ = stdout;
    let text = String::from_utf8_lossy(&restored.stdout);
    assert!(text.starts_with("restored AKIA"), "{text}");
    assert!(
        keys_of(&cfg).await["broke"].iter().all(|k| k.1),
        "re-enabled"
    );
    assert_eq!(
        rig.calls(&org.management).get("events:PutEvents").copied(),
        Some(1),
        "one keyguard key action event"
    );
}

/// The runbook's other way: `{"kind": "manual", …, "restore": key}` sent to the remediator (its
/// operator may invoke it): the same restore under the user's lease, answered as a run and
/// published; a restore of a key that is not disabled is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_restore_event_restores_under_the_lease_and_is_published() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now();
    let seeded = seed(
        &cfg,
        &member,
        &[spec(
            "broke",
            vec![(120, Some(1), false), (20, Some(1), true)],
        )],
        now,
    )
    .await;
    let mut r = remediator(&org, false).await;
    aws_sdk_eventbridge::Client::new(&org.config)
        .create_event_bus()
        .name("keyguard-actions")
        .send()
        .await
        .unwrap();
    r.notices.event_bus = Some("keyguard-actions".into());
    let disabled = seeded["broke"].keys[0].clone();
    let event = serde_json::json!({"kind": "manual", "account": member, "user": "broke", "restore": disabled});
    // A key that is Active already: refused, nothing written.
    let mut wrong = event.clone();
    wrong["restore"] = seeded["broke"].keys[1].clone().into();
    let refused = remediator::handle(&r, wrong, now).await;
    assert!(
        refused.is_err_and(|e| e.to_string().contains("already Active")),
        "refused"
    );
    assert!(!keys_of(&cfg).await["broke"].iter().all(|k| k.1));

    record_disabled(
        &org,
        &cfg,
        &member,
        "broke",
        &disabled,
        now - Duration::days(3),
    )
    .await;
    let rig = Rig::get();
    rig.reset_calls(&org.management);
    let s = remediator::handle(&r, event, now).await.unwrap();
    let action = &s.accounts[0].actions[0];
    assert_eq!(
        (action.outcome, action.action.to_string().as_str()),
        (Outcome::Done, "restore")
    );
    assert!(
        keys_of(&cfg).await["broke"].iter().all(|k| k.1),
        "re-enabled"
    );
    assert_eq!(
        rig.calls(&org.management).get("events:PutEvents").copied(),
        Some(1)
    );
}
