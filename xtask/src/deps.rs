//! The dependency rules of ARCHITECTURE.md, checked from `cargo metadata`.
//!
//! Each rule names a crate and the crates it must not reach through its
//! normal (not dev or build) dependencies, with the invariant it keeps. Every
//! workspace crate appears in [`RULES`] or in [`FREE`], so a new crate is a
//! decision, not an oversight (a test checks it).

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// Crates that do IO or run an executor.
const IO: &[&str] = &["tokio", "hyper", "sled", "mio", "socket2", "tokio-postgres", "reqwest"];

/// Crates that read the clock or the OS's randomness; `oauth-core` gets both
/// only through its `Clock` and `SecretSource` traits. (`uuid`'s `v4` feature
/// would bring `getrandom` back.)
const RANDOMNESS: &[&str] = &["getrandom", "rand", "rand_core", "chrono"];

/// Crates that speak HTTP; only `oauth-http` (and what sits above it) may.
const HTTP: &[&str] = &["hyper", "http", "oauth-http"];

/// The OpenAPI generator: the admin API's description is `oauth-http`'s, made
/// from its own wire types, so the pure core never carries it.
const OPENAPI: &[&str] = &["utoipa", "utoipa-gen"];

/// One rule: `krate` must not reach any of `forbidden`.
struct Rule {
    krate: &'static str,
    forbidden: &'static [&'static [&'static str]],
    invariant: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        krate: "oauth-core",
        forbidden: &[IO, HTTP, RANDOMNESS],
        invariant: "oauth-core does no IO: no tokio, no hyper, no sled, no clock or randomness but its traits",
    },
    Rule {
        krate: "oauth-core",
        forbidden: &[OPENAPI],
        invariant: "oauth-core knows nothing of OpenAPI: oauth-http maps its types to wire types",
    },
    Rule { krate: "oauth-runtime", forbidden: &[HTTP], invariant: "only oauth-http knows HTTP" },
    Rule { krate: "oauth-jwt", forbidden: &[HTTP], invariant: "only oauth-http knows HTTP" },
    Rule { krate: "oauth-medmij", forbidden: &[HTTP], invariant: "only oauth-http knows HTTP" },
    Rule { krate: "oauth-store-mem", forbidden: &[HTTP], invariant: "only oauth-http knows HTTP" },
    Rule { krate: "oauth-store-sled", forbidden: &[HTTP], invariant: "only oauth-http knows HTTP" },
    Rule { krate: "oauth-store-postgres", forbidden: &[HTTP], invariant: "only oauth-http knows HTTP" },
    Rule { krate: "oauth-store-conformance", forbidden: &[HTTP], invariant: "only oauth-http knows HTTP" },
    Rule {
        krate: "oauth-bench",
        forbidden: &[&["oauth-http", "oauth-server"]],
        invariant: "the bench drives oauth-server as a process and links only oauth-runtime",
    },
];

/// Workspace crates no rule limits: the binary that wires everything, the
/// front end itself, and the build tool.
const FREE: &[&str] = &["oauth-server", "oauth-http", "xtask"];

/// Prints every violation; true when there is none.
pub(crate) fn check() -> bool {
    let graph = match Graph::load() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("could not read cargo metadata: {e}");
            return false;
        }
    };
    let mut ok = true;
    for v in violations(&graph) {
        eprintln!("{v}");
        ok = false;
    }
    for name in graph.workspace_crates() {
        if !RULES.iter().any(|r| r.krate == name) && !FREE.contains(&name.as_str()) {
            eprintln!("{name} is in no dependency rule: add it to RULES or FREE in xtask/src/deps.rs");
            ok = false;
        }
    }
    if ok {
        eprintln!("{} dependency rules hold", RULES.len());
    }
    ok
}

/// Crates that only the named workspace crates may depend on directly, with
/// the invariant each keeps.
const ONLY: &[(&str, &[&str], &str)] = &[(
    "jsonwebtoken",
    // The bench measures the raw cost of an ES256 signature with it.
    &["oauth-jwt", "oauth-bench"],
    "only oauth-jwt knows JWT",
)];

fn violations(graph: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for (dep, allowed, invariant) in ONLY {
        for user in graph.direct_users(dep) {
            if !allowed.contains(&user.as_str()) {
                out.push(format!("{user} depends on {dep}, but {invariant} (ARCHITECTURE.md)"));
            }
        }
    }
    for rule in RULES {
        let reached = match graph.reach(rule.krate) {
            Ok(r) => r,
            Err(e) => {
                out.push(e);
                continue;
            }
        };
        for bad in rule.forbidden.iter().flat_map(|l| l.iter()).filter(|f| reached.contains(**f)) {
            out.push(format!(
                "{} reaches {bad}, but {} (ARCHITECTURE.md); `cargo tree -p {} -e normal -i {bad}` shows the path",
                rule.krate, rule.invariant, rule.krate
            ));
        }
    }
    out
}

/// The resolved dependency graph of the workspace on Linux.
struct Graph {
    meta: Value,
}

impl Graph {
    fn load() -> Result<Self, String> {
        let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["metadata", "--format-version", "1", "--filter-platform", "x86_64-unknown-linux-gnu"])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Graph { meta: serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())? })
    }

    fn workspace_crates(&self) -> Vec<String> {
        let members: BTreeSet<&str> =
            self.meta["workspace_members"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        self.meta["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// Workspace crates with a normal (not dev or build) dependency on `dep`.
    fn direct_users(&self, dep: &str) -> Vec<String> {
        let members = self.workspace_crates();
        self.meta["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["name"].as_str().is_some_and(|n| members.iter().any(|m| m == n)))
            .filter(|p| {
                p["dependencies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|d| d["name"].as_str() == Some(dep) && d["kind"].is_null())
            })
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// Names of every crate `krate` reaches through normal dependencies, with
    /// the features the workspace resolves.
    fn reach(&self, krate: &str) -> Result<BTreeSet<String>, String> {
        let names: HashMap<&str, &str> = self.meta["packages"]
            .as_array()
            .ok_or("no packages")?
            .iter()
            .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
            .collect();
        let nodes: HashMap<&str, &Value> = self.meta["resolve"]["nodes"]
            .as_array()
            .ok_or("no resolve graph")?
            .iter()
            .filter_map(|n| Some((n["id"].as_str()?, n)))
            .collect();
        let root = names.iter().find(|(_, n)| **n == krate).map(|(id, _)| *id).ok_or(format!("no {krate} package"))?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dependency_rule_holds() {
        let graph = Graph::load().unwrap();
        assert!(graph.reach("oauth-core").unwrap().contains("time"), "the walk found core's dependencies");
        assert_eq!(violations(&graph), Vec::<String>::new());
    }

    #[test]
    fn every_workspace_crate_is_in_a_rule_or_named_free() {
        let graph = Graph::load().unwrap();
        for name in graph.workspace_crates() {
            assert!(
                RULES.iter().any(|r| r.krate == name) || FREE.contains(&name.as_str()),
                "{name} is in no dependency rule"
            );
        }
    }

    #[test]
    fn a_rule_that_is_broken_is_reported() {
        // The walk must see through a crate: oauth-server reaches hyper via oauth-http.
        let graph = Graph::load().unwrap();
        assert!(graph.reach("oauth-server").unwrap().contains("hyper"));
    }
}
