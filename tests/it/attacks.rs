//! The trust boundary (issue 14), one test per attack, against the rig: what a member account's
//! administrator can make keyguard do. The templates' side (who may invoke, the request bus's
//! policy and pattern) is asserted in `deploy.rs`.

use chrono::{SubsecRound, Utc};
use remediator::{handle_invocation, Answer, Invocation};
use serde_json::Value;

use crate::remediator::{keys_of, remediator, spec};
use crate::support::{repo_root, seed, Org, Rig};

/// Config's compliance-change event as the central request bus receives it from `account`.
fn compliance_change(account: &str, user_id: &str) -> Value {
    let text = std::fs::read_to_string(
        repo_root().join("remediator/fixtures/config-compliance-change.json"),
    )
    .unwrap()
    .replace("{{account}}", account)
    .replace("{{user_id}}", user_id);
    serde_json::from_str(&text).unwrap()
}

fn now_inv() -> Invocation {
    Invocation {
        now: Utc::now().trunc_subsecs(0),
        deadline: None,
    }
}

/// The attacker controls account B and wants a key of account A rotated: the event's account is
/// B (EventBridge sets it), so naming A's user, or A in the detail, does nothing to A.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_cannot_make_keyguard_act_in_another_account() {
    let org = Org::new(2).await;
    let now = Utc::now().trunc_subsecs(0);
    let (a, b) = (org.members[0].clone(), org.members[1].clone());
    let cfg_a = org.member(0).await;
    let seeded = seed(
        &cfg_a,
        &a,
        &[spec("victim", vec![(95, Some(1), true)])],
        now,
    )
    .await;
    let victim = seeded["victim"].user_id.clone();
    let r = remediator(&org, false).await;
    let rig = Rig::get();
    rig.reset_calls(&a);
    // B's bus forwards an event about A's user: the remediator looks for it in B.
    let from_b = handle_invocation(&r, compliance_change(&b, &victim), now_inv()).await;
    let answered = format!("{from_b:?}");
    assert!(
        !answered.contains("victim"),
        "no name in the answer: {answered}"
    );
    // B's event claiming A in its detail is refused outright.
    let mut claims_a = compliance_change(&b, &victim);
    claims_a["detail"]["awsAccountId"] = a.clone().into();
    let refused = handle_invocation(&r, claims_a, now_inv()).await;
    assert!(refused.is_err_and(|e| e
        .to_string()
        .contains("not the account the event came from")));
    assert_eq!(
        keys_of(&cfg_a).await["victim"].len(),
        1,
        "A's user untouched"
    );
    let writes: u64 = rig
        .calls(&a)
        .iter()
        .filter(|(k, _)| {
            k.contains("Create")
                || k.contains("Update")
                || k.contains("Delete")
                || k.contains("Tag")
        })
        .map(|(_, n)| n)
        .sum();
    assert_eq!(writes, 0, "{:?}", rig.calls(&a));
}

/// A member floods the request bus with its own users' findings: each user is acted on once a
/// day, with the normal policy, and the answer names nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_request_runs_once_per_user_per_day_and_names_nobody() {
    let org = Org::new(1).await;
    let now = Utc::now().trunc_subsecs(0);
    let a = org.members[0].clone();
    let cfg = org.member(0).await;
    let seeded = seed(
        &cfg,
        &a,
        &[spec("ci+deploy@x", vec![(95, Some(1), true)])],
        now,
    )
    .await;
    let id = seeded["ci+deploy@x"].user_id.clone();
    let r = remediator(&org, false).await;
    let first = handle_invocation(&r, compliance_change(&a, &id), now_inv())
        .await
        .unwrap();
    let Answer::Requested(q) = &first else {
        panic!("{first:?}")
    };
    assert!(q.acted && q.done == 1 && q.failed == 0, "{q:?}");
    let text = serde_json::to_string(&first).unwrap();
    for secret_of_the_run in ["ci+deploy", "example.com", "Account_", "AKIA"] {
        assert!(!text.contains(secret_of_the_run), "{text}");
    }
    assert_eq!(keys_of(&cfg).await["ci+deploy@x"].len(), 2, "rotated");
    for _ in 0..3 {
        let again = handle_invocation(&r, compliance_change(&a, &id), now_inv())
            .await
            .unwrap();
        let Answer::Requested(q) = again else {
            panic!("{again:?}")
        };
        assert!(!q.acted && q.examined == 0, "{q:?}");
    }
}
