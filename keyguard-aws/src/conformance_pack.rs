//! AWS Config's conformance packs: each rule's compliance in keyguard's pack of one account
//! (`DescribeConformancePackCompliance`), or of one account through an aggregator
//! (`DescribeAggregateComplianceByConfigRules`, every rule of the account, whose names are the
//! pack's as Config gave them).

use aws_sdk_config::operation::describe_conformance_pack_compliance::DescribeConformancePackComplianceError;
use aws_sdk_config::types::ConfigRuleComplianceFilters;
use keyguard_core::pack::PackRule;

use crate::error::{Error, Result};

/// keyguard's conformance pack (deploy/member-role.yaml's `AccessKeysPack`).
pub const PACK_NAME: &str = "keyguard-access-keys";

/// The rules of the pack `pack` in this account and Region with Config's verdict on each (every
/// page). `Ok(None)` when the account has no such pack.
pub async fn pack_compliance(
    client: &aws_sdk_config::Client,
    pack: &str,
) -> Result<Option<Vec<PackRule>>> {
    let mut pages = client
        .describe_conformance_pack_compliance()
        .conformance_pack_name(pack)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DescribeConformancePackComplianceError::NoSuchConformancePackException(_))
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(Error::sdk("DescribeConformancePackCompliance", e)),
        };
        out.extend(
            page.conformance_pack_rule_compliance_list()
                .iter()
                .map(|r| PackRule {
                    rule: r.config_rule_name().unwrap_or_default().to_string(),
                    compliance: r
                        .compliance_type()
                        .map_or("INSUFFICIENT_DATA", |c| c.as_str())
                        .to_string(),
                }),
        );
    }
    Ok(Some(out))
}

/// Every rule of `account` in `region` with Config's verdict, through the aggregator (every
/// page): the pack's rules among them by their names.
pub async fn aggregate_rules(
    client: &aws_sdk_config::Client,
    aggregator: &str,
    account: &str,
    region: &str,
) -> Result<Vec<PackRule>> {
    let mut pages = client
        .describe_aggregate_compliance_by_config_rules()
        .configuration_aggregator_name(aggregator)
        .filters(
            ConfigRuleComplianceFilters::builder()
                .account_id(account)
                .aws_region(region)
                .build(),
        )
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::sdk("DescribeAggregateComplianceByConfigRules", e))?;
        out.extend(page.aggregate_compliance_by_config_rules().iter().map(|r| {
            PackRule {
                rule: r.config_rule_name().unwrap_or_default().to_string(),
                compliance: r
                    .compliance()
                    .and_then(|c| c.compliance_type())
                    .map_or("INSUFFICIENT_DATA", |c| c.as_str())
                    .to_string(),
            }
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_config::operation::describe_conformance_pack_compliance::DescribeConformancePackComplianceOutput;
    use aws_sdk_config::types::{ConformancePackComplianceType, ConformancePackRuleCompliance};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    #[tokio::test]
    async fn every_page_of_the_pack_is_read_and_no_pack_is_none() {
        let page = |rule: &str, next: Option<&str>| {
            let rule = rule.to_string();
            let next = next.map(str::to_string);
            mock!(aws_sdk_config::Client::describe_conformance_pack_compliance).then_output(
                move || {
                    DescribeConformancePackComplianceOutput::builder()
                        .conformance_pack_name(PACK_NAME)
                        .conformance_pack_rule_compliance_list(
                            ConformancePackRuleCompliance::builder()
                                .config_rule_name(&rule)
                                .compliance_type(ConformancePackComplianceType::NonCompliant)
                                .build(),
                        )
                        .set_next_token(next.clone())
                        .build()
                        .unwrap()
                },
            )
        };
        let first = page("keyguard-access-keys-conformance-pack-x", Some("t"));
        let second = page("access-keys-rotated-conformance-pack-x", None);
        let client = mock_client!(aws_sdk_config, RuleMode::Sequential, [&first, &second]);
        let rules = pack_compliance(&client, PACK_NAME).await.unwrap().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1].compliance, "NON_COMPLIANT");

        let missing = mock!(aws_sdk_config::Client::describe_conformance_pack_compliance)
            .then_error(|| {
                DescribeConformancePackComplianceError::NoSuchConformancePackException(
                    aws_sdk_config::types::error::NoSuchConformancePackException::builder().build(),
                )
            });
        let client = mock_client!(aws_sdk_config, [&missing]);
        assert_eq!(pack_compliance(&client, PACK_NAME).await.unwrap(), None);
    }
}
