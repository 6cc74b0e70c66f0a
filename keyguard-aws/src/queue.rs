//! SQS: keyguard hands out work (one message per account of a run, and the run's follow-ups)
//! with `SendMessageBatch`, ten messages a call, a bounded number of calls in flight. Lambda's
//! event source mapping receives and deletes; keyguard never polls.

use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};

/// True when `event` is an SQS batch (from Lambda's event source mapping).
pub fn is_sqs_event(event: &serde_json::Value) -> bool {
    event
        .get("Records")
        .and_then(serde_json::Value::as_array)
        .and_then(|r| r.first())
        .and_then(|r| r.get("eventSource"))
        .and_then(serde_json::Value::as_str)
        == Some("aws:sqs")
}

/// One message of an SQS batch, as Lambda's event source mapping delivers it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The message's id (what `batchItemFailures` names).
    pub id: String,
    /// How many times SQS has delivered it (`ApproximateReceiveCount`, 1 the first time).
    pub receives: u32,
    /// The message's body.
    pub body: String,
}

/// The messages of an SQS batch event.
pub fn deliveries(event: aws_lambda_events::event::sqs::SqsEvent) -> Vec<Delivery> {
    event
        .records
        .into_iter()
        .map(|record| Delivery {
            id: record.message_id.clone().unwrap_or_default(),
            receives: record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1),
            body: record.body.unwrap_or_default(),
        })
        .collect()
}

/// `SendMessageBatch` calls in flight at once.
pub const SEND_CONCURRENCY: usize = 16;

/// Sends every body to `queue_url`, ten per `SendMessageBatch`, [`SEND_CONCURRENCY`] calls at a
/// time. Entries SQS refuses are sent once more in the next call; an entry refused twice is an
/// error naming SQS's reason. Returns the calls made.
pub async fn send_all(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    bodies: &[String],
) -> Result<usize> {
    // Owned chunks, so that the future is Send for any caller (a spawned dispatcher included).
    let chunks: Vec<Vec<String>> = bodies.chunks(10).map(<[String]>::to_vec).collect();
    let calls: Vec<usize> = futures::stream::iter(chunks)
        .map(|chunk| async move { send_batch(client, queue_url, &chunk).await })
        .buffer_unordered(SEND_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(calls.into_iter().sum())
}

async fn send_batch(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    chunk: &[String],
) -> Result<usize> {
    use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
    let mut pending: Vec<(usize, &String)> = chunk.iter().enumerate().collect();
    let mut calls = 0;
    for attempt in 0..2 {
        let entries = pending
            .iter()
            .map(|(i, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body.as_str())
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        calls += 1;
        let out = client
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| Error::sdk("SendMessageBatch", e))?;
        if out.failed().is_empty() {
            return Ok(calls);
        }
        if attempt == 1 {
            let f = &out.failed()[0];
            return Err(Error::Api {
                operation: "SendMessageBatch",
                code: Some(f.code().to_string()),
                message: format!(
                    "{} of {} messages refused twice: {}",
                    out.failed().len(),
                    pending.len(),
                    f.message().unwrap_or_default()
                ),
                source: None,
            });
        }
        let failed: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
        pending.retain(|(i, _)| failed.contains(&i.to_string().as_str()));
    }
    Ok(calls)
}

/// Sends one message, visible after `delay_seconds` (0–900).
pub async fn send(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    body: &str,
    delay_seconds: i32,
) -> Result<()> {
    client
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .delay_seconds(delay_seconds.clamp(0, 900))
        .send()
        .await
        .map_err(|e| Error::sdk("SendMessage", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
    use aws_sdk_sqs::types::{BatchResultErrorEntry, SendMessageBatchResultEntry};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn ok(id: &str) -> SendMessageBatchResultEntry {
        SendMessageBatchResultEntry::builder()
            .id(id)
            .message_id("m")
            .md5_of_message_body("x")
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn ten_a_call_and_refused_entries_are_sent_again() {
        let bodies: Vec<String> = (0..25).map(|i| format!("{{\"n\":{i}}}")).collect();
        // Every call of ten succeeds except that the first call of the first chunk refuses one.
        let refuse_once = mock!(aws_sdk_sqs::Client::send_message_batch)
            .match_requests(|r| {
                r.entries().len() == 10 && r.entries()[0].message_body() == "{\"n\":0}"
            })
            .then_output(|| {
                SendMessageBatchOutput::builder()
                    .successful(ok("0"))
                    .failed(
                        BatchResultErrorEntry::builder()
                            .id("3")
                            .sender_fault(false)
                            .code("InternalError")
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap()
            });
        let rest = mock!(aws_sdk_sqs::Client::send_message_batch)
            .match_requests(|r| r.entries().len() <= 10)
            .then_output(|| {
                SendMessageBatchOutput::builder()
                    .set_successful(Some(vec![]))
                    .set_failed(Some(vec![]))
                    .build()
                    .unwrap()
            });
        let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&refuse_once, &rest]);
        let calls = send_all(&client, "https://sqs/q", &bodies).await.unwrap();
        // 3 chunks, plus the retry of the refused entry.
        assert_eq!(calls, 4);
        assert_eq!(refuse_once.num_calls() + rest.num_calls(), 4);
    }
}
