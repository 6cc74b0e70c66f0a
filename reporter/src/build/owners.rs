//! Owner tags naming an address outside the organization's mail domains: a user (or whoever may
//! tag it) asking for the account's notices, its user names, secret names and the command that
//! reads them to be mailed elsewhere. keyguard never mails there (the notices go to the account's
//! email or the administrators); the report lists each such tag.

use keyguard_core::owner::{valid_address, OwnerDomains};
use keyguard_core::{Settings, UserRecord};

use crate::model::{AccountInput, OutsideOwnerRow};

/// Every owner tag of the readable accounts whose address is outside `domains`.
pub(super) fn outside_owners(
    readable: &[(&AccountInput, &Vec<UserRecord>)],
    settings: &Settings,
    domains: &OwnerDomains,
) -> Vec<OutsideOwnerRow> {
    let mut out = Vec::new();
    for (a, inventory) in readable {
        for rec in inventory.iter() {
            let Some(tag) = rec.user.tag(&settings.owner_email_tag) else {
                continue;
            };
            if !valid_address(tag) || domains.admits(tag, a.account.email.as_deref()) {
                continue;
            }
            out.push(OutsideOwnerRow {
                account: a.account.id.clone(),
                account_name: a.account.name.clone(),
                user: rec.user.name.clone(),
                address: tag.trim().to_string(),
                told_instead: a
                    .account
                    .email
                    .clone()
                    .filter(|e| valid_address(e))
                    .unwrap_or_else(|| "the administrators".into()),
            });
        }
    }
    out.sort_by(|x, y| (&x.account, &x.user).cmp(&(&y.account, &y.user)));
    out
}
