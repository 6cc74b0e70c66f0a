//! Where each access key is used: CloudTrail's calls made with a key, aggregated per key id into
//! the distinct source addresses (with counts), user agents, services, Regions and VPC endpoints,
//! and when it was first and last seen in the window.
//!
//! Pure: the caller reads CloudTrail (org-trail files, `LookupEvents`) and hands each call in as
//! a [`Call`]. Memory is bounded by the distinct (key, value) pairs kept, never by the number of
//! calls: each key keeps at most [`MAX_DISTINCT`] values of each kind and counts the rest as
//! "other". Every text a caller controls (the user agent above all) is kept as printable text of
//! at most [`MAX_TEXT`] characters; escaping it for a page or a CSV is the writer's job
//! ([`crate::text`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::text::{printable, printable_cow};

/// Distinct values of one kind (addresses, user agents…) kept per key; the rest count as other.
pub const MAX_DISTINCT: usize = 64;
/// The longest text (a user agent, an address) kept, in characters.
pub const MAX_TEXT: usize = 160;

/// One call CloudTrail recorded as made with an access key.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The access key id (`userIdentity.accessKeyId`).
    pub key_id: &'a str,
    /// `eventTime`.
    pub time: DateTime<Utc>,
    /// `sourceIPAddress` (an address, or a service's name for calls AWS made on the caller's
    /// behalf).
    pub source_ip: &'a str,
    /// `userAgent`: whatever the caller sent.
    pub user_agent: &'a str,
    /// `eventSource` (`s3.amazonaws.com`).
    pub service: &'a str,
    /// `awsRegion`.
    pub region: &'a str,
    /// `vpcEndpointId`, when the call came through an interface endpoint.
    pub vpc_endpoint: Option<&'a str>,
}

/// True for the id of a long-term access key (an IAM user's or the root user's): `AKIA…`. Calls
/// made with session credentials carry an `ASIA…` id, even when the session was made from a
/// long-term key.
pub fn is_long_term(key_id: &str) -> bool {
    key_id.starts_with("AKIA")
}

/// How often one value (an address, a user agent…) was seen, and when last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Calls.
    pub calls: u64,
    /// The latest of them.
    pub last: DateTime<Utc>,
}

/// Values of one kind seen with a key, at most [`MAX_DISTINCT`] of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Each value kept.
    pub values: BTreeMap<String, Seen>,
    /// Calls whose value was not kept (more than [`MAX_DISTINCT`] distinct values).
    pub other: u64,
}

impl Tally {
    fn add(&mut self, value: &str, calls: u64, last: DateTime<Utc>) {
        let value = printable_cow(value, MAX_TEXT);
        if let Some(s) = self.values.get_mut(value.as_ref()) {
            s.calls += calls;
            s.last = s.last.max(last);
        } else if self.values.len() < MAX_DISTINCT {
            self.values.insert(value.into_owned(), Seen { calls, last });
        } else {
            self.other += calls;
        }
    }

    fn merge(&mut self, other: &Tally) {
        for (v, s) in &other.values {
            self.add(v, s.calls, s.last);
        }
        self.other += other.other;
    }

    /// The `n` values seen most, most first (ties: the latest first, then by value).
    pub fn top(&self, n: usize) -> Vec<(&str, &Seen)> {
        let mut all: Vec<(&str, &Seen)> =
            self.values.iter().map(|(v, s)| (v.as_str(), s)).collect();
        all.sort_by(|a, b| {
            b.1.calls
                .cmp(&a.1.calls)
                .then(b.1.last.cmp(&a.1.last))
                .then(a.0.cmp(b.0))
        });
        all.truncate(n);
        all
    }
}

/// Where one key was used in the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUsage {
    /// Calls recorded.
    pub calls: u64,
    /// The first of them.
    pub first_seen: DateTime<Utc>,
    /// The last of them.
    pub last_seen: DateTime<Utc>,
    /// Source addresses.
    pub sources: Tally,
    /// User agents.
    pub user_agents: Tally,
    /// Services (`eventSource`).
    pub services: Tally,
    /// Regions.
    pub regions: Tally,
    /// VPC endpoint ids.
    pub vpc_endpoints: Tally,
}

impl KeyUsage {
    fn new(at: DateTime<Utc>) -> Self {
        KeyUsage {
            calls: 0,
            first_seen: at,
            last_seen: at,
            sources: Tally::default(),
            user_agents: Tally::default(),
            services: Tally::default(),
            regions: Tally::default(),
            vpc_endpoints: Tally::default(),
        }
    }

