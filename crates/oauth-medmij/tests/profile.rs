//! The profile end to end in the core flows: the sample OCL, its clients, the
//! redirect rule, one scope, and the BSN and age check.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use std::sync::Arc;

use oauth_core::testing::{Fixture, PASSWORD, USERNAME};
use oauth_core::*;
use oauth_medmij::{MedMijCheck, Ocl, OclClients, Profile};
use oauth_store_mem::MemStore;

const SAMPLE: &str = include_str!("../../../examples/ocl.xml");

fn profile() -> Profile {
    Profile { scopes: Scope::parse("1 4 7").unwrap(), require_pkce: false }
}

#[test]
fn the_sample_ocl_parses() {
    let ocl = Ocl::parse(SAMPLE).unwrap();
    assert_eq!(ocl.sequence, 42);
    assert_eq!(ocl.clients.len(), 2);
    assert_eq!(ocl.clients[0].hostname.as_str(), "pgo.example.org");
    assert_eq!(ocl.clients[0].organisation, "Example Health Vault");
}

#[tokio::test]
async fn every_ocl_hostname_is_a_public_code_only_client() {
    let clients = OclClients::new(&Ocl::parse(SAMPLE).unwrap(), profile()).unwrap();
    let c = clients.client(&ClientId::parse("PGO.example.org").unwrap()).await.unwrap().unwrap();
    assert!(!c.is_confidential());
    assert!(c.allows(GrantType::AuthorizationCode) && !c.allows(GrantType::RefreshToken));
    assert_eq!(c.scope_rule(), ScopeRule::ExactlyOne);
    assert_eq!(c.name(), "Example Health Vault");
    assert!(c.redirect().check("https://pgo.example.org/any?x=1").is_ok());
    assert!(c.redirect().check("http://pgo.example.org/cb").is_err());
    assert!(c.redirect().check("https://evil.example/cb").is_err());
    assert!(clients.client(&ClientId::parse("not.listed.example").unwrap()).await.unwrap().is_none());
}

#[test]
fn a_malformed_or_older_reload_keeps_the_last_good_list() {
    let clients = OclClients::new(&Ocl::parse(SAMPLE).unwrap(), profile()).unwrap();
    let older = Ocl { sequence: 41, ..Ocl::parse(SAMPLE).unwrap() };
    assert!(matches!(clients.reload(&older), Err(oauth_medmij::Error::Older { current: 42, new: 41 })));
    assert!(Ocl::parse("<broken").is_err());
    assert_eq!(clients.sequence(), 42);
    let mut newer = Ocl::parse(SAMPLE).unwrap();
    newer.sequence = 43;
    newer.clients.truncate(1);
    assert_eq!(clients.reload(&newer), Ok(1));
    assert!(!clients.contains(&ClientId::parse("app.gezondheid.example.net").unwrap()));
}

async fn medmij(birthdate: &str, bsn: Option<&str>) -> Fixture {
    let store = Arc::new(MemStore::new());
    let ocl = Arc::new(OclClients::new(&Ocl::parse(SAMPLE).unwrap(), profile()).unwrap());
    let check = Arc::new(MedMijCheck::new(ocl.clone(), 16, Arc::new(AllowAll)));
    let f = Fixture::new(store.clone(), Some(check)).await.unwrap();
    let mut account = f.account.clone();
    account.attributes.clear();
    account.attributes.insert("birthdate".into(), birthdate.into());
    if let Some(b) = bsn {
        account.attributes.insert("bsn".into(), b.into());
    }
    store.put_account(&account).await.unwrap();
    // The fixture's own registry knows pgo.example.org as a host-bound client;
    // the check decides by OCL membership.
    f
}

async fn login(f: &Fixture) -> LoginOutcome {
    let req = AuthorizeRequest {
        client_id: Some("pgo.example.org"),
        redirect_uri: Some("https://pgo.example.org/cb"),
        response_type: Some("code"),
        scope: Some("1"),
        state: Some("s"),
        ..Default::default()
    };
    let (session, _) = f.authority.authorize(&req, None, None).await.unwrap();
    f.authority.login(session.id(), USERNAME, PASSWORD, None).await.unwrap()
}

#[tokio::test]
async fn an_adult_with_a_bsn_reaches_consent() {
    let m = medmij("1990-01-01", Some("999990019")).await;
    assert!(matches!(login(&m).await, LoginOutcome::Consent(_)));
}

