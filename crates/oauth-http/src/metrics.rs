//! Counters for `/metrics`, in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use oauth_runtime::StoreTimings;

/// Request, token and authentication-failure counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    tokens: Mutex<BTreeMap<String, u64>>,
    failures: Mutex<BTreeMap<&'static str, u64>>,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    // A poisoned counter map is still a map of numbers: keep counting.
    let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
    *m.entry(key).or_default() += 1;
}

impl Metrics {
    pub(crate) fn request(&self, route: &'static str, status: u16) {
        bump(&self.requests, (route, status));
    }

    pub(crate) fn token_issued(&self, grant: &str) {
        // Only the known grant names become labels, so a client cannot create
        // unbounded series.
        let grant = oauth_core::GrantType::parse(grant).map(|g| g.as_str()).unwrap_or("unknown");
        bump(&self.tokens, grant.to_owned());
    }

    pub(crate) fn auth_failure(&self, kind: &'static str) {
        bump(&self.failures, kind);
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP oauth_http_requests_total Requests answered, by route and status.");
        let _ = writeln!(out, "# TYPE oauth_http_requests_total counter");
        for ((route, status), n) in self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "oauth_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP oauth_tokens_issued_total Token responses, by grant type.");
        let _ = writeln!(out, "# TYPE oauth_tokens_issued_total counter");
        for (grant, n) in self.tokens.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "oauth_tokens_issued_total{{grant_type=\"{grant}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP oauth_auth_failures_total Failed logins, password grants and client authentications."
        );
        let _ = writeln!(out, "# TYPE oauth_auth_failures_total counter");
        for (kind, n) in self.failures.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "oauth_auth_failures_total{{kind=\"{kind}\"}} {n}");
        }
        out
    }
}

/// Appends the store's operation timings in the Prometheus text format (a
/// summary without quantiles).
pub(crate) fn render_store_timings(timings: &StoreTimings, out: &mut String) {
    let _ = writeln!(out, "# HELP oauth_store_operation_seconds Time store operations took, once they had the store.");
    let _ = writeln!(out, "# TYPE oauth_store_operation_seconds summary");
    for (op, count, total) in timings.snapshot() {
        let _ = writeln!(out, "oauth_store_operation_seconds_sum{{operation=\"{op}\"}} {}", total.as_secs_f64());
        let _ = writeln!(out, "oauth_store_operation_seconds_count{{operation=\"{op}\"}} {count}");
    }
}
