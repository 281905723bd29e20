//! `oauth-server accounts ...`, `oauth-server clients ...` and
//! `oauth-server backup`: the CLI over a running server's admin API (SPEC-2).
//!
//! The admin listener's base URL comes from `--admin-url`, else
//! `OAUTH_ADMIN_URL`, else `http://127.0.0.1:8081`; the token from
//! `OAUTH_ADMIN_TOKEN`, so it never shows in the process list. Answers are
//! printed as JSON on stdout. Exit codes: 0 success, 1 when the server refuses
//! or cannot be reached, 2 on bad usage. Passwords are read from stdin.
//!
//! The client speaks plain HTTP/1.1: the admin listener belongs on loopback
//! or a private network (docs/security.md).

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Subcommand;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::config::USAGE;

/// Where the admin API is when nothing says otherwise.
pub(crate) const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:8081";
/// How long one call may take, connection included.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// `oauth-server accounts ...`
#[derive(Subcommand)]
pub(crate) enum AccountsCommand {
    /// Create an account; its password is read from standard input.
    Add {
        /// The login name.
        username: String,
        /// An attribute, as KEY=VALUE; repeat for more.
        #[arg(long = "attribute", value_name = "KEY=VALUE")]
        attributes: Vec<String>,
    },
    /// Print every account.
    List,
    /// Print one account.
    Show {
        /// The login name.
        username: String,
    },
    /// Disable an account: it cannot log in, and its tokens stop working.
    Disable {
        /// The login name.
        username: String,
    },
    /// Enable a disabled account.
    Enable {
        /// The login name.
        username: String,
    },
    /// Delete an account, its sessions and its consents.
    Remove {
        /// The login name.
        username: String,
    },
    /// Set an account's password, read from standard input.
    SetPassword {
        /// The login name.
        username: String,
    },
}

/// `oauth-server clients ...`
#[derive(Subcommand)]
pub(crate) enum ClientsCommand {
    /// Create a client from RFC 7591 metadata JSON on standard input; prints
    /// it with its generated secret, shown this once.
    Add,
    /// Print every client, the read-only ones included.
    List,
    /// Print one client.
    Show {
        /// The client_id.
        id: String,
    },
    /// Delete a client created through the admin API or by registration.
    Remove {
        /// The client_id.
        id: String,
    },
}

/// Why a command failed, and its exit code.
enum Failure {
    /// Bad usage: 2.
    Usage(String),
    /// Refused or unreachable: 1.
    Refused(String),
}

impl Failure {
    fn exit(self) -> ExitCode {
        match self {
            Failure::Usage(m) => {
                eprintln!("error: {m}");
                ExitCode::from(USAGE)
            }
            Failure::Refused(m) => {
                eprintln!("error: {m}");
                ExitCode::FAILURE
            }
        }
    }
}

