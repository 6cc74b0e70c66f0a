//! The handler: one Config rule invocation in, one evaluation per IAM user written.

use std::collections::HashSet;

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use keyguard_aws::config::{compliance_results, put_evaluations, Evaluation, IAM_USER};
use keyguard_aws::inventory::{
    evaluate_inventory, read_inventory, read_keys_live, user_by_name, ReportPolling,
};
use keyguard_aws::sdk::{for_account, Caller, RoleSpec};
use keyguard_core::{evaluate, Compliance, Finding, Settings};
use serde::Serialize;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::event::{self, ConfigurationItem, InvokingEvent};
use crate::params::RuleParameters;
pub use aws_lambda_events::event::config::ConfigEvent;

/// Everything the handler needs that does not change between invocations; built once in `main`.
#[derive(Debug, Clone)]
pub struct RuleContext {
    /// The function's own SDK configuration (its region is the rule's region).
    pub sdk: SdkConfig,
    /// Who the function runs as.
    pub caller: Caller,
    /// Settings before `ruleParameters` are applied.
    pub settings: Settings,
    /// The member role for events from other accounts.
    pub role: RoleSpec,
    /// Credential-report polling.
    pub polling: ReportPolling,
}

/// What one invocation wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The account evaluated.
    pub account: String,
    /// The event's message type.
    pub message_type: String,
    /// COMPLIANT evaluations written.
    pub compliant: usize,
    /// NON_COMPLIANT evaluations written.
    pub non_compliant: usize,
    /// NOT_APPLICABLE evaluations written.
    pub not_applicable: usize,
    /// PutEvaluations calls made.
    pub put_calls: usize,
}

/// Handles one invocation payload at `now`: the Config event as JSON, parsed here so that a
/// payload that is not a Config rule event is a [`Error::MalformedEvent`] naming the field.
pub async fn handle_payload(
    ctx: &RuleContext,
    payload: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Summary> {
    let event: ConfigEvent = serde_path_to_error::deserialize(payload)
        .map_err(|e| Error::MalformedEvent(format!("{} (at {})", e.inner(), e.path())))?;
    handle(ctx, event, now).await
}

/// Handles one Config rule invocation at `now`. This is the whole Lambda; `main` only wires it.
pub async fn handle(ctx: &RuleContext, event: ConfigEvent, now: DateTime<Utc>) -> Result<Summary> {
    let token = event
        .result_token
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::MalformedEvent("resultToken is missing".into()))?;
    let raw = event
        .invoking_event
        .as_deref()
        .ok_or_else(|| Error::MalformedEvent("invokingEvent is missing".into()))?;
    let invoking = InvokingEvent::parse(raw)?;
    let settings = RuleParameters::parse(event.rule_parameters.as_deref())?.apply(&ctx.settings)?;
    let account = event
        .account_id
        .clone()
        .or_else(|| invoking.account().map(str::to_string))
        .ok_or_else(|| Error::MalformedEvent("accountId is missing".into()))?;
    let span =
        tracing::info_span!("rule", account = %account, message_type = invoking.message_type());
    async {
        // Everything happens in the rule's account: reads, and PutEvaluations with its token.
        let sdk = for_account(&ctx.sdk, &ctx.caller, &account, &ctx.role).await?;
        let rule = event.config_rule_name.clone().unwrap_or_default();
        let here = InAccount {
            iam: aws_sdk_iam::Client::new(&sdk),
            config: aws_sdk_config::Client::new(&sdk),
            polling: ctx.polling,
            account: &account,
            rule: &rule,
            settings: &settings,
            now,
        };

        let evaluations = match &invoking {
            InvokingEvent::Scheduled {
                notification_creation_time,
                ..
            } => here.scheduled(*notification_creation_time).await?,
            InvokingEvent::Change { configuration_item } => {
                let item = configuration_item;
                vec![here.item_evaluation(item, event.event_left_scope).await?]
            }
            InvokingEvent::Oversized {
                configuration_item_summary,
            } => {
                let summary = configuration_item_summary;
                let item = event::fetch_item(&here.config, summary).await?;
                vec![here.item_evaluation(&item, event.event_left_scope).await?]
            }
        };
        let test_mode = token == "TESTMODE";
        let outcome = put_evaluations(&here.config, &token, &evaluations, test_mode).await?;
        let count = |c: Compliance| evaluations.iter().filter(|e| e.compliance == c).count();
        let summary = Summary {
            account,
            message_type: invoking.message_type().into(),
            compliant: count(Compliance::Compliant),
            non_compliant: count(Compliance::NonCompliant),
            not_applicable: count(Compliance::NotApplicable),
            put_calls: outcome.calls,
        };
        tracing::info!(
            compliant = summary.compliant,
            non_compliant = summary.non_compliant,
            not_applicable = summary.not_applicable,
            "evaluations written"
        );
        if !outcome.failed.is_empty() {
            return Err(Error::EvaluationsFailed(outcome.failed));
        }
        Ok(summary)
    }
    .instrument(span)
    .await
}

