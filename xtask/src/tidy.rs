//! Tidy checks over the workspace's sources, run as ordinary tests.

use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![workspace_root().join("crates"), workspace_root().join("xtask")];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    dirs.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 10, "found the sources");
    files
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let missing: Vec<_> =
        rust_files().into_iter().filter(|f| !fs::read_to_string(f).unwrap().trim_start().starts_with("//!")).collect();
    assert!(missing.is_empty(), "files without a leading //! doc: {missing:?}");
}

#[test]
fn no_stubs_left_in_the_code() {
    let needles = [concat!("todo", "!("), concat!("unimplemented", "!(")];
    let stubs: Vec<_> = rust_files()
        .into_iter()
        .filter(|f| {
            let text = fs::read_to_string(f).unwrap();
            needles.iter().any(|n| text.contains(n))
        })
        .collect();
    assert!(stubs.is_empty(), "stubs in: {stubs:?}");
}

#[test]
fn every_crate_forbids_unsafe_code() {
    let crates = fs::read_dir(workspace_root().join("crates")).unwrap();
    for c in crates {
        let src = c.unwrap().path().join("src");
        let root = ["lib.rs", "main.rs"].iter().map(|f| src.join(f)).find(|p| p.exists());
        let root = root.unwrap_or_else(|| panic!("{} has no lib.rs or main.rs", src.display()));
        let text = fs::read_to_string(&root).unwrap();
        assert!(text.contains("#![forbid(unsafe_code)]"), "{} lacks #![forbid(unsafe_code)]", root.display());
    }
}

/// The code of each `.rs` file under `crates/*/src`, without its `#[cfg(test)]`
/// module (tests may name what they assert), with the crate's name.
fn library_code() -> Vec<(String, PathBuf, String)> {
    let mut out = Vec::new();
    for c in fs::read_dir(workspace_root().join("crates")).unwrap() {
        let dir = c.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let src = dir.join("src");
        for f in rust_files().into_iter().filter(|f| f.starts_with(&src)) {
            let text = fs::read_to_string(&f).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("").to_owned();
            out.push((name.clone(), f, code));
        }
    }
    out
}

