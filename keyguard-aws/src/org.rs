//! The organization's accounts.

use aws_config::SdkConfig;
use keyguard_core::Account;

use crate::error::{Error, Result};
use crate::sdk::RoleSpec;

/// Which accounts to work on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFilter {
    /// When not empty, only these account ids.
    pub include: Vec<String>,
    /// Never these account ids.
    pub exclude: Vec<String>,
}

impl AccountFilter {
    /// True when `id` passes the filter.
    pub fn admits(&self, id: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|i| i == id))
            && !self.exclude.iter().any(|e| e == id)
    }
}

/// Lists the organization's ACTIVE accounts (20 a page, every page), filtered, sorted by id.
/// Suspended, closed and pending accounts are skipped: their IAM cannot be changed anyway.
pub async fn list_accounts(
    client: &aws_sdk_organizations::Client,
    filter: &AccountFilter,
) -> Result<Vec<Account>> {
    use futures::TryStreamExt;
    let mut out: Vec<Account> = account_pages(client.clone(), filter.clone())
        .try_concat()
        .await?;
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The organization's ACTIVE accounts that `filter` admits, a ListAccounts page (at most 20, the
/// API's maximum) at a time, in the API's order: for a dispatcher that hands out each page while
/// the next one is fetched (the pages themselves cannot be fetched in parallel: each needs the
/// previous page's token).
pub fn account_pages(
    client: aws_sdk_organizations::Client,
    filter: AccountFilter,
) -> impl futures::Stream<Item = Result<Vec<Account>>> {
    use futures::StreamExt;
    let pages = client
        .list_accounts()
        .max_results(20)
        .into_paginator()
        .send();
    futures::stream::unfold(pages, |mut pages| async move {
        let page = pages.next().await?;
        Some((page, pages))
    })
    .map(move |page| {
        let page = page.map_err(|e| Error::sdk("ListAccounts", e))?;
        Ok(active_admitted(page.accounts(), &filter))
    })
}

/// How many parents (the root and OUs) are listed at once by [`account_pages_by_parent`].
pub const PARENTS_IN_FLIGHT: usize = 8;

/// The organization's ACTIVE accounts that `filter` admits, a page at a time, listed per parent
/// (the root and every OU, found with ListRoots and ListOrganizationalUnitsForParent) with
/// ListAccountsForParent, [`PARENTS_IN_FLIGHT`] parents at once. Every account has exactly one
/// parent, so this is the organization's accounts once each, as [`account_pages`]; it is
/// faster when the accounts are spread over OUs (ListAccounts' pages must be fetched one after
/// the other, 20 accounts each), which is how large organizations are laid out.
pub fn account_pages_by_parent(
    client: aws_sdk_organizations::Client,
    filter: AccountFilter,
) -> impl futures::Stream<Item = Result<Vec<Account>>> {
    use futures::{StreamExt, TryStreamExt};
    let parents = {
        let client = client.clone();
        async move {
            let roots: Vec<String> = client
                .list_roots()
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| Error::sdk("ListRoots", e))?
                .iter()
                .flat_map(|page| page.roots())
                .filter_map(|r| r.id().map(str::to_string))
                .collect();
            // Breadth first, each level's parents at once.
            let mut all = roots.clone();
            let mut level = roots;
            while !level.is_empty() {
                let children: Vec<Vec<String>> = futures::stream::iter(level)
                    .map(|parent| {
                        let client = client.clone();
                        async move {
                            Ok::<_, Error>(
                                client
                                    .list_organizational_units_for_parent()
                                    .parent_id(parent)
                                    .into_paginator()
                                    .send()
                                    .try_collect()
                                    .await
                                    .map_err(|e| Error::sdk("ListOrganizationalUnitsForParent", e))?
                                    .iter()
                                    .flat_map(|page| page.organizational_units())
                                    .filter_map(|ou| ou.id().map(str::to_string))
                                    .collect(),
                            )
                        }
                    })
                    .buffer_unordered(PARENTS_IN_FLIGHT)
                    .try_collect()
                    .await?;
                level = children.into_iter().flatten().collect();
                all.extend(level.iter().cloned());
            }
            Ok::<_, Error>(all)
        }
    };
    futures::stream::once(parents)
        .map_ok(move |parents| {
            let (client, filter) = (client.clone(), filter.clone());
            futures::stream::iter(parents)
                .map(move |parent| {
                    let filter = filter.clone();
                    let pages = client
                        .list_accounts_for_parent()
                        .parent_id(parent)
                        .max_results(20)
                        .into_paginator()
                        .send();
                    futures::stream::unfold(pages, |mut pages| async move {
                        let page = pages.next().await?;
                        Some((page, pages))
                    })
                    .map(move |page| {
                        let page = page.map_err(|e| Error::sdk("ListAccountsForParent", e))?;
                        Ok(active_admitted(page.accounts(), &filter))
                    })
                    .boxed()
                })
                .flatten_unordered(PARENTS_IN_FLIGHT)
        })
        .try_flatten()
}

