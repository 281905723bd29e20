//! The dependency rules of ARCHITECTURE.md, checked from `cargo metadata`:
//! `oauth-core` reaches no IO crate through its normal dependencies.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// Crates that do IO or run an executor; `oauth-core` must not reach any of them.
const FORBIDDEN_IN_CORE: &[&str] = &["tokio", "hyper", "sled", "mio", "socket2", "tokio-postgres", "reqwest"];

/// Prints every violation; true when there is none.
pub(crate) fn check() -> bool {
    match core_dependencies() {
        Ok(deps) => {
            let bad: Vec<&str> = FORBIDDEN_IN_CORE.iter().copied().filter(|f| deps.contains(*f)).collect();
            if bad.is_empty() {
                eprintln!("oauth-core reaches {} crates, none of them IO crates", deps.len());
                true
            } else {
                eprintln!("oauth-core must do no IO, but its normal dependencies reach: {}", bad.join(", "));
                eprintln!(
                    "see ARCHITECTURE.md, `oauth-core`; `cargo tree -p oauth-core -e normal -i <crate>` shows the path"
                );
                false
            }
        }
        Err(e) => {
            eprintln!("could not read cargo metadata: {e}");
            false
        }
    }
}

/// Names of every crate `oauth-core` reaches through normal (not dev or build)
/// dependencies, with its default features.
fn core_dependencies() -> Result<BTreeSet<String>, String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--filter-platform", "x86_64-unknown-linux-gnu"])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let meta: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .ok_or("no packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .ok_or("no resolve graph")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let root = names.iter().find(|(_, n)| **n == "oauth-core").map(|(id, _)| *id).ok_or("no oauth-core package")?;

    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        let Some(node) = nodes.get(id) else { continue };
        for dep in node["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"].as_array().into_iter().flatten().any(|k| k["kind"].is_null());
            let Some(dep_id) = dep["pkg"].as_str() else { continue };
            if normal && seen.insert(names.get(dep_id).copied().unwrap_or(dep_id).to_owned()) {
                stack.push(dep_id);
            }
        }
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    #[test]
    fn core_has_no_io_dependencies() {
        let deps = super::core_dependencies().unwrap();
        assert!(deps.contains("time"), "the walk found core's dependencies: {deps:?}");
        for f in super::FORBIDDEN_IN_CORE {
            assert!(!deps.contains(*f), "oauth-core reaches {f}");
        }
    }
}
