//! `schemas/*.json` are the boundary types' schemas as the code generates them now.
//! `FIREBREAK_WRITE_SCHEMAS=1 cargo test -p firebreak --test schemas` (or `make schemas`)
//! rewrites them.

use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"))
}

#[test]
fn the_schemas_in_the_repository_are_current() {
    let write = std::env::var("FIREBREAK_WRITE_SCHEMAS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    let all = firebreak::schemas::all();
    for (name, schema) in &all {
        let path = dir().join(format!("{name}.json"));
        let want = firebreak::schemas::text(schema);
        if write {
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&path, &want).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale schemas (run `make schemas`): {stale:?}"
    );
    let files = std::fs::read_dir(dir()).unwrap().count();
    assert_eq!(files, all.len(), "schemas/ holds a file no type generates");
}
