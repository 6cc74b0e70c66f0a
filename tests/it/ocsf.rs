//! OCSF output validated against the OCSF schema with a kept library: py-ocsf-models' pydantic
//! Compliance Finding (class 2003, OCSF 1.5), in the rig's venv. Every finding must validate and
//! lose nothing in the model's round trip (a field the schema does not know would be dropped).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::report::weekly_example_report;
use crate::support::{repo_root, rig_python};

/// Validates `findings` (a JSON array) with py-ocsf-models; returns the validator's report.
fn validate(findings: &str) -> String {
    let script = r#"
import json, sys
from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding

def lost(given, kept, path=""):
    if isinstance(given, dict):
        out = []
        for k, v in given.items():
            if v is None:
                continue
            if not isinstance(kept, dict) or k not in kept:
                out.append(path + "." + k)
            else:
                out += lost(v, kept[k], path + "." + k)
        return out
    if isinstance(given, list):
        return [p for g, k in zip(given, kept) for p in lost(g, k, path + "[]")]
    return []

findings = json.load(sys.stdin)
bad = []
for i, f in enumerate(findings):
    try:
        model = ComplianceFinding.model_validate(f)
    except Exception as e:
        bad.append(f"{i}: {e}")
        continue
    dropped = lost(f, model.model_dump(mode="json", exclude_none=True))
    if dropped:
        bad.append(f"{i}: fields not in the schema: {dropped}")
print(f"{len(findings)} findings, {len(bad)} invalid")
for b in bad[:5]:
    print(b)
"#;
    let mut child = Command::new(rig_python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(findings.as_bytes())
        .unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

/// `audit --format ocsf` of the bundled example: one Compliance Finding per user (and the root
/// user with a key), each valid, with the controls, status, masked keys, account and Region.
#[test]
fn audit_ocsf_validates_for_every_user_of_the_example() {
    let out = Command::new(env!("CARGO_BIN_EXE_keyguard"))
        .args(["audit", "--format", "ocsf", "--evidence"])
        .arg(repo_root().join("examples/acme"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let findings: Vec<Value> = serde_json::from_str(&text).expect("only JSON on stdout");
    assert_eq!(findings.len(), 57, "56 users and one root user");
    let report = validate(&text);
    assert!(report.starts_with("57 findings, 0 invalid"), "{report}");
    let backup = findings
        .iter()
        .find(|f| f["resources"][0]["name"] == "payments-backup")
        .unwrap();
    assert_eq!(backup["class_uid"], 2003);
    assert_eq!(backup["compliance"]["status_id"], 3, "Fail");
    assert_eq!(backup["compliance"]["control"], "CIS 1.14");
    assert_eq!(
        backup["resources"][0]["owner"]["account"]["uid"],
        "310987654321"
    );
    assert_eq!(backup["resources"][0]["region"], "us-east-1");
    assert!(backup["message"].as_str().unwrap().contains("97d old"));
    let key = &backup["resources"][0]["data"]["keys"][0];
    assert!(key["key"].as_str().unwrap().contains('…') && key["age_days"] == 97);
    let root = findings
        .iter()
        .find(|f| f["resources"][0]["name"] == "<root_account>")
        .unwrap();
    assert_eq!(root["severity"], "Critical");
    assert_eq!(root["compliance"]["control"], "CIS 1.4");
}

/// `report` writes `findings.ocsf.json` next to the CSVs, and it validates too.
#[test]
fn the_report_writes_valid_ocsf() {
    let file = weekly_example_report("ocsf-report").join("findings.ocsf.json");
    let text = std::fs::read_to_string(file).unwrap();
    let n = serde_json::from_str::<Vec<Value>>(&text).unwrap().len();
    assert!(n > 0);
    let report = validate(&text);
    assert!(
        report.starts_with(&format!("{n} findings, 0 invalid")),
        "{report}"
    );
}
