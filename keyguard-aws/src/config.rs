//! AWS Config: writing evaluations and reading compliance results.

use std::time::Duration;

use aws_sdk_config::operation::get_compliance_details_by_config_rule::GetComplianceDetailsByConfigRuleError;
use aws_sdk_config::types::{ComplianceType, Evaluation as SdkEvaluation};
use chrono::{DateTime, Utc};
use keyguard_core::{Compliance, ComplianceResult};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::time::{to_chrono, to_smithy};

/// The resource type keyguard evaluates.
pub const IAM_USER: &str = "AWS::IAM::User";

/// Config accepts at most this many evaluations per PutEvaluations call.
pub const PUT_BATCH: usize = 100;

/// How often the evaluations Config reports as failed are sent again before they are reported.
const FAILED_RETRIES: u32 = 3;

/// One evaluation to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The Config resource type (`AWS::IAM::User`).
    pub resource_type: String,
    /// The resource id: the IAM UserId, not the name.
    pub resource_id: String,
    /// The verdict.
    pub compliance: Compliance,
    /// At most 256 characters (keyguard-core guarantees it for findings).
    pub annotation: String,
    /// Config keeps, per resource, the evaluation with the newest ordering timestamp: the
    /// configuration item's capture time for change events, the notification time for periodic ones.
    pub ordering_timestamp: DateTime<Utc>,
}

/// What [`put_evaluations`] achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOutcome {
    /// Evaluations Config accepted.
    pub accepted: usize,
    /// Calls made (for call-economy checks).
    pub calls: usize,
    /// Resource ids Config still reported as failed after the retries.
    pub failed: Vec<String>,
}

/// Writes `evaluations` with PutEvaluations in batches of [`PUT_BATCH`]. Evaluations Config
/// answers as `FailedEvaluations` are sent again up to three times with backoff; those still
/// failing are returned in [`PutOutcome::failed`] (the caller reports them). With `test_mode`,
/// Config validates without storing.
pub async fn put_evaluations(
    client: &aws_sdk_config::Client,
    result_token: &str,
    evaluations: &[Evaluation],
    test_mode: bool,
) -> Result<PutOutcome> {
    let mut outcome = PutOutcome::default();
    for batch in evaluations.chunks(PUT_BATCH) {
        let mut pending: Vec<SdkEvaluation> = batch.iter().map(to_sdk).collect::<Result<_>>()?;
        let mut attempt = 0;
        while !pending.is_empty() {
            let out = client
                .put_evaluations()
                .result_token(result_token)
                .set_evaluations(Some(pending.clone()))
                .test_mode(test_mode)
                .send()
                .await
                .map_err(|e| Error::sdk("PutEvaluations", e))?;
            outcome.calls += 1;
            let failed: Vec<SdkEvaluation> = out.failed_evaluations().to_vec();
            outcome.accepted += pending.len() - failed.len();
            if failed.is_empty() {
                break;
            }
            attempt += 1;
            if attempt > FAILED_RETRIES {
                outcome.failed.extend(
                    failed
                        .iter()
                        .map(|e| e.compliance_resource_id().to_string()),
                );
                break;
            }
            tracing::warn!(
                failed = failed.len(),
                attempt,
                "Config reported failed evaluations; sending them again"
            );
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            pending = failed;
        }
    }
    Ok(outcome)
}

fn to_sdk(e: &Evaluation) -> Result<SdkEvaluation> {
    SdkEvaluation::builder()
        .compliance_resource_type(&e.resource_type)
        .compliance_resource_id(&e.resource_id)
        .compliance_type(ComplianceType::from(e.compliance.as_str()))
        .annotation(&e.annotation)
        .ordering_timestamp(to_smithy(e.ordering_timestamp))
        .build()
        .map_err(|err| Error::Build {
            what: format!("the evaluation of {}", e.resource_id),
            source: Box::new(err),
        })
}

