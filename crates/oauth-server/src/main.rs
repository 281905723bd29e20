//! `oauth-server`: the oauth-rs authorization server.
//!
//! This binary is the only part of oauth-rs that reads configuration files and
//! environment variables. It loads and checks the configuration
//! ([`config`]), wires the crates together ([`run`]), and offers the operator
//! commands: `gen-secret`, `hash-secret`, `check-config` and `keys rotate`,
//! and `accounts ...` and `clients ...` over a running server's admin API
//! ([`admin_cli`]).
//!
//! Exit codes: 0 success, 2 bad usage or configuration, 1 runtime failure.

#![forbid(unsafe_code)]

mod admin_cli;
mod commands;
mod config;
mod error;
mod logging;
mod run;
mod store;
mod throttle_cache;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// An OAuth 2.0 / 2.1 authorization server.
#[derive(Parser)]
#[command(name = "oauth-server", version)]
struct Cli {
    /// The configuration file. Without it the server runs on built-in defaults:
    /// a sled store in ./data, 127.0.0.1:8080, and no clients.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The admin listener's base URL, without /admin, for `accounts` and
    /// `clients` (else OAUTH_ADMIN_URL, else http://127.0.0.1:8081).
    #[arg(long, value_name = "URL", global = true)]
    admin_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print a new client secret (32 random bytes, base64url without padding)
    /// on the first line and its `$sha256$` hash on the second. Give the secret
    /// to the client; put the hash in its `client_secret_hash`.
    GenSecret,
    /// Hash a secret read from standard input (one trailing newline is dropped;
    /// empty input is refused).
    HashSecret {
        /// Print `$sha256$<hex>` instead of Argon2id; for machine-generated
        /// client secrets of at least 32 bytes only.
        #[arg(long)]
        sha256: bool,
    },
    /// Check a configuration file and print every problem with its key.
    CheckConfig {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Manage the accounts of a running server through its admin API
    /// (token in OAUTH_ADMIN_TOKEN).
    Accounts {
        #[command(subcommand)]
        action: admin_cli::AccountsCommand,
    },
    /// Manage the clients of a running server through its admin API (token
    /// in OAUTH_ADMIN_TOKEN).
    Clients {
        #[command(subcommand)]
        action: admin_cli::ClientsCommand,
    },
    /// Write a consistent copy of a running server's sled store to its
    /// `admin.backup_dir`, through the admin API; prints where it went.
    Backup,
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new signing key; it signs from each node's next start. With sled,
    /// stop the server first; PostgreSQL nodes keep running and verify the new
    /// key within 10 seconds (docs/deployment.md).
    Rotate {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::GenSecret) => commands::gen_secret(),
        Some(Command::HashSecret { sha256 }) => commands::hash_secret(sha256),
        Some(Command::CheckConfig { config }) => commands::check_config(&config),
        Some(Command::Keys { action: KeysCommand::Rotate { config } }) => commands::rotate_keys(&config),
        Some(Command::Accounts { action }) => admin_cli::accounts(cli.admin_url, action),
        Some(Command::Clients { action }) => admin_cli::clients(cli.admin_url, action),
        Some(Command::Backup) => admin_cli::backup(cli.admin_url),
        None => run::main(cli.config.as_deref()),
    }
}
