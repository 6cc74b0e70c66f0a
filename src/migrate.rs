//! `keyguard migrate`: an aws-samples stack's parameters as keyguard's central and member
//! stacks' overrides ([`keyguard_core::migration`]); refuses what keyguard cannot keep.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Deserialize;

/// Arguments of `keyguard migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The aws-samples stack's parameters: `aws cloudformation describe-stacks --stack-name S
    /// --query 'Stacks[0].Parameters' > params.json` (or a JSON object of name → value).
    #[arg(long, value_name = "FILE")]
    aws_samples_parameters: PathBuf,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ParametersFile {
    Described(Vec<Described>),
    Plain(BTreeMap<String, String>),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Described {
    parameter_key: String,
    #[serde(default)]
    parameter_value: String,
}

/// Runs `keyguard migrate`.
pub fn run(args: MigrateArgs) -> Result<ExitCode> {
    let path = &args.aws_samples_parameters;
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let file: ParametersFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: expected describe-stacks' Parameters ([{{\"ParameterKey\", \"ParameterValue\"}}]) or an object",
            path.display()
        )
    })?;
    let params = match file {
        ParametersFile::Described(list) => list
            .into_iter()
            .map(|p| (p.parameter_key, p.parameter_value))
            .collect(),
        ParametersFile::Plain(map) => map,
    };
    let m = keyguard_core::migration::from_aws_samples(&params);
    let overrides = |p: &BTreeMap<String, String>, f: &dyn Fn(&str, &str) -> String| {
        p.iter().map(|(k, v)| f(k, v)).collect::<Vec<_>>().join(" ")
    };
    println!("# deploy/central.yaml (aws cloudformation deploy … --parameter-overrides)");
    println!(
        "{}",
        overrides(&m.central, &|k, v| format!("{k}={}", quoted(v)))
    );
    println!("# deploy/member-role.yaml (aws cloudformation create-stack-set … --parameters)");
    println!(
        "{}",
        overrides(&m.member, &|k, v| format!(
            "ParameterKey={k},ParameterValue={}",
            quoted(v)
        ))
    );
    for note in &m.notes {
        println!("# note: {note}");
    }
    for (name, why) in keyguard_core::migration::IGNORED {
        if params.contains_key(name) {
            println!("# not needed: {name} ({why})");
        }
    }
    if m.refused.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for r in &m.refused {
        eprintln!("keyguard: cannot migrate: {r}");
    }
    Ok(ExitCode::from(1))
}

/// A value as a shell word (single-quoted when it holds anything but safe characters).
fn quoted(v: &str) -> String {
    if !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@+=,".contains(&b))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}
