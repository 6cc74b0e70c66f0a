//! The central state table (DynamoDB), in the central account: keyguard's own records, which only
//! keyguard's roles can write (run progress, notice pieces, previews sent; leases and the
//! records that decide a disable or a delete). Every DynamoDB call keyguard makes is here.
//!
//! The table has a string partition key `pk`, a string sort key `sk`, and a numeric TTL attribute
//! [`TTL_ATTRIBUTE`]. DynamoDB deletes expired items only eventually ("typically within a few
//! days"), so every read that cares compares the expiry itself. What the keys mean is the
//! callers' business (the remediator's `runs` module); this module only stores JSON bodies and
//! counters under them.

use std::collections::{BTreeMap, HashMap};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValue, TransactWriteItem,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// Attempts of a guarded write that meets a conflicting transaction.
const CONFLICT_ATTEMPTS: u64 = 3;

/// The TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires";
const BODY: &str = "body";

/// One stored item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The sort key.
    pub sk: String,
    /// The JSON body, when the item has one.
    pub body: Option<String>,
    /// Its numeric attributes (counters, the expiry).
    pub numbers: BTreeMap<String, i64>,
}

impl Item {
    /// When the item expires, if it has an expiry.
    pub fn expires(&self) -> Option<DateTime<Utc>> {
        self.numbers
            .get(TTL_ATTRIBUTE)
            .and_then(|s| DateTime::from_timestamp(*s, 0))
    }
}

/// The item that must still be held for a guarded write (a lease): where it is, and the body its
/// holder wrote there.
#[derive(Debug, Clone, Copy)]
pub struct Guard<'a> {
    /// Its partition key.
    pub pk: &'a str,
    /// Its sort key.
    pub sk: &'a str,
    /// The holder's body.
    pub holder: &'a str,
}

/// The table, through one client.
#[derive(Debug, Clone)]
pub struct StateTable {
    client: aws_sdk_dynamodb::Client,
    name: String,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A conditional write's outcome: `true` when it was made, `false` when its condition did not
/// hold (`refused` tells the operation's ConditionalCheckFailedException), an error otherwise.
fn conditional<O, E, R>(
    operation: &'static str,
    res: std::result::Result<O, SdkError<E, R>>,
    refused: impl Fn(&E) -> bool,
) -> Result<bool>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match res {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(&refused) => Ok(false),
        Err(e) => Err(Error::sdk(operation, e)),
    }
}

fn item_of(raw: &HashMap<String, AttributeValue>) -> Item {
    let mut numbers = BTreeMap::new();
    for (k, v) in raw {
        if let AttributeValue::N(x) = v {
            if let Ok(x) = x.parse() {
                numbers.insert(k.clone(), x);
            }
        }
    }
    Item {
        sk: match raw.get("sk") {
            Some(AttributeValue::S(x)) => x.clone(),
            _ => String::new(),
        },
        body: match raw.get(BODY) {
            Some(AttributeValue::S(x)) => Some(x.clone()),
            _ => None,
        },
        numbers,
    }
}

impl StateTable {
    /// The table `name` with `cfg`'s credentials (the central account's).
    pub fn new(cfg: &SdkConfig, name: impl Into<String>) -> Self {
        StateTable {
            client: aws_sdk_dynamodb::Client::new(cfg),
            name: name.into(),
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn key(&self, pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
    }

    /// Puts `body` (and the numeric attributes `numbers`) at `(pk, sk)` unless an item is there (a
    /// conditional write). `false` when one was: somebody else wrote it first.
    pub async fn put_new(
        &self,
        pk: &str,
        sk: &str,
        body: &str,
        numbers: &[(&str, i64)],
        expires: DateTime<Utc>,
    ) -> Result<bool> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.name)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item(BODY, s(body))
            .item(TTL_ATTRIBUTE, n(expires.timestamp()));
        for (k, v) in numbers {
            put = put.item(*k, n(*v));
        }
        let res = put
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional("PutItem", res, |e| {
            matches!(e, PutItemError::ConditionalCheckFailedException(_))
        })
    }

