//! Who may receive a user's notices. The owner tag is written by whoever may tag the user (the
//! user itself, often): an address outside the organization's domains would get the account's
//! name, its users, secret names and the command that reads them. Only addresses in
//! [`OwnerDomains`] are owners; any other falls back to the account's email or the
//! administrators, and is itself a finding.

/// A plausible email address: one `@`, something on both sides, no spaces or list separators.
/// Tags are typed by people; a bad one falls back to the next address rather than bouncing.
pub fn valid_address(s: &str) -> bool {
    let s = s.trim();
    let mut parts = s.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(l), Some(d), None)
        if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.'))
        && !s.contains(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '<' || c == '>')
}

/// The domain of `address`, lower-cased (`None` unless it is a [`valid_address`]).
pub fn domain_of(address: &str) -> Option<String> {
    valid_address(address)
        .then(|| address.trim().rsplit('@').next())
        .flatten()
        .map(str::to_ascii_lowercase)
}

/// The organization's mail domains: an owner's address must be at one of them (or a subdomain),
/// or at the domain of the user's account's own email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerDomains(Vec<String>);

impl OwnerDomains {
    /// The `listed` domains (`example.com`, `@example.com`), or when none are listed the domains
    /// of the administrators' addresses.
    pub fn new(listed: &[String], admins: &[String]) -> Self {
        let mut out: Vec<String> = listed
            .iter()
            .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        if out.is_empty() {
            out = admins.iter().filter_map(|a| domain_of(a)).collect();
        }
        out.sort();
        out.dedup();
        OwnerDomains(out)
    }

    /// The domains, for messages.
    pub fn list(&self) -> &[String] {
        &self.0
    }

    /// Whether `address` may receive notices of a user of the account whose email is
    /// `account_email`: at a listed domain or a subdomain of one, or at the account email's.
    pub fn admits(&self, address: &str, account_email: Option<&str>) -> bool {
        let Some(d) = domain_of(address) else {
            return false;
        };
        let under = |allowed: &str| d == allowed || d.ends_with(&format!(".{allowed}"));
        self.0.iter().any(|a| under(a)) || account_email.and_then(domain_of).is_some_and(|a| d == a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_organizations_domains_are_owners() {
        let d = OwnerDomains::new(&[], &["secops@Example.com".into()]);
        assert_eq!(d.list(), ["example.com"]);
        assert!(d.admits("dev@example.com", None));
        assert!(d.admits("dev@EU.Example.COM", None));
        assert!(!d.admits("x@attacker.example", None));
        assert!(
            !d.admits("x@notexample.com", None),
            "a suffix is not a subdomain"
        );
        assert!(!d.admits("x@example.com.attacker.example", None));
        assert!(d.admits("team@sub.example", Some("aws+prod@sub.example")));
        assert!(!d.admits("team@deeper.sub.example", Some("aws+prod@sub.example")));
        assert!(!d.admits("not an address", None));
        let listed = OwnerDomains::new(
            &["@acme.example".into(), " ".into()],
            &["a@example.com".into()],
        );
        assert_eq!(listed.list(), ["acme.example"]);
        assert!(!OwnerDomains::new(&[], &[]).admits("a@example.com", None));
    }
}
