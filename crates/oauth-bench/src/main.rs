//! The load side of `cargo xtask bench`.
//!
//! `cargo xtask bench` builds this and `oauth-server` in release mode and runs
//! `oauth-bench run`. One run measures, on 127.0.0.1 only:
//!
//! - the raw limits (ES256 sign and verify, Argon2id verify, a durable sled
//!   write) in this process ([`limits`]);
//! - a ceiling ([`ceiling`]): a minimal hyper server on the same stack,
//!   answering with the route's real response body;
//! - `oauth-server` under a bench config ([`process`]), loaded by `wrk` or by
//!   the flow driver ([`load`]) at each concurrency;
//!
//! and prints one table of ratios and CPU time per request ([`run`]), which do
//! not depend on how busy the machine was. `--soak SECS` runs mixed load
//! instead and fails if the server's memory grows. `peer SCRIPT` compares the
//! server with panva's oidc-provider ([`peer`]).
//!
//! Usage: `oauth-bench run [--smoke] [--only SCENARIO,...]`, `oauth-bench run --soak SECS` or
//! `oauth-bench peer SCRIPT [--smoke]`, and internally
//! `oauth-bench ceiling BODY_FILE CONTENT_TYPE`.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

mod ceiling;
mod client_jwt;
mod limits;
mod load;
mod peer;
mod process;
mod procfs;
mod run;

/// The bench account's password (the account exists only in a temp dir).
const BENCH_PASSWORD: &str = "bench-password-for-a-throwaway-account";

/// Why a bench run could not be made (a missed target is not an error).
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("reading /proc: {0}")]
    Proc(String),
    #[error("{0}")]
    Setup(String),
    #[error("jwt: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("http: {0}")]
    Http(#[from] http::Error),
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: oauth-bench run [--smoke] [--only SCENARIO[,SCENARIO...]] | run --soak SECS | peer SCRIPT [--smoke]"
    );
    ExitCode::from(2)
}

/// The settings of a bench run: `--smoke` runs each load for a second;
/// `--only` names the scenarios to run (for profiling one route).
fn settings(args: &[&str]) -> Option<run::Settings> {
    let mut settings = run::Settings {
        run_time: Duration::from_secs(5),
        limit_time: Duration::from_secs(1),
        levels: vec![1, 32, 256],
        only: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match *arg {
            "--smoke" => {
                settings.run_time = Duration::from_secs(1);
                settings.limit_time = Duration::from_millis(300);
            }
            "--only" => settings.only = args.next()?.split(',').map(str::to_owned).collect(),
            _ => return None,
        }
    }
    Some(settings)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["ceiling", body, content_type] => match std::fs::read(body) {
            Ok(bytes) => ceiling::serve(bytes, content_type.to_owned()).map(|()| (String::new(), true)),
            Err(e) => Err(Error::Io(e)),
        },
        ["run", "--soak", secs] => match secs.parse() {
            Ok(secs) => run::soak(secs),
            Err(_) => Err(Error::Setup(format!("--soak takes seconds, not {secs:?}"))),
        },
        ["peer", script, ref rest @ ..] => match settings(rest) {
            Some(settings) => peer::compare(std::path::Path::new(script), &settings),
            None => return usage(),
        },
        ["run", ref rest @ ..] => match settings(rest) {
            Some(settings) => run::bench(&settings),
            None => return usage(),
        },
        _ => return usage(),
    };
    match outcome {
        Ok((report, ok)) => {
            println!("{report}");
            if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("oauth-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