    /// Puts `body` at `(pk, sk)`, replacing what was there.
    pub async fn put(&self, pk: &str, sk: &str, body: &str, expires: DateTime<Utc>) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.name)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item(BODY, s(body))
            .item(TTL_ATTRIBUTE, n(expires.timestamp()))
            .send()
            .await
            .map_err(|e| Error::sdk("PutItem", e))?;
        Ok(())
    }

    /// Puts `body` at `(pk, sk)` when no item is there or the one there expired before `now`
    /// (a lease: taken, or taken over once it lapsed). `false` while another holds it.
    pub async fn put_unless_live(
        &self,
        pk: &str,
        sk: &str,
        body: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<bool> {
        let res = self
            .client
            .put_item()
            .table_name(&self.name)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item(BODY, s(body))
            .item(TTL_ATTRIBUTE, n(expires.timestamp()))
            .condition_expression("attribute_not_exists(pk) OR #exp < :now")
            .expression_attribute_names("#exp", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        conditional("PutItem", res, |e| {
            matches!(e, PutItemError::ConditionalCheckFailedException(_))
        })
    }

    /// Puts `body` at `(pk, sk)`, replacing what was there, only while `guard` is held: its item
    /// still has the holder's body and has not expired before `now`. One TransactWriteItems (a
    /// ConditionCheck on the guard and the Put, all or nothing; IAM authorizes it as
    /// `dynamodb:ConditionCheckItem` and `dynamodb:PutItem`, docs.aws.amazon.com/amazondynamodb/
    /// latest/developerguide/transaction-apis-iam.html). `false` when the guard no longer holds:
    /// a writer whose lease was taken over (or lapsed) cannot overwrite what the new holder wrote,
    /// whatever the clocks say.
    pub async fn put_guarded(
        &self,
        pk: &str,
        sk: &str,
        body: &str,
        expires: DateTime<Utc>,
        guard: &Guard<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let check = ConditionCheck::builder()
            .table_name(&self.name)
            .set_key(Some(self.key(guard.pk, guard.sk)))
            .condition_expression("#b = :holder AND #exp >= :now")
            .expression_attribute_names("#b", BODY)
            .expression_attribute_names("#exp", TTL_ATTRIBUTE)
            .expression_attribute_values(":holder", s(guard.holder))
            .expression_attribute_values(":now", n(now.timestamp()))
            .build()
            .expect("the table, key and condition are set");
        let put = Put::builder()
            .table_name(&self.name)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item(BODY, s(body))
            .item(TTL_ATTRIBUTE, n(expires.timestamp()))
            .build()
            .expect("the table and item are set");
        let reason = |e: &TransactWriteItemsError, code: &str| match e {
            TransactWriteItemsError::TransactionCanceledException(c) => c
                .cancellation_reasons()
                .iter()
                .any(|r| r.code() == Some(code)),
            _ => false,
        };
        // A TransactionConflict (another write to the lease item in flight, such as a takeover)
        // is retried a few times, the SDK does not; after that it is an error.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let res = self
                .client
                .transact_write_items()
                .transact_items(
                    TransactWriteItem::builder()
                        .condition_check(check.clone())
                        .build(),
                )
                .transact_items(TransactWriteItem::builder().put(put.clone()).build())
                .send()
                .await;
            let conflict = res
                .as_ref()
                .err()
                .and_then(|e| e.as_service_error())
                .is_some_and(|e| {
                    reason(e, "TransactionConflict") && !reason(e, "ConditionalCheckFailed")
                });
            if conflict && attempt < CONFLICT_ATTEMPTS {
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                continue;
            }
            // Only the guard carries a condition: a cancellation for ConditionalCheckFailed is
            // the guard's.
            return conditional("TransactWriteItems", res, |e| {
                reason(e, "ConditionalCheckFailed")
            });
        }
    }

    /// True when `(pk, sk)` still has `body` and has not expired before `now`: a conditional
    /// UpdateItem that rewrites the body unchanged (a lease confirmed by its holder, strongly
    /// consistent because it is a write).
    pub async fn still_held(
        &self,
        pk: &str,
        sk: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let res = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(self.key(pk, sk)))
            .update_expression("SET #b = :b")
            .condition_expression("#b = :b AND #exp >= :now")
            .expression_attribute_names("#b", BODY)
            .expression_attribute_names("#exp", TTL_ATTRIBUTE)
            .expression_attribute_values(":b", s(body))
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        conditional("UpdateItem", res, |e| {
            matches!(e, UpdateItemError::ConditionalCheckFailedException(_))
        })
    }

    /// Deletes `(pk, sk)` when its body is still `body` (releasing what one wrote, never what
    /// another wrote since). `false` when it was not.
    pub async fn delete_if(&self, pk: &str, sk: &str, body: &str) -> Result<bool> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(self.key(pk, sk)))
            .condition_expression("#b = :b")
            .expression_attribute_names("#b", BODY)
            .expression_attribute_values(":b", s(body))
            .send()
            .await;
        conditional("DeleteItem", res, |e| {
            matches!(e, DeleteItemError::ConditionalCheckFailedException(_))
        })
    }

    /// The item at `(pk, sk)` (a strongly consistent read).
    pub async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(self.key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::sdk("GetItem", e))?;
        Ok(out.item().map(item_of))
    }

    /// Adds each `(counter, by)` to the item at `(pk, sk)` in one atomic update (creating the item
    /// and the counters at zero when missing), sets its expiry when `expires` is given, and
    /// returns every counter's new value.
    pub async fn add(
        &self,
        pk: &str,
        sk: &str,
        counters: &[(&str, i64)],
        expires: Option<DateTime<Utc>>,
    ) -> Result<BTreeMap<String, i64>> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(self.key(pk, sk)))
            .return_values(ReturnValue::AllNew);
        let mut parts = Vec::new();
        for (i, (name, by)) in counters.iter().enumerate() {
            parts.push(format!("#c{i} :v{i}"));
            update = update
                .expression_attribute_names(format!("#c{i}"), *name)
                .expression_attribute_values(format!(":v{i}"), n(*by));
        }
        let mut expression = format!("ADD {}", parts.join(", "));
        if let Some(at) = expires {
            expression.push_str(" SET #ttl = :ttl");
            update = update
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":ttl", n(at.timestamp()));
        }
        let out = update
            .update_expression(expression)
            .send()
            .await
            .map_err(|e| Error::sdk("UpdateItem", e))?;
        Ok(out
            .attributes()
            .map(item_of)
            .unwrap_or(Item {
                sk: sk.into(),
                body: None,
                numbers: BTreeMap::new(),
            })
            .numbers)
    }

    /// Sets each of `numbers` at `(pk, sk)` unless the item has it already (the first value
    /// stays), and the item's expiry, in one UpdateItem.
    pub async fn set_numbers_once(
        &self,
        pk: &str,
        sk: &str,
        numbers: &[(&str, i64)],
        expires: DateTime<Utc>,
    ) -> Result<()> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(self.key(pk, sk)))
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":ttl", n(expires.timestamp()));
        let mut parts = vec!["#ttl = :ttl".to_string()];
        for (i, (name, value)) in numbers.iter().enumerate() {
            parts.push(format!("#n{i} = if_not_exists(#n{i}, :n{i})"));
            update = update
                .expression_attribute_names(format!("#n{i}"), *name)
                .expression_attribute_values(format!(":n{i}"), n(*value));
        }
        update
            .update_expression(format!("SET {}", parts.join(", ")))
            .send()
            .await
            .map_err(|e| Error::sdk("UpdateItem", e))?;
        Ok(())
    }

    /// Sets the numeric attribute `name` of `(pk, sk)` to `value` and returns every numeric
    /// attribute after the write (one UpdateItem).
    pub async fn set_number(
        &self,
        pk: &str,
        sk: &str,
        name: &str,
        value: i64,
    ) -> Result<BTreeMap<String, i64>> {
        let out = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(self.key(pk, sk)))
            .update_expression("SET #n = :v")
            .expression_attribute_names("#n", name)
            .expression_attribute_values(":v", n(value))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| Error::sdk("UpdateItem", e))?;
        Ok(out
            .attributes()
            .map(item_of)
            .map(|i| i.numbers)
            .unwrap_or_default())
    }

    /// Sets the numeric attribute `flag` to 1 on `(pk, sk)` unless it is set already: `true` for
    /// the one caller that set it (a claim that happens once, such as finalizing a run).
    pub async fn claim(&self, pk: &str, sk: &str, flag: &str) -> Result<bool> {
        let res = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(self.key(pk, sk)))
            .update_expression("SET #f = :one")
            .condition_expression("attribute_not_exists(#f)")
            .expression_attribute_names("#f", flag)
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        conditional("UpdateItem", res, |e| {
            matches!(e, UpdateItemError::ConditionalCheckFailedException(_))
        })
    }

    /// Every item under `pk` whose sort key starts with `prefix` (Query, every page, strongly
    /// consistent), in sort-key order.
    pub async fn query(&self, pk: &str, prefix: &str) -> Result<Vec<Item>> {
        let mut query = self
            .client
            .query()
            .table_name(&self.name)
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true);
        // DynamoDB refuses an empty string in a key condition: no prefix is no sort-key condition.
        query = if prefix.is_empty() {
            query.key_condition_expression("pk = :pk")
        } else {
            query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(prefix))
        };
        let mut pages = query.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Error::sdk("Query", e))?;
            out.extend(page.items().iter().map(item_of));
        }
        Ok(out)
    }
}