/// The ACTIVE accounts of `accounts` that `filter` admits.
fn active_admitted(
    accounts: &[aws_sdk_organizations::types::Account],
    filter: &AccountFilter,
) -> Vec<Account> {
    use aws_sdk_organizations::types::{AccountState, AccountStatus};
    accounts
        .iter()
        .filter(|a| {
            // `State` replaces the deprecated `Status`; older endpoints send only `Status`.
            #[allow(deprecated)]
            match (a.state(), a.status()) {
                (Some(state), _) => *state == AccountState::Active,
                (None, Some(status)) => *status == AccountStatus::Active,
                (None, None) => false,
            }
        })
        .filter_map(|a| {
            let id = a.id()?;
            filter.admits(id).then(|| Account {
                id: id.to_string(),
                name: a.name().unwrap_or_default().to_string(),
                email: a.email().map(str::to_string),
            })
        })
        .collect()
}

/// [`account_pages_by_parent`] of the organization `base` reaches (through `role`'s organization
/// role): what the dispatcher hands out.
pub async fn organization_account_pages(
    base: &SdkConfig,
    role: &RoleSpec,
    filter: &AccountFilter,
) -> Result<impl futures::Stream<Item = Result<Vec<Account>>>> {
    let org = crate::sdk::for_organization(base, role).await?;
    Ok(account_pages_by_parent(
        aws_sdk_organizations::Client::new(&org),
        filter.clone(),
    ))
}

/// The organization's ACTIVE accounts as [`list_accounts`] gives them, asked with `base`'s
/// credentials or, with [`RoleSpec::org_role_arn`] set, through that role (one AssumeRole).
pub async fn organization_accounts(
    base: &SdkConfig,
    role: &RoleSpec,
    filter: &AccountFilter,
) -> Result<Vec<Account>> {
    let org = crate::sdk::for_organization(base, role).await?;
    list_accounts(&aws_sdk_organizations::Client::new(&org), filter).await
}

/// One account of the organization, its name and email (`DescribeAccount`, with `base`'s
/// credentials or through [`RoleSpec::org_role_arn`] as the listings are): what a run that was
/// given only the account's id needs for the owner notices' fallback to the account's email.
/// `Ok(None)` when the organization has no such account.
pub async fn describe_account(
    base: &SdkConfig,
    role: &RoleSpec,
    id: &str,
) -> Result<Option<Account>> {
    use aws_sdk_organizations::operation::describe_account::DescribeAccountError;
    let org = crate::sdk::for_organization(base, role).await?;
    match aws_sdk_organizations::Client::new(&org)
        .describe_account()
        .account_id(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.account().map(|a| Account {
            id: id.to_string(),
            name: a.name().unwrap_or_default().to_string(),
            email: a.email().map(str::to_string),
        })),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(DescribeAccountError::AccountNotFoundException(_))
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::sdk("DescribeAccount", e)),
    }
}

/// `account` with its name and email from the organization ([`describe_account`]), for a run
/// given only an account's id: an owner without an address of its own is then told at the
/// account's email. When the organization cannot say (no permission, not a member), `account`
/// as it is, with a warning: the admin is told instead.
pub async fn named(base: &SdkConfig, role: &RoleSpec, account: Account) -> Account {
    match describe_account(base, role, &account.id).await {
        Ok(Some(named)) => named,
        Ok(None) => {
            tracing::warn!(account = %account.id, "not an account of the organization: its owners' fallback is the admin");
            account
        }
        Err(e) => {
            tracing::warn!(account = %account.id, "DescribeAccount: {e}; its owners' fallback is the admin");
            account
        }
    }
}

