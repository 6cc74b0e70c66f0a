//! The weekly report at organization scale against the rig: one invocation per account writes its
//! evidence slice, the last one's follow-up builds and delivers the report once.

use chrono::{SubsecRound, Utc};
use keyguard_aws::sdk::{Caller, RoleSpec};
use keyguard_aws::state::StateTable;
use keyguard_core::Settings;
use serde_json::json;

use crate::scale::*;
use crate::support::{seed, Org, Rig};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queued_report_gathers_each_accounts_evidence_then_reports_once() {
    let rig = Rig::get();
    let org = Org::new(3).await;
    let d = Deployment::named(&org, "keyguard-reports").await;
    let now = Utc::now().trunc_subsecs(0);
    for i in 0..3 {
        let cfg = org.member(i).await;
        seed(
            &cfg,
            &org.members[i],
            &[
                due(&format!("ci-{i}"), "o@example.com"),
                due(&format!("app-{i}"), "o@example.com"),
            ],
            now,
        )
        .await;
    }
    // The central account's own users are part of the report too (read with the reporter's role),
    // among them a never-used key due for its disable (where it is used is looked up).
    let unused = crate::support::UserSpec {
        keys: vec![(60, None, true)],
        ..due("central-unused", "o@example.com")
    };
    seed(
        &org.config,
        &org.management,
        &[due("central-ci", "o@example.com"), unused],
        now,
    )
    .await;
    let broken = org.members[2].clone();
    rig.fault(
        Some(&broken),
        "GenerateCredentialReport",
        "ServiceUnavailable",
        100,
    );
    let s3 = keyguard_aws::s3::client(&org.config);
    // S3's bucket names are global: one per test organization.
    let bucket = format!("reports-{}", org.management);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();

    let r = reporter_of(&org, &d, &bucket).await;

    let dispatched = reporter::lambda::handle_invocation(&r, json!({"report": "weekly"}), now)
        .await
        .unwrap();
    let dispatched = serde_json::to_value(dispatched).unwrap();
    assert_eq!(dispatched["accounts"], 4, "{dispatched}");
    let evidence = dispatched["evidence"].as_str().unwrap().to_string();
    let played = play_queue(&d.sqs, &d.queue, 2, |event, _| {
        let r = &r;
        async move {
            let answer = reporter::lambda::handle_invocation(r, event, now)
                .await
                .unwrap();
            serde_json::to_value(answer).unwrap()
        }
    })
    .await;
    rig.clear_faults(&broken);
    assert_eq!(played.failures, MAX_RECEIVES as usize, "{played:?}");
    assert_eq!(d.dead_letters().await.len(), 1, "the broken account, alone");

    // Each healthy account wrote its slice; the report was built once from the folder.
    let keys = keyguard_aws::s3::list_keys(
        &s3,
        keyguard_aws::s3::Bucket::new(&bucket, None),
        "keyguard/",
    )
    .await
    .unwrap();
    for i in 0..2 {
        let slice = format!(
            "keyguard/evidence/{}/{}/credential-report.csv",
            reporter::Period::weekly(now.date_naive()).id(),
            org.members[i]
        );
        assert!(keys.contains(&slice), "{slice} missing from {keys:#?}");
    }
    let period = reporter::Period::weekly(now.date_naive()).id();
    let freshness_key = format!("keyguard/{period}/freshness.csv");
    assert!(keys.contains(&freshness_key), "{keys:#?}");
    let freshness = String::from_utf8(
        keyguard_aws::s3::get(
            &s3,
            keyguard_aws::s3::Bucket::new(&bucket, None),
            &freshness_key,
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let broken_row = freshness
        .lines()
        .find(|l| l.starts_with(&broken))
        .unwrap_or_else(|| panic!("{freshness}"));
    assert!(
        !broken_row.contains(",ok,"),
        "the broken account's inventory is not ok: {broken_row}"
    );
    // Each account's LookupEvents stayed paced and per account.
    for i in 0..2 {
        let calls = rig.calls(&org.members[i]);
        assert!(
            calls.get("cloudtrail:LookupEvents").copied().unwrap_or(0)
                <= reporter::cloudtrail::FOLLOWED.len() as u64,
            "{calls:?}"
        );
    }

    // The same folder, read by the CLI, gives the same report.
    let out = std::env::temp_dir().join(format!("keyguard-queued-{}", std::process::id()));
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args(["report", "--weekly", "--evidence", &evidence, "--out"])
        .arg(&out)
        .envs(support_env(&org).await)
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let local = std::fs::read_to_string(out.join(&period).join("freshness.csv")).unwrap();
    assert_eq!(local, freshness);
    let _ = std::fs::remove_dir_all(&out);
}

/// The reporter as deployed with the queue: its execution role, the state table, the report
/// queue, reports (and their evidence) under `s3://<bucket>/keyguard`.
async fn reporter_of(org: &Org, d: &Deployment, bucket: &str) -> reporter::lambda::Reporter {
    let sdk = Rig::get()
        .as_role(&org.management, "keyguard-reporter", "report")
        .await;
    reporter::lambda::Reporter {
        sdk: sdk.clone(),
        caller: Caller {
            account: org.management.clone(),
            partition: "aws".into(),
            arn: format!(
                "arn:aws:sts::{}:assumed-role/keyguard-reporter/report",
                org.management
            ),
        },
        options: reporter::evidence::Options {
            kind: reporter::PeriodKind::Weekly,
            as_of: None,
            settings: Settings::default(),
            rule_name: "keyguard-access-keys".into(),
            keyguard_roles: keyguard_aws::settings_env::KeyguardRoles {
                member: vec!["keyguard-member-remediator".into()],
                ..Default::default()
            },
            owner_domains: None,
            accounts: vec![],
            page_rows: reporter::render::PAGE_ROWS,
        },
        live: reporter::live::LiveOptions {
            config: reporter::live::ConfigSource::PerAccount,
            trail: reporter::live::TrailSource::LookupEvents,
            role: RoleSpec {
                role_name: "keyguard-member-reporter".into(),
                session_name: "keyguard-reporter".into(),
                org_role_arn: None,
            },
            organization: org.management.clone(),
            trail_owner: None,
        },
        filter: keyguard_aws::org::AccountFilter::default(),
        delivery: reporter::deliver::Delivery {
            s3_uri: Some(format!("s3://{bucket}/keyguard")),
            bucket_owner: Some(org.management.clone()),
            ..Default::default()
        },
        state: Some(StateTable::new(&sdk, &d.table)),
        queue: Some(d.queue.clone()),
        max_receives: MAX_RECEIVES as u32,
    }
}

async fn support_env(org: &Org) -> Vec<(&'static str, String)> {
    crate::support::env_of(&org.config).await
}

/// Whoever can write to the evidence prefix rewrites an account's slice between its invocation
/// and the report (its Config results, say): the slice no longer matches the digest its
/// invocation kept in the state table, so the report names the account and does not use it; the
/// other accounts' slices are used.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_changed_evidence_slice_is_named_and_not_used() {
    let org = Org::new(2).await;
    let d = Deployment::named(&org, "keyguard-reports").await;
    let now = Utc::now().trunc_subsecs(0);
    for i in 0..2 {
        let cfg = org.member(i).await;
        seed(
            &cfg,
            &org.members[i],
            &[due(&format!("ci-{i}"), "o@example.com")],
            now,
        )
        .await;
    }
    let s3 = keyguard_aws::s3::client(&org.config);
    let bucket = format!("reports-{}", org.management);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let r = reporter_of(&org, &d, &bucket).await;
    reporter::lambda::handle_invocation(&r, json!({"report": "weekly"}), now)
        .await
        .unwrap();
    let period = reporter::Period::weekly(now.date_naive()).id();
    let victim = org.members[0].clone();
    let forged_key = format!("keyguard/evidence/{period}/{victim}/credential-report.csv");
    let played = play_queue(&d.sqs, &d.queue, 1, |event, _| {
        let (r, s3, bucket, forged_key) = (&r, &s3, &bucket, &forged_key);
        async move {
            // Just before the report is built, the slice is rewritten.
            if event.to_string().contains("finalize") {
                s3.put_object()
                    .bucket(bucket.as_str())
                    .key(forged_key.as_str())
                    .body(b"user,arn\n".to_vec().into())
                    .send()
                    .await
                    .unwrap();
            }
            let answer = reporter::lambda::handle_invocation(r, event, now)
                .await
                .unwrap();
            serde_json::to_value(answer).unwrap()
        }
    })
    .await;
    assert_eq!(played.failures, 0, "{played:?}");
    let get = |key: String| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            String::from_utf8(
                keyguard_aws::s3::get(&s3, keyguard_aws::s3::Bucket::new(&bucket, None), &key)
                    .await
                    .unwrap(),
            )
            .unwrap()
        }
    };
    let freshness = get(format!("keyguard/{period}/freshness.csv")).await;
    let row = |account: &str| {
        freshness
            .lines()
            .find(|l| l.starts_with(account))
            .unwrap_or_else(|| panic!("{freshness}"))
            .to_string()
    };
    assert!(
        row(&victim).contains(",could not be read: its evidence slice failed the manifest's digest check (its files differ from what was collected): not used,"),
        "{freshness}"
    );
    assert!(row(&org.members[1]).contains(",read,1,"), "{freshness}");
    let html = get(format!("keyguard/{period}/report.html")).await;
    assert!(
        html.contains(&format!(
            "account {victim}: its evidence slice failed the manifest&#x27;s digest check (its files differ from what was collected)"
        )) || html.contains(&format!(
            "account {victim}: its evidence slice failed the manifest's digest check (its files differ from what was collected)"
        )),
        "the report names the slice"
    );
}