/// A run handed out to a work queue, in the state table: its description (JSON), how many
/// accounts it has, how many finished (and failed), and flags set once (finalizing steps).
///
/// | pk | sk | what |
/// | --- | --- | --- |
/// | `runs#<family>` | `<run>` | the index of runs of a family (`sweep`, `report`: the run id up to its first `-`), for the next dispatch's safety net |
/// | `run#<run>` | `#run` | the description; numbers `total`, `done`, `failed`; flags |
/// | `run#<run>` | `acct#<account>` | the account's outcome, written once when it finishes |
///
/// Callers keep their own items under `run#<run>` with other sort-key prefixes.
#[derive(Debug, Clone, Copy)]
pub struct Runs<'a>(pub &'a StateTable);

/// A run as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The description (JSON) given at creation.
    pub meta: String,
    /// Accounts handed out ([`TOTAL_UNKNOWN`] while the dispatch is still going on, or if it
    /// never finished).
    pub total: i64,
    /// Accounts finished (done or failed for good).
    pub done: i64,
    /// Of those, failed.
    pub failed: i64,
    /// Flags set by [`Runs::claim`].
    pub flags: Vec<String>,
}

impl Run {
    /// Whether `flag` was claimed.
    pub fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// How long a run's items are kept.
pub const RUN_DAYS: i64 = 30;

/// A run's `total` while its dispatcher is still handing out accounts: no count of finished
/// accounts reaches it.
pub const TOTAL_UNKNOWN: i64 = i64::MAX;

/// The partition of the index of runs like `run` (`sweep-2026-12-01` → `runs#sweep`): each
/// function's runs in a partition of its own, so that the reporter's role can be limited to its
/// own items (`dynamodb:LeadingKeys`).
pub fn index_of(run: &str) -> String {
    format!("runs#{}", run.split('-').next().unwrap_or(run))
}

impl Runs<'_> {
    /// Records a new run of `total` accounts (`None`: not known yet, see [`Runs::set_total`]);
    /// `false` when a run of that id exists (a schedule delivered twice).
    pub async fn create(
        &self,
        run: &str,
        meta: &str,
        total: Option<usize>,
        started: DateTime<Utc>,
    ) -> Result<bool> {
        let total = total.map_or(TOTAL_UNKNOWN, |t| t as i64);
        let expires = started + chrono::Duration::days(RUN_DAYS);
        if !self
            .0
            .put_new(
                &format!("run#{run}"),
                "#run",
                meta,
                &[("total", total), ("done", 0), ("failed", 0)],
                expires,
            )
            .await?
        {
            return Ok(false);
        }
        self.0
            .put(&index_of(run), run, &started.to_rfc3339(), expires)
            .await?;
        Ok(true)
    }

