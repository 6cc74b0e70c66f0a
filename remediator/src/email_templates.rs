//! The owner notice and the admin digest as data, rendered with the handlebars templates of
//! `report-templates/` (strict mode: a field the template names but the data lacks is an error).
//! Nothing here ever sees a secret access key: the data carries masked key ids and secret
//! *names* only.

use chrono::{DateTime, Utc};
use handlebars::Handlebars;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::request_tally::RequestTally;

const OWNER_HTML: &str = include_str!("../../report-templates/owner-notice.html.hbs");

const OWNER_TEXT: &str = include_str!("../../report-templates/owner-notice.txt.hbs");

const DIGEST_HTML: &str = include_str!("../../report-templates/admin-digest.html.hbs");

const DIGEST_TEXT: &str = include_str!("../../report-templates/admin-digest.txt.hbs");

/// The compiled templates.
pub struct Templates {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
}

impl Templates {
    /// Compiles the embedded templates (strict mode; HTML escaped, text not).
    pub fn new() -> Result<Self> {
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        let register = |reg: &mut Handlebars<'static>, name: &str, src: &str| {
            reg.register_template_string(name, src)
                .map_err(|e| Error::Notice {
                    what: format!("template {name}"),
                    source: Box::new(e),
                })
        };
        register(&mut html, "owner", OWNER_HTML)?;
        register(&mut html, "digest", DIGEST_HTML)?;
        register(&mut text, "owner", OWNER_TEXT)?;
        register(&mut text, "digest", DIGEST_TEXT)?;
        Ok(Templates { html, text })
    }

    /// The compiled templates, built once per process (a template that does not compile is a
    /// bug the tests catch; it is reported with handlebars' error each time).
    pub fn get() -> Result<&'static Templates> {
        static T: std::sync::OnceLock<Templates> = std::sync::OnceLock::new();
        if let Some(t) = T.get() {
            return Ok(t);
        }
        let compiled = Templates::new()?;
        Ok(T.get_or_init(|| compiled))
    }

    /// Renders template `name` (`owner` or `digest`) as (html, text).
    pub fn render<T: Serialize>(&self, name: &str, data: &T) -> Result<(String, String)> {
        let html = self.html.render(name, data).map_err(|e| Error::Notice {
            what: format!("rendering {name} (HTML)"),
            source: Box::new(e),
        })?;
        let text = self.text.render(name, data).map_err(|e| Error::Notice {
            what: format!("rendering {name} (text)"),
            source: Box::new(e),
        })?;
        Ok((html, text))
    }
}

/// One line of a notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Masked key.
    pub key: String,
    /// `rotate`, `disable`, `delete`…
    pub action: String,
    /// The day it happened or will happen.
    pub date: String,
    /// Why.
    pub why: String,
    /// Where the key is used (`used 3 h ago from …`), when keyguard looked.
    #[serde(default)]
    pub usage: Option<String>,
}

/// One user's part of an owner notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNotice {
    /// The user name.
    pub name: String,
    /// Steps done (or previewed) in this run.
    pub done: Vec<Item>,
    /// Steps that failed.
    pub failed: Vec<Item>,
    /// Steps whose warning window opened.
    pub warnings: Vec<Item>,
    /// Disables held: the old key is still used and its successor never was.
    #[serde(default)]
    pub held: Vec<Item>,
    /// Later steps already planned.
    pub coming: Vec<Item>,
    /// The secret holding the new key, when one was created.
    pub secret_name: Option<String>,
    /// The command that reads it.
    pub read_command: Option<String>,
}

impl UserNotice {
    /// True when there is something to tell the owner.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
            && self.failed.is_empty()
            && self.warnings.is_empty()
            && self.held.is_empty()
    }
}

/// The data of an owner notice: every user of one owner, grouped by account.
#[derive(Debug, Clone, Serialize)]
pub struct OwnerNotice {
    /// The email subject.
    pub subject: String,
    /// DryRun: nothing was changed.
    pub preview: bool,
    /// The owner's address.
    pub owner: String,
    /// The run's time.
    pub run_at: String,
    /// Policy numbers shown in the text.
    pub rotation_period: u32,
    /// See [`keyguard_core::Settings`].
    pub installation_grace_period: u32,
    /// See [`keyguard_core::Settings`].
    pub recovery_grace_period: u32,
    /// More than one account.
    pub many_accounts: bool,
    /// How many accounts.
    pub account_count: usize,
    /// The owner's users, by account.
    pub accounts: Vec<OwnerAccount>,
}

/// One account's part of an owner notice.
#[derive(Debug, Clone, Serialize)]
pub struct OwnerAccount {
    /// The account id.
    pub account: String,
    /// The account name, when known.
    pub account_name: String,
    /// The owner's users in it.
    pub users: Vec<UserNotice>,
}

