//! The owner's fallback to the account's email in every run that has an account: a single
//! account's run and a member account's request name the account by id only, and the remediator
//! asks the organization for its email (one `DescribeAccount`, through the org-list role when one
//! is configured), so an owner without an address of its own is told there, not the admin.

use chrono::{SubsecRound, Utc};
use remediator::{handle_invocation, Invocation};

use crate::remediator::remediator;
use crate::support::{repo_root, seed, Org, Rig, UserSpec};

fn untagged(name: &str) -> UserSpec {
    UserSpec {
        name: name.into(),
        keys: vec![(95, Some(1), true)],
        ..UserSpec::default()
    }
}

/// Who was mailed about `user` (the owner notice names the user).
fn mailed_about(org: &Org, user: &str) -> Vec<String> {
    Rig::get()
        .emails(&org.management)
        .iter()
        .filter(|m| m["text"].as_str().unwrap_or_default().contains(user))
        .flat_map(|m| {
            m["to"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_account_run_and_a_member_request_tell_the_accounts_email() {
    let org = Org::new(1).await;
    let member = org.members[0].clone();
    let cfg = org.member(0).await;
    let now = Utc::now().trunc_subsecs(0);
    let seeded = seed(
        &cfg,
        &member,
        &[untagged("no-owner-a"), untagged("no-owner-b")],
        now,
    )
    .await;
    let mut r = remediator(&org, false).await;
    // Through the org-list role, as when the central account is not the management account.
    r.role.org_role_arn = Some(format!(
        "arn:aws:iam::{}:role/keyguard-org-list",
        org.management
    ));
    let account_email = format!("member-0@{}.example.com", org.management);

    // A single account's run (an operator's manual event naming the account).
    let one = serde_json::json!({"kind": "manual", "account": member, "user": "no-owner-a"});
    let s = remediator::handle(&r, one, now).await.unwrap();
    assert_eq!(s.failures(), 0, "{s:#?}");
    // The owner notice at the account's email (the admin's digest names the user too).
    assert!(
        mailed_about(&org, "no-owner-a").contains(&account_email),
        "{:?}",
        mailed_about(&org, "no-owner-a")
    );

    // A member account's request for its user.
    let text = std::fs::read_to_string(
        repo_root().join("remediator/fixtures/config-compliance-change.json"),
    )
    .unwrap()
    .replace("{{account}}", &member)
    .replace("{{user_id}}", &seeded["no-owner-b"].user_id);
    let request: serde_json::Value = serde_json::from_str(&text).unwrap();
    let inv = Invocation {
        now,
        deadline: None,
    };
    handle_invocation(&r, request, inv).await.unwrap();
    assert!(
        mailed_about(&org, "no-owner-b").contains(&account_email),
        "{:?}",
        mailed_about(&org, "no-owner-b")
    );
    let by_role = Rig::get().calls_by_role();
    assert!(
        by_role["keyguard-org-list"]
            .get("organizations:DescribeAccount")
            .is_some_and(|n| *n >= 2),
        "{by_role:?}"
    );
}
