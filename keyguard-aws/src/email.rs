//! SESv2: every email keyguard sends (owner notices, the admin digest, the auditors' report)
//! goes out through one of these two calls.

use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, RawMessage};

use crate::error::{Error, Result};

/// SendEmail with an HTML and a text part.
pub async fn send(
    ses: &aws_sdk_sesv2::Client,
    from: &str,
    to: &[String],
    subject: &str,
    html: &str,
    text: &str,
) -> Result<()> {
    let content = |s: &str| {
        Content::builder()
            .data(s)
            .charset("UTF-8")
            .build()
            .map_err(|e| Error::Build {
                what: "the email content".into(),
                source: Box::new(e),
            })
    };
    let message = Message::builder()
        .subject(content(subject)?)
        .body(
            Body::builder()
                .html(content(html)?)
                .text(content(text)?)
                .build(),
        )
        .build();
    ses.send_email()
        .from_email_address(from)
        .destination(
            Destination::builder()
                .set_to_addresses(Some(to.to_vec()))
                .build(),
        )
        .content(EmailContent::builder().simple(message).build())
        .send()
        .await
        .map_err(|e| Error::sdk("SendEmail", e))?;
    Ok(())
}

/// SendEmail of a complete MIME message (attachments), to `to`.
pub async fn send_raw(
    ses: &aws_sdk_sesv2::Client,
    from: &str,
    to: &[String],
    mime: Vec<u8>,
) -> Result<()> {
    let raw = RawMessage::builder()
        .data(Blob::new(mime))
        .build()
        .map_err(|e| Error::Build {
            what: "the raw email".into(),
            source: Box::new(e),
        })?;
    ses.send_email()
        .from_email_address(from)
        .destination(
            Destination::builder()
                .set_to_addresses(Some(to.to_vec()))
                .build(),
        )
        .content(EmailContent::builder().raw(raw).build())
        .send()
        .await
        .map_err(|e| Error::sdk("SendEmail", e))?;
    Ok(())
}
