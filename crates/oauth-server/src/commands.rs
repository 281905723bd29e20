//! The operator commands: `gen-secret`, `hash-secret`, `check-config`,
//! `keys rotate`.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use oauth_jwt::KeyRing;
use oauth_runtime::credentials::{generate_client_secret, hash_argon2, hash_sha256};

use crate::config::{Backend, Config, KeySource, USAGE};

/// `gen-secret`: a new client secret, then its `$sha256$` hash, one a line.
pub(crate) fn gen_secret() -> ExitCode {
    match generate_client_secret() {
        Ok((secret, hash)) => {
            println!("{secret}");
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `hash-secret [--sha256]`.
pub(crate) fn hash_secret(sha256: bool) -> ExitCode {
    let mut raw = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut raw) {
        eprintln!("error: cannot read standard input: {e}");
        return ExitCode::FAILURE;
    }
    let Ok(mut secret) = String::from_utf8(raw) else {
        eprintln!("error: the secret is not UTF-8");
        return ExitCode::from(USAGE);
    };
    if secret.ends_with("\r\n") {
        secret.truncate(secret.len() - 2);
    } else if secret.ends_with('\n') {
        secret.truncate(secret.len() - 1);
    }
    if secret.is_empty() {
        // An empty secret is always a mistake (an unset variable, an empty
        // file), and no client could present it: an empty parameter counts as
        // omitted (RFC 6749 3.1).
        eprintln!("error: the secret is empty (standard input had nothing but at most one newline)");
        return ExitCode::from(USAGE);
    }
    let hashed = if sha256 { hash_sha256(&secret) } else { hash_argon2(&secret) };
    match hashed {
        Ok(h) => {
            println!("{h}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(USAGE)
        }
    }
}

/// `check-config --config FILE`: every problem, exit 2 on any error.
pub(crate) fn check_config(path: &Path) -> ExitCode {
    match Config::load(path).report() {
        Ok(_) => {
            // On stdout, the command's answer; warnings went to stderr.
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// `keys rotate --config FILE`.
pub(crate) fn rotate_keys(path: &Path) -> ExitCode {
    let config = match Config::load(path).report() {
        Ok(c) => c,
        Err(code) => return code,
    };
    // With a key_file the access-token key is the file's (rotated by
    // replacing it); the ID-token key is still the store's, and rotates here.
    let id_token_key_only = matches!(config.tokens.key, KeySource::File(_));
    if config.store.backend == Backend::Mem {
        eprintln!("error: {}", crate::error::Error::MemKeepsNoKeys);
        return ExitCode::from(USAGE);
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        eprintln!("error: cannot start the runtime");
        return ExitCode::FAILURE;
    };
    // PostgreSQL is shared by running nodes; they verify the new key within
    // seconds. sled must be had alone.
    let store = match runtime.block_on(crate::store::open_exclusive(&config.store)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now = oauth_core::Clock::now(&oauth_runtime::credentials::SystemClock);
    let rotated = if id_token_key_only {
        runtime.block_on(KeyRing::rotate_id_token_key(&*store, now)).map(|kid| vec![kid])
    } else {
        runtime.block_on(KeyRing::rotate(&*store, config.tokens.signing_alg, now))
    };
    match rotated {
        Ok(kids) => {
            // One line per new key: the access-token key first, then the
            // RS256 ID-token key (when it is another key).
            for kid in &kids {
                println!("{kid}");
            }
            eprintln!("new signing keys {}; they sign from the next start", kids.join(", "));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
