//! [`SecurityEventLog`]: where the server's flows report security events. Each
//! becomes a WARN line in the log and a count in
//! `oauth_security_events_total{kind}` at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use oauth_core::{SecurityEvent, SecurityEventKind, SecurityEvents};

/// The server's [`SecurityEvents`]: logs each event at WARN and counts it by
/// kind. Give the same one to the `Services` of the authority and to
/// [`Frontend::with_security_events`](crate::Frontend::with_security_events),
/// which shows its counts at `/metrics`.
///
/// A line names the kind, the client and the grant where the event has them,
/// and the peer address of a lockout; never a code, token, secret or username
/// (a username field sometimes holds a mistyped password).
#[derive(Debug, Default)]
pub struct SecurityEventLog {
    counts: Mutex<BTreeMap<SecurityEventKind, u64>>,
}

impl SecurityEvents for SecurityEventLog {
    fn report(&self, event: &SecurityEvent) {
        let kind = event.kind();
        {
            // A poisoned map is still a map of numbers: keep counting.
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            *counts.entry(kind).or_default() += 1;
        }
        match event {
            SecurityEvent::CodeReplayed { client_id, grant } => tracing::warn!(
                kind = %kind,
                client_id = %client_id,
                grant = %grant,
                "security event: an authorization code was presented again; the tokens minted from it are revoked"
            ),
            SecurityEvent::RefreshTokenReused { client_id, grant } => tracing::warn!(
                kind = %kind,
                client_id = %client_id,
                grant = %grant,
                "security event: a rotated refresh token was presented again; its family is revoked"
            ),
            SecurityEvent::ThrottleLockout { subject, peer } => tracing::warn!(
                kind = %kind,
                subject = %subject.as_str(),
                peer = %peer.map_or_else(|| "-".to_owned(), |p| p.to_string()),
                "security event: an attempt was refused, past its failure limit"
            ),
            SecurityEvent::DpopProofReplayed { jkt } => tracing::warn!(
                kind = %kind,
                jkt = %jkt,
                "security event: a DPoP proof was presented again (its jti); refused"
            ),
            SecurityEvent::ClientAssertionReplayed { client_id } => tracing::warn!(
                kind = %kind,
                client_id = %client_id,
                "security event: a client assertion was presented again (its jti); refused"
            ),
            // Kinds added later are still logged and counted, with what every
            // event has.
            _ => tracing::warn!(kind = %kind, "security event"),
        }
    }
}

impl SecurityEventLog {
    /// The count of `kind` so far.
    pub fn count(&self, kind: SecurityEventKind) -> u64 {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).get(&kind).copied().unwrap_or(0)
    }

    /// Appends the counter in the Prometheus text format, every kind included
    /// (at 0 before it first happens, so an alert on its rate works from the
    /// start).
    pub(crate) fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP oauth_security_events_total Replayed codes, DPoP proofs and client assertions, reused refresh tokens and throttle lockouts."
        );
        let _ = writeln!(out, "# TYPE oauth_security_events_total counter");
        for kind in SecurityEventKind::ALL {
            let _ = writeln!(out, "oauth_security_events_total{{kind=\"{kind}\"}} {}", self.count(kind));
        }
    }
}
