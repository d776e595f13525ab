#![allow(dead_code)]
use std::path::PathBuf;

use firebreak::finding::{parse_input_bytes, ParsedInput};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture_path(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/findings").join(name)
}

pub fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture_bytes(name)).expect("fixture is JSON")
}

pub fn fixture(name: &str) -> ParsedInput {
    parse_input_bytes(&fixture_bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The public sample events (`tests/fixtures/samples`, sources in its SOURCE.txt), or
/// `FIREBREAK_SAMPLES_DIR`. Missing samples fail the test rather than skip it.
pub fn samples_dir() -> PathBuf {
    let dir = std::env::var_os("FIREBREAK_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tests/fixtures/samples"));
    assert!(
        dir.is_dir(),
        "sample events not found at {}; set FIREBREAK_SAMPLES_DIR",
        dir.display()
    );
    dir
}
