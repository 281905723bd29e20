//! The login, consent, device, logout and error pages, in English and Dutch.
//!
//! Server-rendered with `maud`, which escapes every interpolated value. No
//! JavaScript; one same-origin stylesheet. Every input has a visible label,
//! the layout is a single column that fits a 390 px phone screen, and
//! `<html lang>` names the page's language.

use maud::{DOCTYPE, Markup, html};

use crate::i18n::Lang;

/// What the login and consent pages show and carry.
pub(crate) struct Form<'a> {
    /// The path prefix the routes live under (the issuer's path).
    pub(crate) prefix: &'a str,
    /// The page's language.
    pub(crate) lang: Lang,
    /// The client's display name.
    pub(crate) client_name: &'a str,
    /// The scope, in words.
    pub(crate) scope_words: Vec<String>,
    /// The session handle (hidden input).
    pub(crate) session: String,
    /// The CSRF token (hidden input).
    pub(crate) csrf: String,
}

/// What the consent page adds to the form: who is signed in, how to be
/// someone else, and where the browser will go.
pub(crate) struct Consent<'a> {
    /// The signed-in account's username.
    pub(crate) username: &'a str,
    /// The same request with `prompt=login`.
    pub(crate) switch_href: &'a str,
    /// The host of the `redirect_uri`.
    pub(crate) redirect_host: &'a str,
    /// For a device request (RFC 8628), its user code, to compare with the
    /// device's.
    pub(crate) user_code: Option<&'a str>,
}

fn page(prefix: &str, lang: Lang, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href={ (prefix) "/authorize/style.css" };
            }
            body { main { (body) } }
        }
    }
}

fn hidden(f: &Form<'_>) -> Markup {
    html! {
        input type="hidden" name="session" value=(f.session);
        input type="hidden" name="csrf" value=(f.csrf);
    }
}

fn scopes(f: &Form<'_>) -> Markup {
    html! {
        @if !f.scope_words.is_empty() {
            ul class="scopes" { @for w in &f.scope_words { li { (w) } } }
        }
    }
}

/// The login form, posting `username` and `password` to `/authorize/login`;
/// `login_hint` fills the username.
pub(crate) fn login(f: &Form<'_>, message: Option<&str>, login_hint: Option<&str>) -> Markup {
    let t = f.lang.text();
    page(
        f.prefix,
        f.lang,
        t.sign_in,
        html! {
            h1 { (t.sign_in) }
            p { (t.to_continue_to) " " strong { (f.client_name) } }
            @if let Some(m) = message { p class="error" role="alert" { (m) } }
            form method="post" action={ (f.prefix) "/authorize/login" } {
                (hidden(f))
                label for="username" { (t.username) }
                input id="username" name="username" type="text" autocomplete="username" autocapitalize="none"
                    value=[login_hint] required;
                label for="password" { (t.password) }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" { (t.sign_in) }
            }
        },
    )
}

/// The consent form: two submit buttons named `decision`, the signed-in
/// account with a link to sign in as someone else, and the redirect host
/// beside the client's name.
pub(crate) fn consent(f: &Form<'_>, c: &Consent<'_>) -> Markup {
    let t = f.lang.text();
    page(
        f.prefix,
        f.lang,
        t.allow_access,
        html! {
            h1 { (t.allow_access) }
            p { strong { (f.client_name) } " " span class="host" { "(" (c.redirect_host) ")" } " " (t.asks_to) }
            @if let Some(code) = c.user_code {
                p { (t.compare_code) } p class="user-code" { strong { (code) } }
            }
            (scopes(f))
            form method="post" action={ (f.prefix) "/authorize/consent" } {
                (hidden(f))
                div class="buttons" {
                    button type="submit" name="decision" value="approve" { (t.allow) }
                    button type="submit" name="decision" value="deny" class="secondary" { (t.deny) }
                }
            }
            p class="account" {
                (t.signed_in_as) " " strong { (c.username) } ". "
                a href=(c.switch_href) { (t.not_you) }
            }
        },
    )
}

