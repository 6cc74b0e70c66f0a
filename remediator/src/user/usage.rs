//! What the owner is told of where each key is used, so they know which pipeline to fix before
//! it goes dark: for every key with a disable, delete, hold or warning in this run, CloudTrail's
//! calls made with it (`LookupEvents`, newest first, one page a Region) and IAM's last use, as
//! "used 3 h ago from 203.0.113.7, aws-cli/2.15 via ec2, 41 calls since …" on its records.

use chrono::Duration;
use keyguard_aws::usage::{key_usage, last_use};
use keyguard_core::mask_key_id;
use keyguard_core::usage::describe;

use crate::user::run::{Ctx, UserRun};

/// Pages of 50 calls read per key and Region: the newest 50 calls are where it is used now.
const PAGES_PER_REGION: usize = 1;
/// How far back CloudTrail is read for a key.
const WINDOW_DAYS: i64 = 7;

impl Ctx<'_> {
    /// Puts on each record of a described key where that key is used. CloudTrail that cannot
    /// be read (no permission, throttled) leaves IAM's last use, and a note.
    pub(super) async fn describe_usage(&self, w: &mut UserRun) {
        if !self.r.key_usage {
            return;
        }
        let keys: Vec<String> = w.described.iter().cloned().collect();
        for key in keys {
            let last = match last_use(&self.iam, &key).await {
                Ok(l) => l,
                Err(e) => {
                    w.notes.push(format!(
                        "{}: last use of {} not read: {e}",
                        w.user.name,
                        mask_key_id(&key)
                    ));
                    continue;
                }
            };
            let window = (self.now - Duration::days(WINDOW_DAYS), self.now);
            let looked = key_usage(
                &self.cfg,
                &key,
                last.region.as_deref(),
                window,
                &self.trail_pace,
                PAGES_PER_REGION,
            )
            .await;
            let text = match looked {
                Ok(found) => {
                    let mut text = describe(found.usage.of(&key), last.at, self.now);
                    if found.truncated {
                        text.push_str(" (the newest calls)");
                    }
                    text
                }
                Err(e) => {
                    w.notes.push(format!(
                        "{}: CloudTrail not read for {} ({e}): IAM's last use only",
                        w.user.name,
                        mask_key_id(&key)
                    ));
                    let mut text = describe(None, last.at, self.now);
                    if let (Some(s), Some(r)) = (&last.service, &last.region) {
                        text.push_str(&format!(" via {s} in {r}"));
                    }
                    text
                }
            };
            let masked = mask_key_id(&key);
            for r in w.records.iter_mut().filter(|r| r.key == masked) {
                r.usage = Some(text.clone());
            }
        }
    }
}