#[tokio::test]
async fn a_minor_or_an_account_without_bsn_is_refused_with_access_denied() {
    for (birth, bsn) in [("2015-01-01", Some("999990019")), ("1990-01-01", None), ("not a date", Some("999990019"))] {
        let m = medmij(birth, bsn).await;
        let LoginOutcome::Denied(location) = login(&m).await else { panic!("{birth} {bsn:?} should be refused") };
        assert_eq!(testing::query_param(&location, "error").as_deref(), Some("access_denied"));
        assert_eq!(testing::query_param(&location, "state").as_deref(), Some("s"));
    }
}

#[tokio::test]
async fn the_sixteenth_birthday_counts_from_midnight_in_amsterdam() {
    // The fixture clock is 2026-11-25 12:00 UTC.
    let m = medmij("2010-11-25", Some("999990019")).await;
    assert!(matches!(login(&m).await, LoginOutcome::Consent(_)));
    let m = medmij("2010-11-26", Some("999990019")).await;
    assert!(matches!(login(&m).await, LoginOutcome::Denied(_)));
}

#[tokio::test]
async fn a_client_off_the_ocl_goes_to_the_inner_check_without_bsn_or_age() {
    // A minor without a BSN: refused for an OCL client (above), but the
    // fixture's public client is not on the OCL, so the inner check decides.
    let m = medmij("2015-01-01", None).await;
    let (session, _) = m.authority.authorize(&Fixture::public_request(), None, None).await.unwrap();
    let outcome = m.authority.login(session.id(), USERNAME, PASSWORD, None).await.unwrap();
    assert!(matches!(outcome, LoginOutcome::Consent(_)), "AllowAll, the inner check, allows");

    #[derive(Debug)]
    struct DenyAll;
    #[async_trait::async_trait]
    impl ResourceCheck for DenyAll {
        async fn check(&self, _: &Client, _: &Account, _: &Scope, _: time::OffsetDateTime) -> Result<ResourceDecision> {
            Ok(ResourceDecision::Deny)
        }
    }
    let store = Arc::new(MemStore::new());
    let ocl = Arc::new(OclClients::new(&Ocl::parse(SAMPLE).unwrap(), profile()).unwrap());
    let f = Fixture::new(store, Some(Arc::new(MedMijCheck::new(ocl, 16, Arc::new(DenyAll))))).await.unwrap();
    let (session, _) = f.authority.authorize(&Fixture::public_request(), None, None).await.unwrap();
    let outcome = f.authority.login(session.id(), USERNAME, PASSWORD, None).await.unwrap();
    assert!(matches!(outcome, LoginOutcome::Denied(_)), "the inner check refuses, whatever the account holds");
}

#[tokio::test]
async fn an_ocl_client_named_in_another_case_carries_the_lists_spelling_through_to_its_tokens() {
    let ocl = Ocl::parse(&SAMPLE.replace("<Hostname>pgo.example.org", "<Hostname>PGO.Example.org")).unwrap();
    let ocl = Arc::new(OclClients::new(&ocl, profile()).unwrap());
    let store = Arc::new(MemStore::new());
    let check = Arc::new(MedMijCheck::new(ocl.clone(), 16, Arc::new(AllowAll)));
    let f = Fixture::new(store.clone(), Some(check)).await.unwrap();
    let mut adult = f.account.clone();
    adult.attributes.insert("birthdate".into(), "1990-01-01".into());
    store.put_account(&adult).await.unwrap();
    let authority =
        Authority::new(f.authority.settings().clone(), Services { clients: ocl, ..f.authority.services().clone() });
    let redirect = "https://pgo.example.org/cb";
    let req = AuthorizeRequest {
        client_id: Some("pgo.EXAMPLE.ORG"),
        redirect_uri: Some(redirect),
        response_type: Some("code"),
        scope: Some("1"),
        ..Default::default()
    };
    let (session, _) = authority.authorize(&req, None, None).await.unwrap();
    assert_eq!(session.client_id().as_str(), "PGO.Example.org", "the session carries the list's spelling");
    assert!(matches!(authority.login(session.id(), USERNAME, PASSWORD, None).await.unwrap(), LoginOutcome::Consent(_)));
    let code = testing::query_param(&authority.decide(session.id(), true).await.unwrap(), "code").unwrap();
    let creds = ClientCredentials { client_id: Some("Pgo.Example.Org"), secret: None, assertion: None };
    let client = authority.authenticate_client(&creds, None).await.unwrap();
    let exchange = TokenRequest {
        grant_type: Some("authorization_code"),
        code: Some(&code),
        redirect_uri: Some(redirect),
        ..Default::default()
    };
    let t = authority.token(&client, &exchange, None, None).await.unwrap();
    let principal = authority.authenticate_bearer(&t.access_token).await.unwrap();
    assert_eq!(principal.claims.client_id.as_str(), "PGO.Example.org");
}