/// The device page (RFC 8628 3.3): a form posting `user_code` to `/device`,
/// filled with `user_code` (from `verification_uri_complete`), with the
/// CSRF token and, for "not you?", `prompt=login` as hidden inputs.
pub(crate) fn device(
    prefix: &str,
    lang: Lang,
    user_code: &str,
    csrf: &str,
    fresh_login: bool,
    message: Option<&str>,
) -> Markup {
    let t = lang.text();
    page(
        prefix,
        lang,
        t.device_title,
        html! {
            h1 { (t.device_title) }
            p { (t.device_prompt) }
            @if let Some(m) = message { p class="error" role="alert" { (m) } }
            form method="post" action={ (prefix) "/device" } {
                input type="hidden" name="csrf" value=(csrf);
                @if fresh_login { input type="hidden" name="prompt" value="login"; }
                label for="user_code" { (t.user_code) }
                input id="user_code" name="user_code" type="text" autocomplete="off" autocapitalize="characters"
                    spellcheck="false" value=(user_code) required;
                button type="submit" { (t.next) }
            }
        },
    )
}

/// The page after a device request's decision: return to the device.
pub(crate) fn device_done(prefix: &str, lang: Lang, approved: bool) -> Markup {
    let t = lang.text();
    let message = if approved { t.device_approved } else { t.device_denied };
    page(prefix, lang, t.device_done_title, html! { h1 { (t.device_done_title) } p { (message) } })
}

/// The logout confirmation: a form posting the checked request back to
/// `/logout` with its hidden inputs (the CSRF token among them) and one
/// button.
pub(crate) fn logout_confirm(prefix: &str, lang: Lang, client_name: Option<&str>, fields: &[(&str, &str)]) -> Markup {
    let t = lang.text();
    page(
        prefix,
        lang,
        t.sign_out_title,
        html! {
            h1 { (t.sign_out_title) }
            @if let Some(name) = client_name { p { strong { (name) } " " (t.sign_out_of_client) } }
            p { (t.sign_out_question) }
            form method="post" action={ (prefix) "/logout" } {
                @for (name, value) in fields { input type="hidden" name=(name) value=(value); }
                button type="submit" { (t.sign_out) }
            }
        },
    )
}

/// The page after a logout with nowhere to go back to.
pub(crate) fn logged_out(prefix: &str, lang: Lang) -> Markup {
    let t = lang.text();
    page(prefix, lang, t.signed_out_title, html! { h1 { (t.signed_out_title) } p { (t.signed_out) } })
}

/// An error page, for what must not be redirected to the client. `detail`
/// is a fixed server string (an error's description), shown in English
/// under a sentence in the page's language.
pub(crate) fn error(prefix: &str, lang: Lang, title: &str, message: &str, detail: Option<&str>) -> Markup {
    page(
        prefix,
        lang,
        title,
        html! {
            h1 { (title) }
            p { (message) }
            @if let Some(d) = detail { p class="detail" { code { (d) } } }
        },
    )
}