    /// Calls at or after `since`, as far as the window can tell: all calls when the key's first
    /// call is that late, else `None` (the tallies do not keep every call's time).
    pub fn calls_since(&self, since: DateTime<Utc>) -> Option<u64> {
        (self.first_seen >= since).then_some(self.calls)
    }

    fn merge(&mut self, other: &KeyUsage) {
        self.calls += other.calls;
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.sources.merge(&other.sources);
        self.user_agents.merge(&other.user_agents);
        self.services.merge(&other.services);
        self.regions.merge(&other.regions);
        self.vpc_endpoints.merge(&other.vpc_endpoints);
    }
}

/// Where keys were used: per key id, what [`KeyUsage`] says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Per access key id.
    pub keys: BTreeMap<String, KeyUsage>,
}

impl Usage {
    /// Counts one call.
    pub fn add(&mut self, call: &Call<'_>) {
        let u = match self.keys.get_mut(call.key_id) {
            Some(u) => u,
            None => self
                .keys
                .entry(call.key_id.to_string())
                .or_insert_with(|| KeyUsage::new(call.time)),
        };
        u.calls += 1;
        u.first_seen = u.first_seen.min(call.time);
        u.last_seen = u.last_seen.max(call.time);
        u.sources.add(call.source_ip, 1, call.time);
        u.user_agents.add(call.user_agent, 1, call.time);
        u.services.add(call.service, 1, call.time);
        u.regions.add(call.region, 1, call.time);
        if let Some(v) = call.vpc_endpoint.filter(|v| !v.is_empty()) {
            u.vpc_endpoints.add(v, 1, call.time);
        }
    }

    /// Adds what `other` counted (another file, another account's slice).
    pub fn merge(&mut self, other: &Usage) {
        for (id, u) in &other.keys {
            match self.keys.get_mut(id) {
                Some(mine) => mine.merge(u),
                None => {
                    self.keys.insert(id.clone(), u.clone());
                }
            }
        }
    }

    /// The usage of `key_id`, if the window saw it used.
    pub fn of(&self, key_id: &str) -> Option<&KeyUsage> {
        self.keys.get(key_id)
    }

    /// Only the keys `keep` says.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.keys.retain(|id, _| keep(id));
    }
}

/// What the owner is told of a key's use: "used 3 h ago from 203.0.113.7, aws-cli/2.15 via ec2,
/// 41 calls in the window". `last_used` is IAM's last use (GetAccessKeyLastUsed, or the
/// credential report) when CloudTrail saw nothing; `None` and no usage: "never used".
pub fn describe(
    usage: Option<&KeyUsage>,
    last_used: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> String {
    let Some(u) = usage else {
        return match last_used {
            Some(t) => format!(
                "last used {} (CloudTrail shows no call in the window)",
                ago(now, t)
            ),
            None => "never used".into(),
        };
    };
    let mut text = format!(
        "used {}",
        ago(now, u.last_seen.max(last_used.unwrap_or(u.last_seen)))
    );
    if let Some((ip, _)) = u.sources.top(1).first() {
        text.push_str(&format!(" from {ip}"));
    }
    let agent = u.user_agents.top(1).first().map(|(a, _)| short_agent(a));
    let service = u.services.top(1).first().map(|(s, _)| short_service(s));
    match (agent, service) {
        (Some(a), Some(s)) => text.push_str(&format!(", {a} via {s}")),
        (Some(a), None) => text.push_str(&format!(", {a}")),
        (None, Some(s)) => text.push_str(&format!(", via {s}")),
        (None, None) => {}
    }
    text.push_str(&format!(
        ", {} call{} since {}",
        u.calls,
        if u.calls == 1 { "" } else { "s" },
        u.first_seen.format("%Y-%m-%d")
    ));
    text
}

/// "3 h ago", "2 d ago", "just now".
pub fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let d = now - t;
    if d.num_minutes() < 1 {
        "just now".into()
    } else if d.num_hours() < 1 {
        format!("{} min ago", d.num_minutes())
    } else if d.num_days() < 2 {
        format!("{} h ago", d.num_hours())
    } else {
        format!("{} d ago", d.num_days())
    }
}

/// A user agent's first product token (`aws-cli/2.15.0 Python/3.11 …` → `aws-cli/2.15.0`),
/// printable and short.
pub fn short_agent(agent: &str) -> String {
    printable(agent.split_whitespace().next().unwrap_or(agent), 48)
}

