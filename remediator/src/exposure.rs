//! The exposed-key response: AWS Health says keys of an account are exposed or compromised
//! ([`crate::exposure_event`]). For each key a user of that account holds (confirmed with
//! ListAccessKeys), what `EXPOSED_KEY_RESPONSE` says, at once and under the user's lease: the
//! leaked-key path (`rotate-and-disable`: a successor readable only by `SECRET_READERS`, never the
//! user, and the key disabled without the installation grace; `disable`: the key disabled only),
//! or `notify` (the owner and the admin told what keyguard would do, nothing written). The
//! responses that write do so even while `DryRun` is on: AWS has already quarantined the key, so
//! its pipeline is broken whatever keyguard does, and a working successor is the fastest way
//! back (docs/security.md). Each (event, key) is answered once: a repeated delivery or an update
//! of the event (Health sends updates under the same ARN) finds its record in the state table.

use chrono::Duration;
use keyguard_aws::inventory::key_holder;
use keyguard_aws::sdk::for_account;
use keyguard_core::mask_key_id;
use tracing::{info, warn};

use crate::account::{named_account, AccountJob, Invocation, Limits, Selection};
use crate::error::Result;
use crate::exposure_event::ExposedKeyResponse;
use crate::exposure_event::Exposure;
use crate::function::Remediator;
use crate::requests::{Forced, Mode};
use crate::summary::{AccountReport, Outcome, Summary};
use crate::sweep::run_account_until;

/// How long an answered (event, key) is remembered: longer than Health keeps updating an event.
const ANSWERED_DAYS: i64 = 90;

/// Answers one Health event: the response for each of its keys.
pub(crate) async fn exposed(r: &Remediator, e: Exposure, inv: &Invocation) -> Result<Summary> {
    let now = inv.now;
    let response = r.exposed_response;
    let writes = response != ExposedKeyResponse::Notify;
    let mut summary = Summary {
        dry_run: !writes,
        at: now,
        accounts: vec![],
        notes: vec![],
    };
    if !r.filter.admits(&e.account) {
        summary
            .notes
            .push(format!("account {} is excluded: nothing done", e.account));
        return Ok(summary);
    }
    // The response acts whatever DryRun says (see the module's doc); `notify` never writes.
    let mut acting = r.clone();
    if writes {
        acting.settings.dry_run = false;
    }
    let cfg = for_account(&r.sdk, &r.caller, &e.account, &r.role).await?;
    let iam = aws_sdk_iam::Client::new(&cfg);
    let account = named_account(r, e.account.clone()).await;
    let pk = format!("exposed#{}", e.account);
    for key in &e.keys {
        let shown = mask_key_id(key);
        let sk = format!("{}#{key}", e.event_arn);
        if let Some(table) = &r.state {
            if table.get(&pk, &sk).await?.is_some() {
                info!(key = %shown, "answered already: a repeated delivery or an update");
                summary.notes.push(format!(
                    "{shown} ({}): answered already (a repeated delivery or an update of the event)",
                    e.code
                ));
                continue;
            }
        }
        let report = match key_holder(&iam, key).await? {
            None => {
                warn!(key = %shown, "no user of the account holds the key");
                AccountReport {
                    account: e.account.clone(),
                    notes: vec![format!(
                        "AWS Health {} names {shown}, which no user of this account holds \
                         (deleted already, or another account's key): nothing to do",
                        e.code
                    )],
                    ..AccountReport::default()
                }
            }
            Some(user) => {
                let job = AccountJob {
                    account: account.clone(),
                    selection: Selection::Name(user),
                    forced: Forced::Leaked {
                        key: Some(key.clone()),
                        // `notify` tells what the default response would do.
                        rotate: response != ExposedKeyResponse::Disable,
                        because: Some(format!("AWS Health {}: {}", e.code, e.description)),
                    },
                    mode: if writes { Mode::Enforce } else { Mode::Preview },
                    now,
                    limits: Limits {
                        deadline: inv.deadline,
                        after: None,
                    },
                };
                run_account_until(&acting, &job).await
            }
        };
        let mut report = report;
        let failed =
            report.error.is_some() || report.actions.iter().any(|a| a.outcome == Outcome::Failed);
        // Another run holds the user (a backup Region's delivery of the same event, a member's
        // request): not answered yet. The invocation fails so that EventBridge delivers it
        // again (the run holding the user may itself fail).
        let busy = report.actions.iter().any(|a| a.outcome == Outcome::Skipped);
        if !failed && busy {
            report.error = Some(format!(
                "{shown}: another keyguard run holds its user; the event is to be delivered again"
            ));
            report.error_type = Some("Busy");
        }
        // Remembered once answered; a failure is left for EventBridge's retry (and a delivery
        // racing this one finds the key Inactive under the lease, so it does nothing twice).
        if let (Some(table), false) = (&r.state, failed || busy) {
            table
                .put_new(&pk, &sk, &e.code, &[], now + Duration::days(ANSWERED_DAYS))
                .await?;
        }
        summary.accounts.push(report);
    }
    Ok(summary)
}