/// A connection to one admin API.
struct AdminClient {
    base: String,
    token: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl AdminClient {
    fn new(admin_url: Option<String>) -> Result<Self, Failure> {
        let base = admin_url
            .or_else(|| std::env::var("OAUTH_ADMIN_URL").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_owned());
        let base = base.trim_end_matches('/').to_owned();
        let uri: http::Uri = base.parse().map_err(|_| Failure::Usage(format!("--admin-url {base:?} is not a URL")))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() || uri.path().len() > 1 {
            return Err(Failure::Usage(format!(
                "--admin-url {base:?} must be http://HOST:PORT, without /admin (the admin listener speaks plain HTTP)"
            )));
        }
        let token = std::env::var("OAUTH_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Failure::Usage("set OAUTH_ADMIN_TOKEN to the admin token".into()))?;
        let http = Client::builder(TokioExecutor::new()).build_http();
        Ok(AdminClient { base, token, http })
    }

    /// One call: the status and the JSON answer (`null` for none). A
    /// refusal is a [`Failure::Refused`] naming the server's error.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(&url)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(bytes))
            .map_err(|e| Failure::Usage(format!("cannot build the request: {e}")))?;
        let unreachable = |e: String| Failure::Refused(format!("cannot reach the admin API at {}: {e}", self.base));
        let resp = tokio::time::timeout(CALL_TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| unreachable("no answer within 30 s".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status();
        let raw = tokio::time::timeout(CALL_TIMEOUT, resp.into_body().collect())
            .await
            .map_err(|_| unreachable("the answer did not finish within 30 s".into()))?
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        let value: Value =
            if raw.is_empty() { Value::Null } else { serde_json::from_slice(&raw).unwrap_or(Value::Null) };
        if status.is_success() {
            return Ok(value);
        }
        let description = value.get("error_description").and_then(Value::as_str).unwrap_or("");
        let code = value.get("error").and_then(Value::as_str).unwrap_or("");
        Err(Failure::Refused(match status {
            StatusCode::UNAUTHORIZED => format!("the admin API refused the token in OAUTH_ADMIN_TOKEN ({description})"),
            _ => format!("the admin API answered {status}: {code}: {description}"),
        }))
    }

    /// Every item of a list, following its cursors.
    async fn all(&self, path: &str) -> Result<Value, Failure> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page_path = match &after {
                Some(c) => format!("{path}?limit=1000&after={}", encode(c)),
                None => format!("{path}?limit=1000"),
            };
            let page = self.call(Method::GET, &page_path, None).await?;
            items.extend(page.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
            match page.get("next").and_then(Value::as_str) {
                Some(next) => after = Some(next.to_owned()),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    /// The account named `username`, or a refusal saying there is none.
    async fn account(&self, username: &str) -> Result<Value, Failure> {
        let page = self.call(Method::GET, &format!("/admin/accounts?username={}", encode(username)), None).await?;
        page.get("items")
            .and_then(Value::as_array)
            .and_then(|items| items.first().cloned())
            .ok_or_else(|| Failure::Refused(format!("no account named {username:?}")))
    }

    async fn account_path(&self, username: &str) -> Result<String, Failure> {
        let account = self.account(username).await?;
        let id = account.get("id").and_then(Value::as_str).unwrap_or_default();
        Ok(format!("/admin/accounts/{}", encode(id)))
    }
}

/// `s` percent-encoded for a path segment or a query value.
fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Standard input, less one trailing newline.
fn stdin_text(what: &str) -> Result<String, Failure> {
    let mut raw = Vec::new();
    std::io::stdin().read_to_end(&mut raw).map_err(|e| Failure::Refused(format!("cannot read standard input: {e}")))?;
    let mut text = String::from_utf8(raw).map_err(|_| Failure::Usage(format!("the {what} is not UTF-8")))?;
    if text.ends_with("\r\n") {
        text.truncate(text.len() - 2);
    } else if text.ends_with('\n') {
        text.truncate(text.len() - 1);
    }
    if text.is_empty() {
        return Err(Failure::Usage(format!("no {what} on standard input")));
    }
    Ok(text)
}

fn print(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(_) => println!("{value}"),
    }
}

fn run(admin_url: Option<String>, work: impl AsyncFnOnce(AdminClient) -> Result<Value, Failure>) -> ExitCode {
    let client = match AdminClient::new(admin_url) {
        Ok(c) => c,
        Err(f) => return f.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return Failure::Refused(format!("cannot start the runtime: {e}")).exit(),
    };
    match runtime.block_on(work(client)) {
        Ok(Value::Null) => ExitCode::SUCCESS,
        Ok(v) => {
            print(&v);
            ExitCode::SUCCESS
        }
        Err(f) => f.exit(),
    }
}

/// `oauth-server accounts ...`
pub(crate) fn accounts(admin_url: Option<String>, command: AccountsCommand) -> ExitCode {
    // Bad usage is found before anything is sent.
    let attributes = match &command {
        AccountsCommand::Add { attributes, .. } => {
            let mut map = serde_json::Map::new();
            for a in attributes {
                match a.split_once('=') {
                    Some((k, v)) if !k.is_empty() => {
                        map.insert(k.to_owned(), Value::String(v.to_owned()));
                    }
                    _ => return Failure::Usage(format!("--attribute {a:?} must be KEY=VALUE")).exit(),
                }
            }
            map
        }
        _ => serde_json::Map::new(),
    };
    run(admin_url, async move |c| match command {
        AccountsCommand::Add { username, .. } => {
            let password = stdin_text("password")?;
            let body = json!({ "username": username, "password": password, "attributes": attributes });
            c.call(Method::POST, "/admin/accounts", Some(&body)).await
        }
        AccountsCommand::List => c.all("/admin/accounts").await,
        AccountsCommand::Show { username } => c.account(&username).await,
        AccountsCommand::Disable { username } => {
            let path = c.account_path(&username).await?;
            c.call(Method::PATCH, &path, Some(&json!({ "disabled": true }))).await
        }
        AccountsCommand::Enable { username } => {
            let path = c.account_path(&username).await?;
            c.call(Method::PATCH, &path, Some(&json!({ "disabled": false }))).await
        }
        AccountsCommand::Remove { username } => {
            let path = c.account_path(&username).await?;
            c.call(Method::DELETE, &path, None).await
        }
        AccountsCommand::SetPassword { username } => {
            let password = stdin_text("password")?;
            let path = c.account_path(&username).await?;
            c.call(Method::PATCH, &path, Some(&json!({ "password": password }))).await
        }
    })
}

/// `oauth-server clients ...`
pub(crate) fn clients(admin_url: Option<String>, command: ClientsCommand) -> ExitCode {
    run(admin_url, async move |c| match command {
        ClientsCommand::Add => {
            let text = stdin_text("client metadata")?;
            let body: Value = serde_json::from_str(&text)
                .map_err(|e| Failure::Usage(format!("standard input is not JSON client metadata: {e}")))?;
            c.call(Method::POST, "/admin/clients", Some(&body)).await
        }
        ClientsCommand::List => c.all("/admin/clients").await,
        ClientsCommand::Show { id } => c.call(Method::GET, &format!("/admin/clients/{}", encode(&id)), None).await,
        ClientsCommand::Remove { id } => c.call(Method::DELETE, &format!("/admin/clients/{}", encode(&id)), None).await,
    })
}

/// `oauth-server backup`
pub(crate) fn backup(admin_url: Option<String>) -> ExitCode {
    run(admin_url, async move |c| c.call(Method::POST, "/admin/backup", None).await)
}