/// `ec2.amazonaws.com` → `ec2`.
pub fn short_service(service: &str) -> String {
    printable(
        service.strip_suffix(".amazonaws.com").unwrap_or(service),
        48,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, h, 0, 0).unwrap()
    }

    fn call<'a>(key: &'a str, ip: &'a str, agent: &'a str, h: u32) -> Call<'a> {
        Call {
            key_id: key,
            time: at(h),
            source_ip: ip,
            user_agent: agent,
            service: "ec2.amazonaws.com",
            region: "eu-west-1",
            vpc_endpoint: None,
        }
    }

    #[test]
    fn calls_aggregate_per_key_and_value_exactly() {
        let mut u = Usage::default();
        for i in 0..1000u32 {
            let ip = if i % 4 == 0 {
                "203.0.113.7"
            } else {
                "198.51.100.2"
            };
            u.add(&call("AKIAOLD", ip, "aws-cli/2.15.0 Python/3.11", i % 20));
        }
        u.add(&call("AKIANEW", "203.0.113.9", "boto3/1.34", 21));
        let old = u.of("AKIAOLD").unwrap();
        assert_eq!(old.calls, 1000);
        assert_eq!(old.sources.values["198.51.100.2"].calls, 750);
        assert_eq!(old.sources.values["203.0.113.7"].calls, 250);
        assert_eq!((old.first_seen, old.last_seen), (at(0), at(19)));
        assert_eq!(old.sources.top(1)[0].0, "198.51.100.2");
        assert_eq!(u.keys.len(), 2);
        // Merging two halves gives the same as one pass.
        let (mut a, mut b) = (Usage::default(), Usage::default());
        for i in 0..1000u32 {
            let ip = if i % 4 == 0 {
                "203.0.113.7"
            } else {
                "198.51.100.2"
            };
            let half = if i % 2 == 0 { &mut a } else { &mut b };
            half.add(&call("AKIAOLD", ip, "aws-cli/2.15.0 Python/3.11", i % 20));
        }
        a.merge(&b);
        assert_eq!(a.of("AKIAOLD"), u.of("AKIAOLD"));
    }

    #[test]
    fn memory_is_bounded_by_distinct_values_not_calls() {
        let mut u = Usage::default();
        let agents: Vec<String> = (0..500).map(|i| format!("agent/{i}")).collect();
        for (i, a) in agents.iter().enumerate() {
            u.add(&call("AKIAOLD", "203.0.113.7", a, (i % 20) as u32));
        }
        let old = u.of("AKIAOLD").unwrap();
        assert_eq!(old.user_agents.values.len(), MAX_DISTINCT);
        assert_eq!(old.user_agents.other, 500 - MAX_DISTINCT as u64);
        assert_eq!(old.calls, 500);
    }

    #[test]
    fn hostile_text_is_kept_printable_and_short() {
        let mut u = Usage::default();
        let agent = format!(
            "=HYPERLINK(\"http://x\")\n<script>{}</script>\u{7}",
            "a".repeat(400)
        );
        u.add(&call("AKIAOLD", "203.0.113.7", &agent, 1));
        let kept = u.of("AKIAOLD").unwrap().user_agents.top(1)[0].0.to_string();
        assert!(kept.chars().count() <= MAX_TEXT, "{kept}");
        assert!(!kept.contains('\n') && !kept.contains('\u{7}'), "{kept:?}");
        // The same agent again lands on the same (cut) value.
        u.add(&call("AKIAOLD", "203.0.113.7", &agent, 2));
        assert_eq!(u.of("AKIAOLD").unwrap().user_agents.values.len(), 1);
    }

    #[test]
    fn the_owner_reads_when_and_from_where() {
        let mut u = Usage::default();
        for h in 0..41 {
            u.add(&call(
                "AKIAOLD",
                "203.0.113.7",
                "aws-cli/2.15.0 Python/3.11",
                h % 21,
            ));
        }
        let text = describe(u.of("AKIAOLD"), None, at(23));
        assert_eq!(
            text,
            "used 3 h ago from 203.0.113.7, aws-cli/2.15.0 via ec2, 41 calls since 2026-11-20"
        );
        assert_eq!(describe(None, None, at(23)), "never used");
        assert!(describe(None, Some(at(1)), at(23)).starts_with("last used 22 h ago"));
        assert!(!is_long_term("ASIAEXAMPLE") && is_long_term("AKIAEXAMPLE"));
    }
}