    /// Sets the number of accounts of a run created without it, once they are all handed out;
    /// `(done, total)` after it (the caller finalizes when every account is in already).
    pub async fn set_total(&self, run: &str, total: usize) -> Result<(i64, i64)> {
        let numbers = self
            .0
            .set_number(&format!("run#{run}"), "#run", "total", total as i64)
            .await?;
        Ok((
            numbers.get("done").copied().unwrap_or(0),
            numbers.get("total").copied().unwrap_or(0),
        ))
    }

    /// The run, `None` when there is no such run.
    pub async fn get(&self, run: &str) -> Result<Option<Run>> {
        let Some(item) = self.0.get(&format!("run#{run}"), "#run").await? else {
            return Ok(None);
        };
        let num = |k: &str| item.numbers.get(k).copied().unwrap_or(0);
        Ok(Some(Run {
            meta: item.body.clone().unwrap_or_default(),
            total: num("total"),
            done: num("done"),
            failed: num("failed"),
            flags: item
                .numbers
                .iter()
                .filter(|(k, v)| {
                    **v == 1 && !["total", "done", "failed", TTL_ATTRIBUTE].contains(&k.as_str())
                })
                .map(|(k, _)| k.clone())
                .collect(),
        }))
    }

    /// Records that `account` finished (`failed`: for good, after its last attempt) with
    /// `outcome` (JSON) and counts it, once: a second report of the same account (a message
    /// delivered twice) counts nothing and returns `None`. Otherwise `(done, total)` after it.
    pub async fn finish_account(
        &self,
        run: &str,
        account: &str,
        outcome: &str,
        failed: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<(i64, i64)>> {
        let pk = format!("run#{run}");
        let first = self
            .0
            .put_new(
                &pk,
                &format!("acct#{account}"),
                outcome,
                &[("failed", i64::from(failed))],
                now + chrono::Duration::days(RUN_DAYS),
            )
            .await?;
        if !first {
            return Ok(None);
        }
        let counters = self
            .0
            .add(
                &pk,
                "#run",
                &[("done", 1), ("failed", i64::from(failed))],
                None,
            )
            .await?;
        Ok(Some((
            counters.get("done").copied().unwrap_or(0),
            counters.get("total").copied().unwrap_or(0),
        )))
    }

    /// The outcomes of the finished accounts: `(account, outcome JSON, failed)`.
    pub async fn accounts(&self, run: &str) -> Result<Vec<(String, String, bool)>> {
        Ok(self
            .0
            .query(&format!("run#{run}"), "acct#")
            .await?
            .into_iter()
            .map(|i| {
                (
                    i.sk.trim_start_matches("acct#").to_string(),
                    i.body.unwrap_or_default(),
                    i.numbers.get("failed").copied().unwrap_or(0) == 1,
                )
            })
            .collect())
    }

    /// Sets `flag` on the run once: `true` for the caller that set it.
    pub async fn claim(&self, run: &str, flag: &str) -> Result<bool> {
        self.0.claim(&format!("run#{run}"), "#run", flag).await
    }

    /// Runs whose id starts with `kind` (`sweep-`, `report-weekly-`…) and sorts before `run` (ids
    /// are dated) that were never finalized.
    pub async fn unfinished_before(&self, kind: &str, run: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for i in self.0.query(&index_of(kind), kind).await? {
            if i.sk.as_str() >= run {
                continue;
            }
            if let Some(r) = self.get(&i.sk).await? {
                if !r.has("finalized") {
                    out.push(i.sk);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn cancelled(codes: &[Option<&str>]) -> TransactWriteItemsError {
        let reasons = codes
            .iter()
            .map(|c| {
                CancellationReason::builder()
                    .set_code(c.map(String::from))
                    .build()
            })
            .collect();
        TransactWriteItemsError::TransactionCanceledException(
            TransactionCanceledException::builder()
                .set_cancellation_reasons(Some(reasons))
                .message("Transaction cancelled")
                .build(),
        )
    }

    async fn guarded_put(codes: &'static [Option<&'static str>]) -> Result<bool> {
        let transact = mock!(Client::transact_write_items)
            .match_requests(|r| {
                let items = r.transact_items();
                items.len() == 2
                    && items[0].condition_check().is_some_and(|c| {
                        c.key().get("pk") == Some(&s("lease#1"))
                            && c.key().get("sk") == Some(&s("u"))
                    })
                    && items[1]
                        .put()
                        .is_some_and(|p| p.item().get("pk") == Some(&s("records#1")))
            })
            .sequence()
            .error(move || cancelled(codes))
            .repeatedly()
            .build();
        put_through(&transact).await
    }

    /// The guarded write of `records#1` under the lease `lease#1` / `u`, answered by `transact`.
    async fn put_through(transact: &aws_smithy_mocks::Rule) -> Result<bool> {
        let table = StateTable {
            client: mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [transact]),
            name: "t".into(),
        };
        let guard = Guard {
            pk: "lease#1",
            sk: "u",
            holder: "kg-1",
        };
        table
            .put_guarded("records#1", "u", "{}", Utc::now(), &guard, Utc::now())
            .await
    }

    #[tokio::test]
    async fn a_guard_that_no_longer_holds_is_a_refusal() {
        let refused = guarded_put(&[Some("ConditionalCheckFailed"), Some("None")]).await;
        assert!(matches!(refused, Ok(false)), "{refused:?}");
    }

    #[tokio::test]
    async fn a_conflict_is_retried_and_the_write_made() {
        let transact = mock!(Client::transact_write_items)
            .sequence()
            .error(|| cancelled(&[Some("TransactionConflict"), Some("None")]))
            .output(|| {
                aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput::builder()
                    .build()
            })
            .build();
        let written = put_through(&transact).await;
        assert!(matches!(written, Ok(true)), "{written:?}");
        assert_eq!(transact.num_calls(), 2);
    }

    #[tokio::test]
    async fn a_conflict_that_persists_is_an_error_not_a_refusal() {
        let conflict = guarded_put(&[Some("TransactionConflict"), Some("None")]).await;
        let err = conflict.unwrap_err().to_string();
        assert!(err.contains("TransactWriteItems"), "{err}");
    }
}