/// Runs `work` for every account, at most [`CONCURRENCY`](crate::CONCURRENCY) at a time, each in
/// its own `account` tracing span, and returns each account's outcome, sorted by account id.
/// `work` returns its own result type: one account's failure is that account's outcome and never
/// stops the others. Every per-account fan-out of keyguard (audit, collect, plan, the sweep, the
/// report's reads) is this one.
/// Each account's completion is reported to the process's [`crate::progress`] sink, if any.
pub async fn per_account<F, Fut, T>(accounts: Vec<Account>, work: F) -> Vec<(Account, T)>
where
    F: Fn(Account) -> Fut,
    Fut: std::future::Future<Output = T>,
    T: crate::progress::Outcome,
{
    use futures::StreamExt;
    use tracing::Instrument;
    crate::progress::start(accounts.len());
    let mut out: Vec<(Account, T)> = futures::stream::iter(accounts)
        .map(|account| {
            let span = tracing::info_span!("account", account = %account.id);
            let fut = work(account.clone());
            async move {
                let outcome = fut.await;
                crate::progress::account_done(outcome.failed());
                (account, outcome)
            }
            .instrument(span)
        })
        .buffer_unordered(crate::limits::CONCURRENCY)
        .collect()
        .await;
    crate::progress::finish();
    out.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_organizations::operation::list_accounts::ListAccountsOutput;
    use aws_sdk_organizations::types::{Account as OrgAccount, AccountState};
    use aws_sdk_organizations::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn acct(id: &str, state: AccountState) -> OrgAccount {
        OrgAccount::builder()
            .id(id)
            .name(format!("n{id}"))
            .email(format!("{id}@x.test"))
            .state(state)
            .build()
    }

    fn two_pages() -> [aws_smithy_mocks::Rule; 2] {
        let first = mock!(Client::list_accounts)
            .match_requests(|r| r.next_token().is_none() && r.max_results() == Some(20))
            .then_output(|| {
                ListAccountsOutput::builder()
                    .accounts(acct("111111111111", AccountState::Active))
                    .accounts(acct("222222222222", AccountState::Suspended))
                    .next_token("page2")
                    .build()
            });
        let second = mock!(Client::list_accounts)
            .match_requests(|r| r.next_token() == Some("page2"))
            .then_output(|| {
                ListAccountsOutput::builder()
                    .accounts(acct("333333333333", AccountState::Active))
                    .accounts(acct("444444444444", AccountState::Active))
                    .build()
            });
        [first, second]
    }

    #[tokio::test]
    async fn pages_filters_and_keeps_only_active() {
        let [first, second] = two_pages();
        let client = mock_client!(
            aws_sdk_organizations,
            RuleMode::Sequential,
            [&first, &second]
        );
        let all = list_accounts(&client, &AccountFilter::default())
            .await
            .unwrap();
        let ids: Vec<_> = all.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["111111111111", "333333333333", "444444444444"]);
        assert_eq!(first.num_calls() + second.num_calls(), 2);

        let [first, second] = two_pages();
        let client = mock_client!(
            aws_sdk_organizations,
            RuleMode::Sequential,
            [&first, &second]
        );
        let filter = AccountFilter {
            include: vec![],
            exclude: vec!["333333333333".into()],
        };
        let ids: Vec<_> = list_accounts(&client, &filter)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, ["111111111111", "444444444444"]);
    }

    #[tokio::test]
    async fn the_fan_out_is_bounded_and_isolates_failures() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (now, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let accounts: Vec<Account> = (0..40)
            .rev()
            .map(|i| Account {
                id: format!("{i:012}"),
                name: String::new(),
                email: None,
            })
            .collect();
        let out = per_account(accounts, |a| {
            let (now, peak) = (&now, &peak);
            async move {
                let in_flight = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(in_flight, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                if a.id.ends_with('7') {
                    Err("no role")
                } else {
                    Ok(a.id.len())
                }
            }
        })
        .await;
        assert_eq!(out.len(), 40);
        assert!(out.windows(2).all(|w| w[0].0.id < w[1].0.id), "sorted");
        assert_eq!(out.iter().filter(|(_, r)| r.is_err()).count(), 4);
        assert_eq!(peak.load(Ordering::SeqCst), crate::CONCURRENCY);
    }

    #[test]
    fn filter_semantics() {
        let f = AccountFilter {
            include: vec!["1".into(), "2".into()],
            exclude: vec!["2".into()],
        };
        assert!(f.admits("1") && !f.admits("2") && !f.admits("3"));
        assert!(AccountFilter::default().admits("9"));
    }
}
