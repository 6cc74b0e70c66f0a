//! keyguard's conformance pack as Config reports it: each rule's compliance
//! (`DescribeConformancePackCompliance`), which of them is keyguard's own rule, and the pack's
//! overall verdict. Pure: the calls are in `keyguard-aws`'s `config` module.

use serde::{Deserialize, Serialize};

/// One rule of the pack and Config's verdict on it: `COMPLIANT`, `NON_COMPLIANT` or
/// `INSUFFICIENT_DATA`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PackRule {
    /// The rule's name as Config has it (a pack's rules may carry a suffix Config adds).
    #[serde(rename = "ConfigRuleName")]
    pub rule: String,
    /// Config's verdict on the rule.
    #[serde(rename = "ComplianceType")]
    pub compliance: String,
}

/// The AWS managed rules of keyguard's pack beside keyguard's own, by their names in the
/// template (`conformance-packs/keyguard-access-keys.yaml`).
pub const COMPANIONS: [&str; 3] = [
    "access-keys-rotated",
    "iam-user-unused-credentials-check",
    "iam-root-access-key-check",
];

/// Of an account's rules, those of keyguard's pack (keyguard's rule `name` and the companions);
/// `None` when keyguard's rule is not among them.
pub fn of_pack(rules: Vec<PackRule>, name: &str) -> Option<Vec<PackRule>> {
    let ours: Vec<PackRule> = rules
        .into_iter()
        .filter(|r| is_rule(&r.rule, name) || COMPANIONS.iter().any(|c| is_rule(&r.rule, c)))
        .collect();
    deployed_name(&ours, name).is_some().then_some(ours)
}

/// Whether `deployed` is the rule named `name` in a template: the same name, or the name with
/// the `-conformance-pack-…` suffix Config may give a pack's rules.
pub fn is_rule(deployed: &str, name: &str) -> bool {
    deployed == name
        || deployed
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with("-conformance-pack-"))
}

/// The deployed name of the template's rule `name` among the pack's rules.
pub fn deployed_name<'a>(rules: &'a [PackRule], name: &str) -> Option<&'a str> {
    rules
        .iter()
        .map(|r| r.rule.as_str())
        .find(|r| is_rule(r, name))
}

/// The name to read keyguard's verdicts by among an account's `rules`: the deployed copy of
/// `name`, or `name` itself when none is there. More than one rule named like keyguard's (through
/// an aggregator every rule of the account is listed, and a member can create a loose rule of the
/// name next to the pack's) is an error: which one is keyguard's cannot be told by its name.
pub fn keyguard_rule<'a>(rules: &'a [PackRule], name: &'a str) -> Result<&'a str, String> {
    let found: Vec<&str> = rules
        .iter()
        .map(|r| r.rule.as_str())
        .filter(|r| is_rule(r, name))
        .collect();
    match found.as_slice() {
        [] => Ok(name),
        [one] => Ok(one),
        many => Err(format!(
            "{} rules are named like keyguard's ({}): one may be a decoy the account made; \
             Config's verdicts are not read",
            many.len(),
            many.join(", ")
        )),
    }
}

/// The verdict on the rule `name` (as in the template), if the pack has it.
pub fn verdict<'a>(rules: &'a [PackRule], name: &str) -> Option<&'a str> {
    rules
        .iter()
        .find(|r| is_rule(&r.rule, name))
        .map(|r| r.compliance.as_str())
}

/// The pack's verdict as Config's console shows it: NON_COMPLIANT when any rule is,
/// COMPLIANT when every rule is, else INSUFFICIENT_DATA.
pub fn overall(rules: &[PackRule]) -> &'static str {
    if rules.iter().any(|r| r.compliance == "NON_COMPLIANT") {
        "NON_COMPLIANT"
    } else if !rules.is_empty() && rules.iter().all(|r| r.compliance == "COMPLIANT") {
        "COMPLIANT"
    } else {
        "INSUFFICIENT_DATA"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, c: &str) -> PackRule {
        PackRule {
            rule: name.into(),
            compliance: c.into(),
        }
    }

    #[test]
    fn the_packs_copy_of_a_rule_is_found_by_its_template_name() {
        let rules = [
            rule(
                "keyguard-access-keys-conformance-pack-0a1b2c3d",
                "COMPLIANT",
            ),
            rule("keyguard-access-keys-2", "NON_COMPLIANT"),
            rule("access-keys-rotated", "NON_COMPLIANT"),
        ];
        assert_eq!(
            deployed_name(&rules, "keyguard-access-keys"),
            Some("keyguard-access-keys-conformance-pack-0a1b2c3d")
        );
        assert_eq!(
            verdict(&rules, "access-keys-rotated"),
            Some("NON_COMPLIANT")
        );
        assert_eq!(verdict(&rules, "iam-root-access-key-check"), None);
        assert_eq!(overall(&rules), "NON_COMPLIANT");
        assert_eq!(overall(&rules[..1]), "COMPLIANT");
        assert_eq!(overall(&[]), "INSUFFICIENT_DATA");
        assert_eq!(
            overall(&[rule("a", "COMPLIANT"), rule("b", "INSUFFICIENT_DATA")]),
            "INSUFFICIENT_DATA"
        );
    }
}
