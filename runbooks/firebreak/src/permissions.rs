//! Each runbook declares the IAM actions it calls in `permissions.json` beside its code.
//! These helpers let a runbook's tests check that the declaration and the SDK calls in its
//! source are the same set, so the role the infra builds cannot drift from the code.

use std::collections::BTreeSet;
use std::path::Path;

/// `describe_instances` → `DescribeInstances`.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The IAM action that authorises an API operation: mostly `service:Operation`, but AWS
/// authorises `BatchUpdateFindingsV2` as `securityhub:BatchUpdateFindings` ("both use
/// securityhub:BatchUpdateFindings in the Action element of an IAM policy statement").
/// S3's Block Public Access operations are authorised as `s3:…BucketPublicAccessBlock`.
pub fn iam_action(service: &str, operation: &str) -> String {
    match (service, operation) {
        ("securityhub", "BatchUpdateFindingsV2") => "securityhub:BatchUpdateFindings".into(),
        ("s3", "GetPublicAccessBlock") => "s3:GetBucketPublicAccessBlock".into(),
        ("s3", "PutPublicAccessBlock") => "s3:PutBucketPublicAccessBlock".into(),
        _ => format!("{service}:{operation}"),
    }
}

/// Every IAM action one call may need: S3 authorises object tagging as
/// `s3:GetObjectVersionTagging` when the request names a version, else
/// `s3:GetObjectTagging`, so a call that may name one needs both.
pub fn iam_actions(service: &str, operation: &str) -> Vec<String> {
    let one = iam_action(service, operation);
    match (service, operation) {
        ("s3", "GetObjectTagging" | "PutObjectTagging") => {
            let versioned = one.replace("ObjectTagging", "ObjectVersionTagging");
            vec![one, versioned]
        }
        _ => vec![one],
    }
}

/// The actions a `permissions.json` declares.
pub fn declared_actions(permissions_json: &str) -> Result<BTreeSet<String>, String> {
    let v: serde_json::Value = serde_json::from_str(permissions_json).map_err(|e| e.to_string())?;
    let statements = v["statements"].as_array().ok_or("no statements array")?;
    let mut out = BTreeSet::new();
    for s in statements {
        for a in s["actions"].as_array().ok_or("statement without actions")? {
            out.insert(a.as_str().ok_or("action is not a string")?.to_owned());
        }
    }
    Ok(out)
}

/// Every `<client>.<operation>()` call in the `.rs` files of `src_dir`, before the first
/// `#[cfg(test)] mod`, for clients named after their service (`ec2`, `iam`, `ssm`, …):
/// `ec2.describe_instances()` → `ec2:DescribeInstances`.
pub fn sdk_calls_in_source(src_dir: &Path, services: &[&str]) -> std::io::Result<BTreeSet<String>> {
    let mut calls = BTreeSet::new();
    for entry in std::fs::read_dir(src_dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        // Comment lines out (a comment that names a call makes none), then whitespace out,
        // so that calls split over lines read as one; test modules off.
        let uncommented: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let squeezed: String = uncommented.chars().filter(|c| !c.is_whitespace()).collect();
        let code = squeezed.split("#[cfg(test)]mod").next().unwrap_or("");
        for service in services {
            let marker = format!("{service}.");
            for part in code.split(marker.as_str()).skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                // `clone()` is the client's own (Rust) method, no AWS operation.
                if !name.is_empty() && name != "clone" && part[name.len()..].starts_with("()") {
                    calls.insert(format!("{service}:{}", pascal(&name)));
                }
            }
        }
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_clones_are_no_calls() {
        let dir = std::env::temp_dir().join(format!("firebreak-scan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("main.rs"),
            "// ec2.delete_vpc() is never called here\nfn f() { let c = ec2.clone(); ec2\n  .describe_instances()\n  .send(); }\n",
        )
        .unwrap();
        let calls = sdk_calls_in_source(&dir, &["ec2"]).unwrap();
        assert_eq!(
            calls.into_iter().collect::<Vec<_>>(),
            ["ec2:DescribeInstances"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
