//! S3: the org trail's log files, reports and their `summary.json` (list, get, put). Every call
//! names the account that must own the bucket when it is known ([`Bucket::owner`], S3's
//! `ExpectedBucketOwner`): a bucket of the same name in another account (taken over, or a
//! typo) is refused with 403 rather than read from or written to.

use aws_config::SdkConfig;

use crate::error::{Error, Result};

/// A client for S3 from `cfg`: path-style addressing when an endpoint is overridden (emulators,
/// VPC endpoints), virtual-hosted otherwise.
pub fn client(cfg: &SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(cfg)
        .force_path_style(cfg.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Splits `s3://bucket/prefix` (or `bucket/prefix`) into the bucket and the prefix without
/// slashes at its ends.
pub fn split_uri(uri: &str) -> (String, String) {
    let uri = uri.trim_start_matches("s3://");
    match uri.split_once('/') {
        Some((b, p)) => (b.to_string(), p.trim_end_matches('/').to_string()),
        None => (uri.to_string(), String::new()),
    }
}

/// A bucket, and the account that must own it (`None`: not checked).
#[derive(Debug, Clone, Copy)]
pub struct Bucket<'a> {
    /// The bucket's name.
    pub name: &'a str,
    /// Its expected owner (`ExpectedBucketOwner` on every call).
    pub owner: Option<&'a str>,
}

impl<'a> Bucket<'a> {
    /// `name`, owned by `owner`.
    pub fn new(name: &'a str, owner: Option<&'a str>) -> Self {
        Bucket { name, owner }
    }
}

/// Every key under `prefix` (ListObjectsV2, every page).
pub async fn list_keys(
    s3: &aws_sdk_s3::Client,
    bucket: Bucket<'_>,
    prefix: &str,
) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket.name)
        .set_expected_bucket_owner(bucket.owner.map(str::to_string))
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::sdk("ListObjectsV2", e))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_string),
        );
    }
    Ok(keys)
}

/// The "folders" right under `prefix` (ListObjectsV2 with the delimiter `/`, every page): the
/// Regions of a trail's account folder, say.
pub async fn list_prefixes(
    s3: &aws_sdk_s3::Client,
    bucket: Bucket<'_>,
    prefix: &str,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket.name)
        .set_expected_bucket_owner(bucket.owner.map(str::to_string))
        .prefix(prefix)
        .delimiter("/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::sdk("ListObjectsV2", e))?;
        out.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix())
                .map(str::to_string),
        );
    }
    Ok(out)
}

/// The whole object (GetObject).
pub async fn get(s3: &aws_sdk_s3::Client, bucket: Bucket<'_>, key: &str) -> Result<Vec<u8>> {
    let out = s3
        .get_object()
        .bucket(bucket.name)
        .set_expected_bucket_owner(bucket.owner.map(str::to_string))
        .key(key)
        .send()
        .await
        .map_err(|e| Error::sdk("GetObject", e))?;
    let body = out.body.collect().await.map_err(|e| Error::Api {
        operation: "GetObject",
        code: None,
        message: format!("reading the body of s3://{}/{key}: {e}", bucket.name),
        source: Some(Box::new(e)),
    })?;
    Ok(body.into_bytes().to_vec())
}

/// PutObject of the file at `path` with `content_type`, streamed from the disk (one request: S3
/// takes up to 5 GB in a single PutObject).
pub async fn put_file(
    s3: &aws_sdk_s3::Client,
    bucket: Bucket<'_>,
    key: &str,
    content_type: &str,
    path: &std::path::Path,
) -> Result<()> {
    let body = aws_sdk_s3::primitives::ByteStream::from_path(path)
        .await
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    put_body(s3, bucket, key, content_type, body).await
}

/// PutObject of `bytes` with `content_type`.
pub async fn put(
    s3: &aws_sdk_s3::Client,
    bucket: Bucket<'_>,
    key: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Result<()> {
    put_body(s3, bucket, key, content_type, bytes.into()).await
}

async fn put_body(
    s3: &aws_sdk_s3::Client,
    bucket: Bucket<'_>,
    key: &str,
    content_type: &str,
    body: aws_sdk_s3::primitives::ByteStream,
) -> Result<()> {
    s3.put_object()
        .bucket(bucket.name)
        .set_expected_bucket_owner(bucket.owner.map(str::to_string))
        .key(key)
        .content_type(content_type)
        .body(body)
        .send()
        .await
        .map_err(|e| Error::sdk("PutObject", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_split_into_bucket_and_prefix() {
        assert_eq!(
            split_uri("s3://b/AWSLogs/o-1/"),
            ("b".into(), "AWSLogs/o-1".into())
        );
        assert_eq!(split_uri("b"), ("b".into(), String::new()));
    }
}