#[test]
fn every_wire_error_code_comes_from_oauth_core() {
    // RFC 6749 4.1.2.1 and 5.2, RFC 6750 3.1: oauth_core::ErrorCode spells them.
    let codes = [
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "unsupported_response_type",
        "server_error",
        "temporarily_unavailable",
        "invalid_token",
        "insufficient_scope",
    ];
    let mut found = Vec::new();
    for (krate, file, code) in library_code() {
        if krate == "oauth-core" {
            continue;
        }
        for c in codes {
            if code.contains(&format!("\"{c}\"")) || code.contains(&format!("\"error\":\"{c}")) {
                found.push(format!("{}: {c}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "wire error codes written outside oauth_core::Error: {found:#?}");
}

#[test]
fn the_flows_return_values_and_the_edge_decides_their_json() {
    // Token and introspection responses are core values; oauth-http's
    // response.rs gives them their wire shape. A serde derive in flow/ would
    // put the JSON shape back in the core.
    let flows = workspace_root().join("crates/oauth-core/src/flow");
    let derived: Vec<_> = rust_files()
        .into_iter()
        .filter(|f| f.starts_with(&flows))
        .filter(|f| {
            fs::read_to_string(f).unwrap().contains("derive(") && {
                let text = fs::read_to_string(f).unwrap();
                text.contains("Serialize,") || text.contains("Serialize)") || text.contains("Deserialize")
            }
        })
        .collect();
    assert!(derived.is_empty(), "serde derives in oauth-core's flows: {derived:?}");
}

#[test]
fn the_core_never_inspects_an_access_tokens_form() {
    // Whether a token is an access token is the codec's answer
    // (AccessTokenCodec::is_access_token); only oauth-jwt knows JWTs.
    let core = workspace_root().join("crates/oauth-core/src");
    let peeking: Vec<_> = library_code()
        .into_iter()
        .filter(|(_, f, code)| f.starts_with(&core) && (code.contains("contains('.')") || code.contains("split('.')")))
        .map(|(_, f, _)| f)
        .collect();
    assert!(peeking.is_empty(), "oauth-core looks for the dots of a JWT in: {peeking:?}");
}

#[test]
fn nothing_ends_a_test_process_early() {
    // A test binary that calls exit(0) passes whatever it skipped: the
    // PostgreSQL tests once did so without a server. A check that cannot run
    // must fail, saying why.
    let exits: Vec<_> = rust_files()
        .into_iter()
        .filter(|f| f.components().any(|c| c.as_os_str() == "crates"))
        .filter(|f| fs::read_to_string(f).unwrap().contains(concat!("process::", "exit(")))
        .collect();
    assert!(exits.is_empty(), "process::exit in: {exits:?}");
}

#[test]
fn every_crate_front_page_links_the_embedding_examples_and_they_exist() {
    let root = workspace_root();
    let examples = [("oauth-core", "medmij_steps"), ("oauth-http", "embed_http")];
    for (krate, example) in examples {
        let file = root.join("crates").join(krate).join("examples").join(format!("{example}.rs"));
        assert!(file.exists(), "{} is missing", file.display());
    }
    for c in fs::read_dir(root.join("crates")).unwrap() {
        let lib = c.unwrap().path().join("src/lib.rs");
        let Ok(text) = fs::read_to_string(&lib) else { continue };
        for (krate, example) in examples {
            let run = format!("cargo run -p {krate} --example {example}");
            let link = format!("{krate}/examples/{example}.rs");
            assert!(
                text.contains(&run) && text.contains(&link),
                "{} does not link the example {example} ({run})",
                lib.display()
            );
        }
    }
}

#[test]
fn only_the_server_reads_the_environment_at_run_time() {
    // Library code takes its settings as values. The exceptions read their
    // own variables: PostgreSQL test support and store benches, the HTTP
    // bench, and tests.
    let allowed = |f: &Path| {
        let s = f.to_string_lossy();
        s.contains("/crates/oauth-server/src/")
            || s.ends_with("/crates/oauth-store-postgres/src/testing.rs")
            || s.contains("/crates/oauth-store-postgres/src/testing/")
            || s.contains("/benches/")
            || s.contains("/crates/oauth-bench/")
            || s.contains("/tests/")
    };
    let readers: Vec<_> = rust_files()
        .into_iter()
        .filter(|f| f.components().any(|c| c.as_os_str() == "crates") && !allowed(f))
        .filter(|f| {
            let text = fs::read_to_string(f).unwrap();
            text.contains("env::var") || text.contains("env!(") || text.contains("from_default_env")
        })
        .collect();
    assert!(readers.is_empty(), "environment read outside oauth-server: {readers:?}");
}

#[test]
fn every_store_backend_runs_the_whole_conformance_suite() {
    for backend in ["oauth-store-mem", "oauth-store-sled", "oauth-store-postgres"] {
        let file = workspace_root().join("crates").join(backend).join("tests/conformance.rs");
        let text = fs::read_to_string(&file).unwrap_or_default();
        assert!(text.contains("conformance_tests!"), "{} does not run conformance_tests!", file.display());
    }
}

#[test]
fn the_store_signatures_are_written_once() {
    // with_store_methods! is the one list; the trait and the wrappers are
    // generated from it.
    let text = fs::read_to_string(workspace_root().join("crates/oauth-core/src/store.rs")).unwrap();
    let list = text.split("macro_rules! with_store_methods").nth(1).expect("the list");
    let list = list.split("macro_rules!").next().unwrap_or("");
    let names: Vec<&str> =
        list.lines().filter_map(|l| l.trim().strip_prefix("fn ")).filter_map(|l| l.split('(').next()).collect();
    assert!(names.len() >= 20, "read the list: {names:?}");
    for name in names {
        let written = text.matches(&format!("fn {name}(&self")).count();
        assert_eq!(written, 1, "Store::{name} is written {written} times in store.rs");
    }
}

#[test]
fn the_commands_and_serving_do_not_import_each_other() {
    let src = workspace_root().join("crates/oauth-server/src");
    let commands = fs::read_to_string(src.join("commands.rs")).unwrap();
    let run = fs::read_to_string(src.join("run.rs")).unwrap();
    assert!(!commands.contains("crate::run"), "commands.rs uses run.rs");
    assert!(!run.contains("crate::commands"), "run.rs uses commands.rs");
}