/// Reads a rule's results of the given types (100 a page, every page). `Ok(None)` when the rule
/// does not exist in this account and region.
pub async fn compliance_results(
    client: &aws_sdk_config::Client,
    rule: &str,
    types: &[Compliance],
) -> Result<Option<Vec<ComplianceResult>>> {
    let mut out = Vec::new();
    let mut pages = client
        .get_compliance_details_by_config_rule()
        .config_rule_name(rule)
        .set_compliance_types(Some(
            types
                .iter()
                .map(|t| ComplianceType::from(t.as_str()))
                .collect(),
        ))
        .limit(100)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(GetComplianceDetailsByConfigRuleError::NoSuchConfigRuleException(_))
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(Error::sdk("GetComplianceDetailsByConfigRule", e)),
        };
        for r in page.evaluation_results() {
            let q = r
                .evaluation_result_identifier()
                .and_then(|i| i.evaluation_result_qualifier());
            out.push(ComplianceResult {
                resource_type: q
                    .and_then(|q| q.resource_type())
                    .unwrap_or_default()
                    .to_string(),
                resource_id: q
                    .and_then(|q| q.resource_id())
                    .unwrap_or_default()
                    .to_string(),
                compliance: r
                    .compliance_type()
                    .and_then(|c| Compliance::parse(c.as_str())),
                annotation: r.annotation().map(str::to_string),
                ordering: r
                    .evaluation_result_identifier()
                    .and_then(|i| i.ordering_timestamp())
                    .map(to_chrono),
                recorded: r.result_recorded_time().map(to_chrono),
            });
        }
    }
    Ok(Some(out))
}

/// One account's results of `rule` through the aggregator `aggregator`
/// (`GetAggregateComplianceDetailsByConfigRule`, 100 a page, every page). AWS requires the
/// account and Region of the results.
pub async fn aggregate_results(
    client: &aws_sdk_config::Client,
    aggregator: &str,
    rule: &str,
    account: &str,
    region: &str,
) -> Result<Vec<ComplianceResult>> {
    let mut pages = client
        .get_aggregate_compliance_details_by_config_rule()
        .configuration_aggregator_name(aggregator)
        .config_rule_name(rule)
        .account_id(account)
        .aws_region(region)
        .limit(100)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::sdk("GetAggregateComplianceDetailsByConfigRule", e))?;
        for r in page.aggregate_evaluation_results() {
            let q = r
                .evaluation_result_identifier()
                .and_then(|i| i.evaluation_result_qualifier());
            out.push(ComplianceResult {
                resource_type: q
                    .and_then(|q| q.resource_type())
                    .unwrap_or_default()
                    .to_string(),
                resource_id: q
                    .and_then(|q| q.resource_id())
                    .unwrap_or_default()
                    .to_string(),
                compliance: r
                    .compliance_type()
                    .and_then(|c| Compliance::parse(c.as_str())),
                annotation: r.annotation().map(str::to_string),
                ordering: r
                    .evaluation_result_identifier()
                    .and_then(|i| i.ordering_timestamp())
                    .map(to_chrono),
                recorded: r.result_recorded_time().map(to_chrono),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_config::operation::put_evaluations::PutEvaluationsOutput;
    use aws_sdk_config::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn evals(n: usize) -> Vec<Evaluation> {
        (0..n)
            .map(|i| Evaluation {
                resource_type: IAM_USER.into(),
                resource_id: format!("AIDA{i:06}"),
                compliance: Compliance::Compliant,
                annotation: "ok".into(),
                ordering_timestamp: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            })
            .collect()
    }

    #[tokio::test]
    async fn batches_of_100_and_failed_evaluations_are_retried() {
        // 250 evaluations: 3 calls, plus one retry of two evaluations Config failed in the first.
        let first = mock!(Client::put_evaluations)
            .match_requests(|r| {
                r.evaluations().len() == 100
                    && r.evaluations()[0].compliance_resource_id() == "AIDA000000"
            })
            .then_output(|| {
                let failed = evals(2)
                    .iter()
                    .map(|e| to_sdk(e).unwrap())
                    .collect::<Vec<_>>();
                PutEvaluationsOutput::builder()
                    .set_failed_evaluations(Some(failed))
                    .build()
            });
        let others = mock!(Client::put_evaluations)
            .match_requests(|r| r.evaluations().len() <= 100)
            .then_output(|| PutEvaluationsOutput::builder().build());
        let client = mock_client!(aws_sdk_config, RuleMode::MatchAny, [&first, &others]);
        let out = put_evaluations(&client, "token", &evals(250), false)
            .await
            .unwrap();
        assert_eq!(out.accepted, 250);
        assert_eq!(out.calls, 4);
        assert!(out.failed.is_empty());
    }

    #[tokio::test]
    async fn evaluations_failing_every_time_are_reported() {
        let always = mock!(Client::put_evaluations).then_compute_output(|r| {
            PutEvaluationsOutput::builder()
                .set_failed_evaluations(Some(r.evaluations().to_vec()))
                .build()
        });
        let client = mock_client!(aws_sdk_config, RuleMode::MatchAny, [&always]);
        let out = put_evaluations(&client, "token", &evals(3), false)
            .await
            .unwrap();
        assert_eq!(out.failed, ["AIDA000000", "AIDA000001", "AIDA000002"]);
        assert_eq!(out.calls, 1 + FAILED_RETRIES as usize);
    }
}
