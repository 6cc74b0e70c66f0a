//! The reporter's live path against the emulator rig: evaluations from the rule handler, group
//! changes and key actions made through IAM and read back through LookupEvents, org-trail files in
//! the rig's S3, delivery to a folder, S3 and SES.

use crate::support;

use crate::report::*;
use aws_sdk_iam::types::{StatusType, Tag};
use chrono::{Duration, SubsecRound, Utc};
use keyguard_aws::inventory::ReportPolling;
use keyguard_aws::sdk::{Caller, RoleSpec};
use keyguard_core::Settings;
use support::{seed, Org, Rig, UserSpec};

async fn as_role(account: &str, role: &str, session: &str) -> aws_config::SdkConfig {
    Rig::get().as_role(account, role, session).await
}

#[tokio::test(flavor = "multi_thread")]
async fn live_report_against_the_rig() {
    let rig = Rig::get();
    let org = Org::new(2).await;
    let (m0, m1) = (org.members[0].clone(), org.members[1].clone());
    let now = Utc::now().trunc_subsecs(0);
    let k = |age: i64, used: Option<i64>, active: bool| (age, used, active);
    let person = as_role(&m0, "AWSReservedSSO_Admin", "alice@example.com").await;
    let users = seed(
        &person,
        &m0,
        &[
            UserSpec {
                name: "ci-deploy".into(),
                keys: vec![k(10, Some(1), true)],
                ..Default::default()
            },
            UserSpec {
                name: "backup".into(),
                keys: vec![k(97, Some(1), true)],
                ..Default::default()
            },
            UserSpec {
                name: "vendor+x@y.example".into(),
                path: "/vendors/".into(),
                keys: vec![k(200, Some(2), true)],
                ..Default::default()
            },
            UserSpec {
                name: "etl".into(),
                keys: vec![k(100, Some(1), true)],
                ..Default::default()
            },
            UserSpec {
                name: "old".into(),
                keys: vec![k(150, Some(60), false)],
                ..Default::default()
            },
        ],
        now,
    )
    .await;
    seed(
        &rig.account_config(&m1).await,
        &m1,
        &[UserSpec {
            name: "svc".into(),
            keys: vec![k(50, Some(1), true)],
            ..Default::default()
        }],
        now,
    )
    .await;

    // A person grants an exemption (the key is 200 days old: flagged).
    let iam = aws_sdk_iam::Client::new(&person);
    iam.create_group().group_name(GROUP).send().await.unwrap();
    iam.add_user_to_group()
        .group_name(GROUP)
        .user_name("vendor+x@y.example")
        .send()
        .await
        .unwrap();
    let until = (now + Duration::days(20)).format("%Y-%m-%d").to_string();
    iam.tag_user()
        .user_name("vendor+x@y.example")
        .tags(Tag::builder().key(EXPIRY).value(&until).build().unwrap())
        .send()
        .await
        .unwrap();
    // keyguard's role rotates etl (new key, old one disabled) and deletes old's disabled key.
    let kg =
        aws_sdk_iam::Client::new(&as_role(&m0, "keyguard-member-remediator", "keyguard").await);
    let new_key = kg
        .create_access_key()
        .user_name("etl")
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    kg.update_access_key()
        .user_name("etl")
        .access_key_id(&users["etl"].keys[0])
        .status(StatusType::Inactive)
        .send()
        .await
        .unwrap();
    kg.delete_access_key()
        .user_name("old")
        .access_key_id(&users["old"].keys[0])
        .send()
        .await
        .unwrap();

    // keyguard keeps one secret in m0 (its rotation of etl stored the new key); another
    // secret there is somebody else's and not counted.
    let sm = aws_sdk_secretsmanager::Client::new(&person);
    let tag = |k: &str, v: &str| {
        aws_sdk_secretsmanager::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
    };
    sm.create_secret()
        .name(keyguard_aws::secrets::secret_name(&m0, "etl"))
        .secret_string("{}")
        .tags(tag("managed-by", "keyguard"))
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name("db-password")
        .secret_string("x")
        .tags(tag("managed-by", "terraform"))
        .send()
        .await
        .unwrap();

    // The rule handler evaluates m0 (m1 has no rule: "not evaluated").
    let ctx = rule_lambda::RuleContext {
        sdk: as_role(&org.management, "keyguard-rule-lambda", "rule").await,
        caller: Caller {
            account: org.management.clone(),
            partition: "aws".into(),
            arn: format!(
                "arn:aws:sts::{}:assumed-role/keyguard-rule-lambda/rule",
                org.management
            ),
        },
        settings: Settings::default(),
        role: RoleSpec {
            role_name: "keyguard-member-rule".into(),
            session_name: "keyguard-rule".into(),
            org_role_arn: None,
        },
        polling: ReportPolling {
            interval: std::time::Duration::from_millis(10),
            attempts: 20,
        },
    };
    let event: rule_lambda::ConfigEvent = serde_json::from_str(
        &support::fixture("rule-lambda/fixtures/scheduled.json")
            .replace("{{account}}", &m0)
            .replace("{{time}}", &now.to_rfc3339())
            .replace("{{token}}", "keyguard-access-keys/scheduled")
            .replace("\"{{parameters}}\"", "\"\""),
    )
    .unwrap();
    rule_lambda::handle(&ctx, event, now).await.unwrap();

    // Delivery targets in the management account.
    let s3 = keyguard_aws::s3::client(&org.config);
    for b in ["reports", "org-trail"] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    let ses = aws_sdk_sesv2::Client::new(&org.config);
    ses.create_email_identity()
        .email_identity("reports@example.com")
        .send()
        .await
        .unwrap();

    // The CLI acts as the reporter does when deployed: its execution role centrally, its member
    // role elsewhere; the keyguard actions above were made as `keyguard-member-remediator`.
    let reporter_sdk = as_role(&org.management, "keyguard-reporter", "report").await;
    let mut env = support::env_of(&reporter_sdk).await;
    env.push(("KEYGUARD_MEMBER_ROLE", "keyguard-member-reporter".into()));
    env.push(("KEYGUARD_ACTOR_ROLES", "keyguard-member-remediator".into()));
    let out_dir = tmp("live-report");
    let started = std::time::Instant::now();
    let out = keyguard(
        &[
            "report",
            "--weekly",
            "--out",
            out_dir.to_str().unwrap(),
            "--s3-uri",
            "s3://reports/keyguard",
            "--email-to",
            "auditor@example.com",
            "--sender",
            "reports@example.com",
        ],
        &env,
    );
    let elapsed = started.elapsed();
    let stderr = ok(&out);
    let dir = out_dir.join(reporter::Period::weekly(now.date_naive()).id());
    assert!(
        stderr.contains(&format!(
            "account {m1}: Config rule keyguard-access-keys does not exist"
        )),
        "{stderr}"
    );

    // Pacing: one LookupEvents per followed event name and account (one page), ≥ 0.5 s apart,
    // and one for the key due for a step (its newest calls: where it is used).
    let calls = rig.calls(&m0);
    let followed = reporter::cloudtrail::FOLLOWED.len();
    assert_eq!(
        calls.get("cloudtrail:LookupEvents").copied(),
        Some(followed as u64 + 1),
        "{calls:?}\n{stderr}"
    );
    assert!(
        elapsed >= std::time::Duration::from_millis((followed as u64 - 1) * 500),
        "{followed} paced calls take at least {} s, took {elapsed:?}",
        (followed - 1) / 2
    );

    // 1. Summary: the management account (no users, no rule) and the two members; 6 users, 6
    // keys left (old's deleted), backup NON_COMPLIANT, svc not evaluated.
    assert_eq!(metric(&dir, "accounts").0, "3");
    assert_eq!(metric(&dir, "users").0, "6");
    assert_eq!(
        metric(&dir, "keys").0,
        "6",
        "ci-deploy, backup, vendor, etl × 2, svc"
    );
    assert_eq!(metric(&dir, "users_not_evaluated").0, "1");
    assert_eq!(
        metric(&dir, "secrets_kept").0,
        "1",
        "keyguard's secret, not Terraform's"
    );
    assert_eq!(
        metric(&dir, "secrets_monthly_usd").0,
        "0.4",
        "0.40 USD (a number in the CSV)"
    );
    assert_eq!(metric(&dir, "exemptions_active").0, "1");
    assert_eq!(
        metric(&dir, "keys_over_rotation").0,
        "2",
        "backup (97) and vendor (200)"
    );
    // 4 COMPLIANT (ci-deploy, vendor exempt, etl, old with no key) of 6.
    assert_eq!(metric(&dir, "compliant_pct").0, "66.7");
    // 2. Ages of the 5 Active keys: 10, 0, 50 | 97 | 200.
    let ages: Vec<String> = csv(&dir.join("key-ages.csv"))
        .iter()
        .map(|r| r["active_keys"].clone())
        .collect();
    assert_eq!(ages, ["3", "0", "1", "0", "1"]);
    // 3. backup, due now.
    let nc = csv(&dir.join("non-compliant-users.csv"));
    assert_eq!(nc.len(), 1, "{nc:?}");
    assert_eq!(
        (nc[0]["user"].as_str(), nc[0]["next_action"].as_str()),
        ("backup", "rotate")
    );
    assert!(nc[0]["next_action_date"].starts_with("due now"));
    // 4. Actions: keyguard's rotation, disable, delete; the person created the 6 seeded keys.
    let actions = csv(&dir.join("actions.csv"));
    assert_eq!(
        count(
            &actions,
            &[
                ("action", "rotation"),
                ("by_kind", "keyguard"),
                ("user", "etl")
            ]
        ),
        1
    );
    assert_eq!(
        count(
            &actions,
            &[
                ("action", "disable"),
                ("by_kind", "keyguard"),
                ("user", "etl")
            ]
        ),
        1
    );
    assert_eq!(
        count(
            &actions,
            &[
                ("action", "disable"),
                ("by_kind", "person"),
                ("user", "old")
            ]
        ),
        1,
        "seeding"
    );
    assert_eq!(
        count(
            &actions,
            &[
                ("action", "delete"),
                ("by_kind", "keyguard"),
                ("user", "old")
            ]
        ),
        1
    );
    assert_eq!(
        count(&actions, &[("action", "created"), ("by_kind", "person")]),
        6
    );
    let rotation = actions.iter().find(|r| r["action"] == "rotation").unwrap();
    assert_eq!(
        rotation["key"],
        keyguard_core::mask_key_id(new_key.access_key_id())
    );
    assert_eq!(rotation["by"], "keyguard-member-remediator/keyguard");
    // 5. Ledger: group created, user added (flagged), expiry set (flagged); expiring in 20 days.
    let ledger = csv(&dir.join("exemption-ledger.csv"));
    let mut changes: Vec<(&str, &str, &str)> = ledger
        .iter()
        .map(|r| {
            (
                r["change"].as_str(),
                r["user"].as_str(),
                r["granted_while_overdue"].as_str(),
            )
        })
        .collect();
    changes.sort();
    let set = format!("expiry tag set to {until}");
    assert_eq!(
        changes,
        [
            ("added to the exemption group", "vendor+x@y.example", "true"),
            ("exemption group created", "", "false"),
            (set.as_str(), "vendor+x@y.example", "true")
        ]
    );
    assert!(ledger
        .iter()
        .all(|r| r["by"] == "AWSReservedSSO_Admin/alice@example.com"));
    let expiring = csv(&dir.join("exemptions-expiring.csv"));
    assert_eq!(expiring.len(), 1);
    assert_eq!(expiring[0]["oldest_key_age"], "200");
    // 6. Freshness: m0 evaluated just now, m1's rule missing.
    let fresh = csv(&dir.join("freshness.csv"));
    let row = |id: &str| fresh.iter().find(|r| r["account"] == id).unwrap().clone();
    assert_eq!(
        (
            row(&m0)["config"].as_str(),
            row(&m0)["users_evaluated"].as_str(),
            row(&m0)["stale"].as_str()
        ),
        ("evaluated", "5", "false")
    );
    assert_eq!(row(&m1)["config"], "rule keyguard-access-keys missing");
    // 7. Controls: IAM.3 fails for backup only (the vendor is exempt).
    let controls = csv(&dir.join("controls.csv"));
    assert_eq!(
        controls.iter().find(|r| r["control"] == "IAM.3").unwrap()["failing_users"],
        "1"
    );

    // Delivered to S3 (summary.json included) and by email with the CSVs attached.
    let listed = s3
        .list_objects_v2()
        .bucket("reports")
        .prefix("keyguard/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        keys.len(),
        reporter::render::CSV_TABLES.len() + 3,
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.ends_with("/summary.json"))
            && keys.iter().any(|k| k.ends_with("/report.html"))
            && keys.iter().any(|k| k.ends_with("/findings.ocsf.json"))
    );
    let mails = rig.emails(&org.management);
    assert_eq!(mails.len(), 1, "{mails:?}");
    let raw = mails[0]["raw"].as_str().unwrap();
    assert!(raw.contains("auditor@example.com") && raw.contains("IAM access key compliance"));
    assert_eq!(
        raw.matches("Content-Disposition: attachment").count(),
        reporter::render::CSV_TABLES.len(),
        "every CSV"
    );
    assert!(
        raw.contains("filename=\"exemption-ledger.csv\"")
            || raw.contains("filename=exemption-ledger.csv")
    );
    // The rotated key's secret reaches neither the report's files, nor the email, nor the log.
    let secret = new_key.secret_access_key();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(secret),
            "{} holds the secret",
            path.display()
        );
    }
    assert!(!raw.contains(secret) && !stderr.contains(secret));

    // The org trail in S3 gives the same actions: m0's events as CloudTrail delivers them
    // (one file, delivered twice).
    let ct = aws_sdk_cloudtrail::Client::new(&as_role(&m0, "keyguard-member", "keyguard").await);
    let mut records = Vec::new();
    for name in reporter::cloudtrail::FOLLOWED {
        let page = ct
            .lookup_events()
            .lookup_attributes(
                aws_sdk_cloudtrail::types::LookupAttribute::builder()
                    .attribute_key(aws_sdk_cloudtrail::types::LookupAttributeKey::EventName)
                    .attribute_value(*name)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        records.extend(
            page.events()
                .iter()
                .filter_map(|e| e.cloud_trail_event())
                .map(str::to_string),
        );
    }
    let body = gzip(format!("{{\"Records\":[{}]}}", records.join(",")).as_bytes());
    let day = now.format("%Y/%m/%d");
    for copy in ["a", "b"] {
        s3.put_object()
            .bucket("org-trail")
            .key(format!("AWSLogs/o-test/{m0}/CloudTrail/us-east-1/{day}/{m0}_CloudTrail_us-east-1_{copy}.json.gz"))
            .body(body.clone().into())
            .send()
            .await
            .unwrap();
    }
    let s3_dir = tmp("live-report-s3");
    ok(&keyguard(
        &[
            "report",
            "--weekly",
            "--account",
            &m0,
            "--trail",
            "s3://org-trail/AWSLogs/o-test",
            "--out",
            s3_dir.to_str().unwrap(),
        ],
        &env,
    ));
    let from_s3 = csv(&s3_dir
        .join(reporter::Period::weekly(now.date_naive()).id())
        .join("actions.csv"));
    let m0_lookup: Vec<_> = actions
        .iter()
        .filter(|r| r["account"] == m0)
        .cloned()
        .collect();
    assert_eq!(from_s3, m0_lookup);

    // collect --since the period's start writes the CloudTrail slice too: the report of that
    // evidence folder has the same actions and exemption ledger as the live report.
    let period = reporter::Period::weekly(now.date_naive());
    let evidence = tmp("collected-with-trail");
    ok(&keyguard(
        &[
            "collect",
            "--out",
            evidence.to_str().unwrap(),
            "--since",
            &period.start().to_rfc3339(),
        ],
        &env,
    ));
    let offline = tmp("report-of-collected");
    ok(&keyguard(
        &[
            "report",
            "--weekly",
            "--evidence",
            evidence.to_str().unwrap(),
            "--out",
            offline.to_str().unwrap(),
        ],
        &env,
    ));
    assert_eq!(metric(&offline.join(period.id()), "secrets_kept").0, "1");
    for file in ["actions.csv", "exemption-ledger.csv"] {
        assert_eq!(
            csv(&offline.join(period.id()).join(file)),
            csv(&dir.join(file)),
            "{file}: the collected folder reports what the live run did"
        );
    }

    // The Lambda handler, in-process: the weekly fixture, to S3; the previous week's report is
    // not there, this week's is: a second run compares nothing new but finds its own history.
    let r = reporter::lambda::Reporter {
        sdk: reporter_sdk.clone(),
        caller: Caller {
            arn: format!(
                "arn:aws:sts::{}:assumed-role/keyguard-reporter/report",
                org.management
            ),
            ..ctx.caller.clone()
        },
        options: reporter::evidence::Options {
            kind: reporter::PeriodKind::Weekly,
            as_of: None,
            settings: Settings::default(),
            rule_name: "keyguard-access-keys".into(),
            keyguard_roles: keyguard_aws::settings_env::KeyguardRoles {
                member: vec!["keyguard-member".into()],
                ..Default::default()
            },
            owner_domains: None,
            accounts: Vec::new(),
            page_rows: reporter::render::PAGE_ROWS,
        },
        live: reporter::live::LiveOptions {
            config: reporter::live::ConfigSource::Aggregator("org".into()),
            trail: reporter::live::TrailSource::S3("org-trail/AWSLogs/o-test".into()),
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
            s3_uri: Some("s3://reports/lambda".into()),
            ..Default::default()
        },
        state: None,
        queue: None,
        max_receives: 3,
    };
    let fixture: serde_json::Value =
        serde_json::from_str(&support::fixture("reporter/fixtures/weekly.json")).unwrap();
    let outcome = reporter::lambda::handle(&r, fixture.clone(), now)
        .await
        .unwrap();
    assert_eq!(
        outcome.delivered,
        [format!(
            "s3://reports/lambda/{}/",
            reporter::Period::weekly(now.date_naive()).id()
        )]
    );
    let got = s3
        .get_object()
        .bucket("reports")
        .key(format!("lambda/{}/summary.csv", outcome.period))
        .send()
        .await
        .unwrap();
    let text = String::from_utf8(got.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
    assert!(
        text.contains("users,IAM users (fewer is better),6,"),
        "aggregator results read the same: {text}"
    );

    // With a Security Lake location, the scheduled run also writes the findings there: one
    // object per account, every record read back valid.
    let lake_bucket = format!("aws-security-data-lake-us-east-1-{}", org.management);
    s3.create_bucket()
        .bucket(&lake_bucket)
        .send()
        .await
        .unwrap();
    let lake = reporter::lambda::Reporter {
        delivery: reporter::deliver::Delivery {
            security_lake: Some(reporter::security_lake::Destination {
                target: reporter::security_lake::Target::parse(&format!(
                    "s3://{lake_bucket}/ext/keyguard/"
                ))
                .unwrap(),
                role_arn: None,
                external_id: None,
                bucket_owner: None,
            }),
            ..Default::default()
        },
        ..r
    };
    let outcome = reporter::lambda::handle(&lake, fixture, now).await.unwrap();
    assert_eq!(outcome.delivered.len(), 1, "{:?}", outcome.delivered);
    assert!(
        outcome.delivered[0].starts_with("Security Lake: "),
        "{:?}",
        outcome.delivered
    );
    let location = crate::security_lake::download(&org.config, &lake_bucket, "ext/keyguard/").await;
    let verdict = crate::security_lake::check(&location);
    assert_eq!(verdict["problems"], serde_json::json!([]), "{verdict}");
    assert!(verdict["rows"].as_u64().unwrap() >= 6, "{verdict}");
}