fn evaluation(finding: &Finding, ordering: DateTime<Utc>) -> Evaluation {
    Evaluation {
        resource_type: IAM_USER.into(),
        resource_id: finding.user_id.clone(),
        compliance: finding.compliance,
        annotation: finding.annotation.clone(),
        ordering_timestamp: ordering,
    }
}

/// The rule's account in one invocation: its clients, the rule and its settings, and `now`.
struct InAccount<'a> {
    iam: aws_sdk_iam::Client,
    config: aws_sdk_config::Client,
    polling: ReportPolling,
    account: &'a str,
    rule: &'a str,
    settings: &'a Settings,
    now: DateTime<Utc>,
}

impl InAccount<'_> {
    /// Every user of the account, and NOT_APPLICABLE for those Config still holds a verdict for
    /// that no longer exist.
    async fn scheduled(&self, ordering: DateTime<Utc>) -> Result<Vec<Evaluation>> {
        let (iam, config, settings, now) = (&self.iam, &self.config, self.settings, self.now);
        let inventory = read_inventory(iam, self.account, self.polling).await?;
        let evaluated = evaluate_inventory(iam, inventory, settings, now).await?;
        let mut out: Vec<Evaluation> = evaluated
            .iter()
            .map(|e| evaluation(&e.finding, ordering))
            .collect();
        let present: HashSet<&str> = evaluated
            .iter()
            .map(|e| e.finding.user_id.as_str())
            .collect();
        // Users Config still holds a verdict for that no longer exist: a periodic rule must retire
        // them itself.
        let previous = compliance_results(
            config,
            self.rule,
            &[Compliance::Compliant, Compliance::NonCompliant],
        )
        .await?
        .unwrap_or_default();
        let mut gone: Vec<Evaluation> = previous
            .into_iter()
            .filter(|r| r.resource_type == IAM_USER && !present.contains(r.resource_id.as_str()))
            .map(|r| {
                evaluation(
                    &Finding::not_applicable("", &r.resource_id, "The IAM user no longer exists."),
                    ordering,
                )
            })
            .collect();
        out.append(&mut gone);
        Ok(out)
    }

    /// The user of one configuration item.
    async fn item_evaluation(
        &self,
        item: &ConfigurationItem,
        left_scope: bool,
    ) -> Result<Evaluation> {
        let (iam, settings, now) = (&self.iam, self.settings, self.now);
        let ordering = item.capture_time;
        if item.resource_type != IAM_USER {
            let f = Finding::not_applicable(
                "",
                &item.resource_id,
                &format!(
                    "keyguard evaluates {IAM_USER} only, not {}.",
                    item.resource_type
                ),
            );
            return Ok(evaluation(&f, ordering));
        }
        if left_scope || item.is_deleted() {
            let why = if left_scope {
                "The IAM user left the rule's scope."
            } else {
                "The IAM user was deleted."
            };
            return Ok(evaluation(
                &Finding::not_applicable(&item.resource_name, &item.resource_id, why),
                ordering,
            ));
        }
        let user = match item.user()? {
            Some(user) => user,
            // An item without a configuration (oversized, no history): ask IAM.
            None => match user_by_name(iam, &item.resource_name).await? {
                Some(user) => user,
                None => {
                    return Ok(evaluation(
                        &Finding::not_applicable(
                            &item.resource_name,
                            &item.resource_id,
                            "The IAM user was deleted.",
                        ),
                        ordering,
                    ))
                }
            },
        };
        let finding = match read_keys_live(iam, &user.name).await? {
            Some(keys) => evaluate(&user, &keys, settings, now),
            None => Finding::not_applicable(&user.name, &user.user_id, "The IAM user was deleted."),
        };
        Ok(evaluation(&finding, ordering))
    }
}