/// The stylesheet.
pub(crate) const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,sans-serif;color:#1b1b1b;background:#f4f5f7}\
main{max-width:26rem;margin:0 auto;padding:1.5rem 1rem}\
h1{font-size:1.5rem;margin:0 0 .5rem}\
form{display:flex;flex-direction:column;gap:.5rem;margin-top:1rem}\
label{font-weight:600}\
input{width:100%;padding:.7rem;font-size:1rem;border:1px solid #8a8f98;border-radius:.4rem}\
button{padding:.8rem;font-size:1rem;border:0;border-radius:.4rem;background:#1d4ed8;color:#fff;cursor:pointer}\
button.secondary{background:#e5e7eb;color:#1b1b1b}\
.buttons{display:flex;flex-direction:column;gap:.5rem}\
.error{color:#a40000;font-weight:600}\
.scopes{padding-left:1.2rem}\
.host{color:#4b5563}\
.user-code{font:600 1.6rem/1.2 ui-monospace,monospace;letter-spacing:.15em}\
.account{margin-top:1.5rem;font-size:.9rem}\
.detail{font-size:.85rem;color:#4b5563}\
a{color:#1d4ed8}\
p,li,code{overflow-wrap:anywhere}";

#[cfg(test)]
mod tests {
    use super::*;

    fn form(lang: Lang) -> Form<'static> {
        Form { prefix: "/p", lang, client_name: "App", scope_words: vec![], session: "s".into(), csrf: "c".into() }
    }

    #[test]
    fn interpolated_values_are_escaped() {
        let f = Form {
            prefix: "",
            lang: Lang::En,
            client_name: "<script>alert(1)</script>",
            scope_words: vec!["\"><img src=x>".into()],
            session: "s\"x".into(),
            csrf: "c".into(),
        };
        let c = Consent {
            username: "<b>bob</b>",
            switch_href: "/authorize?a=\"b",
            redirect_host: "<h>",
            user_code: Some("<c>"),
        };
        let page = consent(&f, &c).into_string();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<img") && !page.contains("<b>bob") && !page.contains("<h>") && !page.contains("<c>"));
        assert!(page.contains("value=\"s&quot;x\""));
        assert!(page.contains("href=\"/authorize?a=&quot;b\""));
        let hinted = login(&f, None, Some("\"><script>")).into_string();
        assert!(!hinted.contains("\"><script>"), "{hinted}");
    }

    #[test]
    fn the_device_page_fills_the_code_and_shows_it_on_the_consent_page() {
        let page = device("/p", Lang::En, "\"><x>", "tok", false, None).into_string();
        assert!(page.contains(r#"<form method="post" action="/p/device">"#), "{page}");
        assert!(page.contains(r#"<label for="user_code">"#) && page.contains("value=\"&quot;&gt;&lt;x&gt;\""));
        assert!(!page.contains("name=\"prompt\""), "no fresh login unless asked");
        let c = Consent { username: "a", switch_href: "/x", redirect_host: "h", user_code: Some("BCDF-GHJK") };
        assert!(consent(&form(Lang::En), &c).into_string().contains("BCDF-GHJK"));
    }

    #[test]
    fn pages_have_a_viewport_and_labelled_inputs() {
        let page = login(&form(Lang::En), None, None).into_string();
        assert!(page.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#));
        assert!(page.contains(r#"<form method="post" action="/p/authorize/login">"#));
        assert!(page.contains(r#"<label for="username">"#) && page.contains(r#"<label for="password">"#));
    }

    #[test]
    fn every_page_exists_in_english_and_dutch_and_says_which() {
        let c = Consent { username: "alice", switch_href: "/x", redirect_host: "app.example", user_code: None };
        for (lang, sign_in, allow, sign_out) in
            [(Lang::En, "Sign in", "Allow", "Sign out"), (Lang::Nl, "Inloggen", "Toestaan", "Uitloggen")]
        {
            let html_lang = format!("<html lang=\"{}\">", lang.code());
            let pages = [
                login(&form(lang), None, None).into_string(),
                consent(&form(lang), &c).into_string(),
                logout_confirm("/p", lang, Some("App"), &[("csrf", "c")]).into_string(),
                logged_out("/p", lang).into_string(),
                device("/p", lang, "BCDF-GHJK", "c", true, Some("x")).into_string(),
                device_done("/p", lang, true).into_string(),
                error("/p", lang, lang.text().cannot_continue, lang.text().bad_form.1, None).into_string(),
            ];
            for p in &pages {
                assert!(p.contains(&html_lang), "{p}");
            }
            assert!(pages[0].contains(sign_in) && pages[1].contains(allow) && pages[2].contains(sign_out));
        }
    }
}
