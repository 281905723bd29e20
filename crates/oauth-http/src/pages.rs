//! The login, consent and error pages.
//!
//! Server-rendered with `maud`, which escapes every interpolated value. No
//! JavaScript; one same-origin stylesheet. Every input has a visible label,
//! and the layout is a single column that fits a 390 px phone screen.

use maud::{DOCTYPE, Markup, html};

/// What the login and consent pages show and carry.
pub(crate) struct Form<'a> {
    /// The path prefix the routes live under (the issuer's path).
    pub(crate) prefix: &'a str,
    /// The client's display name.
    pub(crate) client_name: &'a str,
    /// The scope, in words.
    pub(crate) scope_words: Vec<String>,
    /// The session handle (hidden input).
    pub(crate) session: String,
    /// The CSRF token (hidden input).
    pub(crate) csrf: String,
}

fn page(prefix: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
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

/// The login form, posting `username` and `password` to `/authorize/login`.
pub(crate) fn login(f: &Form<'_>, message: Option<&str>) -> Markup {
    page(
        f.prefix,
        "Sign in",
        html! {
            h1 { "Sign in" }
            p { "to continue to " strong { (f.client_name) } }
            @if let Some(m) = message { p class="error" role="alert" { (m) } }
            form method="post" action={ (f.prefix) "/authorize/login" } {
                (hidden(f))
                label for="username" { "Username" }
                input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" required;
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// The consent form: two submit buttons named `decision`.
pub(crate) fn consent(f: &Form<'_>) -> Markup {
    page(
        f.prefix,
        "Allow access?",
        html! {
            h1 { "Allow access?" }
            p { strong { (f.client_name) } " asks to:" }
            (scopes(f))
            form method="post" action={ (f.prefix) "/authorize/consent" } {
                (hidden(f))
                div class="buttons" {
                    button type="submit" name="decision" value="approve" { "Allow" }
                    button type="submit" name="decision" value="deny" class="secondary" { "Deny" }
                }
            }
        },
    )
}

/// An error page, for what must not be redirected to the client.
pub(crate) fn error(prefix: &str, title: &str, message: &str) -> Markup {
    page(
        prefix,
        title,
        html! {
            h1 { (title) }
            p { (message) }
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
p,li{overflow-wrap:anywhere}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolated_values_are_escaped() {
        let f = Form {
            prefix: "",
            client_name: "<script>alert(1)</script>",
            scope_words: vec!["\"><img src=x>".into()],
            session: "s\"x".into(),
            csrf: "c".into(),
        };
        let page = consent(&f).into_string();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<img"));
        assert!(page.contains("value=\"s&quot;x\""));
    }

    #[test]
    fn pages_have_a_viewport_and_labelled_inputs() {
        let f = Form { prefix: "/p", client_name: "App", scope_words: vec![], session: "s".into(), csrf: "c".into() };
        let page = login(&f, None).into_string();
        assert!(page.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#));
        assert!(page.contains(r#"<form method="post" action="/p/authorize/login">"#));
        assert!(page.contains(r#"<label for="username">"#) && page.contains(r#"<label for="password">"#));
    }
}
