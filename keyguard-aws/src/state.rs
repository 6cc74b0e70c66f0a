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
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use crate::{Error, Result};

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

    /// Puts `body` at `(pk, sk)` unless an item is there (a conditional write). `false` when one
    /// was: somebody else wrote it first.
    pub async fn put_new(
        &self,
        pk: &str,
        sk: &str,
        body: &str,
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
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::sdk("PutItem", e)),
        }
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
        match res {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::sdk("PutItem", e)),
        }
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
        match res {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(aws_sdk_dynamodb::operation::delete_item::DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::sdk("DeleteItem", e)),
        }
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
    /// and the counters at zero when missing) and returns every counter's new value.
    pub async fn add(
        &self,
        pk: &str,
        sk: &str,
        counters: &[(&str, i64)],
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
        let out = update
            .update_expression(format!("ADD {}", parts.join(", ")))
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
        match res {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::sdk("UpdateItem", e)),
        }
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