/// One row of the digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRow {
    /// Masked key.
    pub key: String,
    /// The action.
    pub action: String,
    /// done, preview, failed, warned, skipped.
    pub outcome: String,
    /// The day.
    pub date: String,
    /// Why.
    pub why: String,
    /// Where the key is used, when keyguard looked.
    #[serde(default)]
    pub usage: Option<String>,
}

/// One user in the digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestUser {
    /// The user name.
    pub name: String,
    /// Who was notified (or `nobody: …`).
    pub owner: String,
    /// The user's rows.
    pub rows: Vec<DigestRow>,
}

/// The data of the admin digest: one per run, every account of it.
#[derive(Debug, Clone, Serialize)]
pub struct Digest {
    /// The email subject.
    pub subject: String,
    /// DryRun.
    pub preview: bool,
    /// The run's id.
    pub run: String,
    /// The run's time.
    pub run_at: String,
    /// Accounts in the run.
    pub accounts_total: usize,
    /// Actions done or previewed.
    pub done: usize,
    /// Actions failed.
    pub failed: usize,
    /// Warnings sent.
    pub warned: usize,
    /// Users read live.
    pub examined: usize,
    /// Accounts that did not finish (the run was finalized without them).
    pub unfinished: usize,
    /// Accounts with something to report (actions, an error, notes), by id.
    pub accounts: Vec<DigestAccount>,
    /// The previous day's member requests (a sweep's digest).
    pub requests: Option<RequestTally>,
}

/// One account's part of the digest.
#[derive(Debug, Clone, Serialize)]
pub struct DigestAccount {
    /// The account id.
    pub account: String,
    /// The account name.
    pub account_name: String,
    /// Actions done or previewed.
    pub done: usize,
    /// Actions failed.
    pub failed: usize,
    /// Warnings sent.
    pub warned: usize,
    /// Users read live.
    pub examined: usize,
    /// Why the account could not be processed.
    pub error: Option<String>,
    /// Users with rows.
    pub users: Vec<DigestUser>,
    /// Other things the administrators should know.
    pub notes: Vec<String>,
}

/// Formats a day for notices.
pub fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

pub use keyguard_core::owner::valid_address;

/// The subject's prefix: previews say so.
pub(crate) fn subject_prefix(preview: bool) -> &'static str {
    if preview {
        "[keyguard preview] "
    } else {
        "[keyguard] "
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(preview: bool) -> OwnerNotice {
        OwnerNotice {
            subject: "s".into(),
            preview,
            owner: "a@example.com".into(),
            run_at: "2026-11-22 10:00 UTC".into(),
            rotation_period: 90,
            installation_grace_period: 10,
            recovery_grace_period: 10,
            many_accounts: false,
            account_count: 1,
            accounts: vec![OwnerAccount {
                account: "111122223333".into(),
                account_name: "prod".into(),
                users: vec![UserNotice {
                    name: "ci+deploy@x".into(),
                    done: vec![Item {
                        key: "AKIA…WXYZ".into(),
                        action: "rotate".into(),
                        date: "2026-11-22".into(),
                        why: "RotationPeriod reached".into(),
                        usage: None,
                    }],
                    failed: vec![],
                    warnings: vec![],
                    held: vec![],
                    coming: vec![],
                    secret_name: Some("Account_111122223333_User_ci+deploy@x_AccessKey".into()),
                    read_command: Some("aws secretsmanager get-secret-value …".into()),
                }],
            }],
        }
    }

    #[test]
    fn templates_render_and_mark_previews() {
        let t = Templates::new().unwrap();
        let (html, text) = t.render("owner", &notice(false)).unwrap();
        assert!(html.contains("Done in this run") && !html.contains("Preview"));
        assert!(
            text.contains("rotate key AKIA…WXYZ") && text.contains("ci+deploy@x"),
            "{text}"
        );
        assert!(
            html.contains("ci+deploy@x"),
            "escaping keeps IAM names readable"
        );
        let (html, text) = t.render("owner", &notice(true)).unwrap();
        assert!(html.contains("Preview") && text.starts_with("PREVIEW"));
        assert!(text.contains("Would be done"));
    }

    #[test]
    fn a_missing_field_is_an_error() {
        let t = Templates::new().unwrap();
        let err = t
            .render(
                "owner",
                &serde_json::json!({"preview": false, "accounts": []}),
            )
            .unwrap_err();
        assert!(err.to_string().contains("rendering owner"), "{err}");
    }

    #[test]
    fn addresses() {
        assert!(valid_address("dev+ci@example.com"));
        for bad in [
            "",
            "x",
            "a@b",
            "a b@c.com",
            "a@b.com,c@d.com",
            "@x.com",
            "a@@b.com",
        ] {
            assert!(!valid_address(bad), "{bad}");
        }
    }
}
