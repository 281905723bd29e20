//! The OAuth Client List: parsing and checks.

use std::collections::BTreeSet;

use oauth_core::ClientId;
use serde::Deserialize;

use crate::Error;

/// The OCL's XML namespace (release 2).
pub const NAMESPACE: &str = "xmlns://afsprakenstelsel.medmij.nl/oauthclientlist/release2/";

/// A checked OAuth Client List.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ocl {
    /// When the list was made, as published.
    pub timestamp: String,
    /// The sequence number; a newer list has a higher one.
    pub sequence: u64,
    /// The clients, in list order.
    pub clients: Vec<OclClient>,
}

/// One client on the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OclClient {
    /// The hostname, which is the `client_id`, spelled as the list spells it.
    /// Requests may name it in any case (hostnames ignore ASCII case); the
    /// sessions, codes and tokens of the client carry this spelling.
    pub hostname: ClientId,
    /// The organisation's name, shown on the consent page.
    pub organisation: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Root {
    #[serde(rename = "@xmlns")]
    xmlns: Option<String>,
    tijdstempel: String,
    volgnummer: u64,
    #[serde(rename = "OAuthclients")]
    clients: Clients,
}

#[derive(Deserialize)]
struct Clients {
    #[serde(rename = "OAuthclient", default)]
    client: Vec<RawClient>,
}

#[derive(Deserialize)]
struct RawClient {
    #[serde(rename = "Hostname")]
    hostname: String,
    #[serde(rename = "OAuthclientOrganisatienaam")]
    organisation: String,
}

impl Ocl {
    /// Parses and checks an OCL document.
    pub fn parse(xml: &str) -> Result<Self, Error> {
        let root: Root = quick_xml::de::from_str(xml).map_err(|e| Error::Malformed(e.to_string()))?;
        if root.xmlns.as_deref() != Some(NAMESPACE) {
            return Err(Error::Namespace);
        }
        let mut seen = BTreeSet::new();
        let mut clients = Vec::new();
        for c in root.clients.client {
            let host = c.hostname.trim();
            if !is_hostname(host) || !seen.insert(host.to_ascii_lowercase()) {
                return Err(Error::Hostname(c.hostname));
            }
            let hostname = ClientId::parse(host).map_err(|_| Error::Hostname(c.hostname.clone()))?;
            clients.push(OclClient { hostname, organisation: c.organisation.trim().to_owned() });
        }
        Ok(Ocl { timestamp: root.tijdstempel, sequence: root.volgnummer, clients })
    }
}

/// A DNS hostname: dot-separated labels of letters, digits and inner hyphens.
fn is_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<OAuthclientlist xmlns="{NAMESPACE}"><Tijdstempel>2026-11-01T09:00:00Z</Tijdstempel><Volgnummer>7</Volgnummer>
<OAuthclients>{body}</OAuthclients></OAuthclientlist>"#
        )
    }

    #[test]
    fn hostnames_are_checked_and_keep_the_lists_spelling() {
        let ocl = Ocl::parse(&doc("<OAuthclient><Hostname> App.Example.ORG </Hostname><OAuthclientOrganisatienaam>A</OAuthclientOrganisatienaam></OAuthclient>")).unwrap();
        assert_eq!(ocl.clients[0].hostname.as_str(), "App.Example.ORG");
        for bad in ["evil.example/path", "a..b", "-a.example", "a b", "", "x@y"] {
            let xml = doc(&format!(
                "<OAuthclient><Hostname>{bad}</Hostname><OAuthclientOrganisatienaam>A</OAuthclientOrganisatienaam></OAuthclient>"
            ));
            assert!(matches!(Ocl::parse(&xml), Err(Error::Hostname(_))), "{bad}");
        }
    }

    #[test]
    fn duplicate_hostnames_are_refused() {
        let one = "<OAuthclient><Hostname>a.example</Hostname><OAuthclientOrganisatienaam>A</OAuthclientOrganisatienaam></OAuthclient>";
        assert!(matches!(Ocl::parse(&doc(&format!("{one}{one}"))), Err(Error::Hostname(_))));
        let upper = one.replace("a.example", "A.Example");
        assert!(matches!(Ocl::parse(&doc(&format!("{one}{upper}"))), Err(Error::Hostname(_))), "case is ignored");
    }

    #[test]
    fn another_namespace_or_malformed_xml_is_refused() {
        let other = doc("").replace(NAMESPACE, "urn:other");
        assert_eq!(Ocl::parse(&other), Err(Error::Namespace));
        assert!(matches!(Ocl::parse("<OAuthclientlist"), Err(Error::Malformed(_))));
        assert!(matches!(Ocl::parse(&doc("").replace("<Volgnummer>7", "<Volgnummer>x")), Err(Error::Malformed(_))));
    }
}
