//! The pages' two languages, English and Dutch (the MedMij users' language),
//! and how one is chosen: the request's `ui_locales` first (OpenID Connect
//! Core 3.1.2.1), then the browser's `Accept-Language`, else English.
//!
//! Language tags are parsed by `fluent-langneg` (ICU4X's language
//! identifiers). It reads `Accept-Language` in the order sent and ignores the
//! `q` weights, as browsers list languages best first.

use fluent_langneg::{
    LanguageIdentifier, NegotiationStrategy, convert_vec_str_to_langids_lossy, negotiate_languages,
    parse_accepted_languages,
};
use http::{HeaderMap, header};

/// A language the pages exist in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    Nl,
}

impl Lang {
    /// The `<html lang>` value.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Nl => "nl",
        }
    }

    /// The texts in this language.
    pub(crate) fn text(self) -> &'static Text {
        match self {
            Lang::En => &EN,
            Lang::Nl => &NL,
        }
    }

    /// The language for a request: the first of `ui_locales` (space
    /// separated) the pages exist in, else the first such of the
    /// `Accept-Language` header, else English.
    pub(crate) fn pick(ui_locales: Option<&str>, headers: &HeaderMap) -> Lang {
        let from_ui = ui_locales.map(|u| u.split(' ').filter_map(|t| t.parse().ok()).collect::<Vec<_>>());
        if let Some(lang) = from_ui.and_then(|tags| Self::negotiate(&tags)) {
            return lang;
        }
        let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        Self::negotiate(&parse_accepted_languages(accept)).unwrap_or(Lang::En)
    }

    fn negotiate(requested: &[LanguageIdentifier]) -> Option<Lang> {
        let available = convert_vec_str_to_langids_lossy(["en", "nl"]);
        let chosen = negotiate_languages(requested, &available, None, NegotiationStrategy::Lookup);
        chosen.first().map(|l| if l.language.as_str() == "nl" { Lang::Nl } else { Lang::En })
    }
}

/// Every sentence the pages show, in one language.
pub(crate) struct Text {
    pub(crate) sign_in: &'static str,
    pub(crate) to_continue_to: &'static str,
    pub(crate) username: &'static str,
    pub(crate) password: &'static str,
    pub(crate) wrong_password: &'static str,
    pub(crate) throttled: fn(u64) -> String,
    pub(crate) allow_access: &'static str,
    pub(crate) asks_to: &'static str,
    pub(crate) allow: &'static str,
    pub(crate) deny: &'static str,
    pub(crate) signed_in_as: &'static str,
    pub(crate) not_you: &'static str,
    pub(crate) sign_out_title: &'static str,
    pub(crate) sign_out_question: &'static str,
    pub(crate) sign_out_of_client: &'static str,
    pub(crate) sign_out: &'static str,
    pub(crate) signed_out_title: &'static str,
    pub(crate) signed_out: &'static str,
    pub(crate) unknown_client: (&'static str, &'static str),
    pub(crate) bad_redirect: (&'static str, &'static str),
    pub(crate) session_expired: (&'static str, &'static str),
    pub(crate) unavailable: (&'static str, &'static str),
    pub(crate) too_many_pending: (&'static str, &'static str),
    pub(crate) bad_form: (&'static str, &'static str),
    pub(crate) device_title: &'static str,
    pub(crate) device_prompt: &'static str,
    pub(crate) user_code: &'static str,
    pub(crate) next: &'static str,
    pub(crate) wrong_code: &'static str,
    pub(crate) too_many_codes: fn(u64) -> String,
    pub(crate) compare_code: &'static str,
    pub(crate) device_done_title: &'static str,
    pub(crate) device_approved: &'static str,
    pub(crate) device_denied: &'static str,
    pub(crate) cannot_continue: &'static str,
    pub(crate) cannot_sign_out: &'static str,
    pub(crate) details: &'static str,
}

static EN: Text = Text {
    sign_in: "Sign in",
    to_continue_to: "to continue to",
    username: "Username",
    password: "Password",
    wrong_password: "Wrong username or password.",
    throttled: |minutes| format!("Too many failed sign-in attempts. Try again in {minutes} minute(s)."),
    allow_access: "Allow access?",
    asks_to: "asks to:",
    allow: "Allow",
    deny: "Deny",
    signed_in_as: "Signed in as",
    not_you: "Not you? Sign in as someone else",
    sign_out_title: "Sign out?",
    sign_out_question: "Do you want to sign out?",
    sign_out_of_client: "asks you to sign out.",
    sign_out: "Sign out",
    signed_out_title: "Signed out",
    signed_out: "You are signed out. You can close this window.",
    unknown_client: ("Unknown application", "The application that sent you here is not registered."),
    bad_redirect: (
        "Invalid return address",
        "The application's return address is not registered, so you cannot be sent back to it.",
    ),
    session_expired: ("Session expired", "This sign-in took too long. Go back to the application and start again."),
    unavailable: ("Temporarily unavailable", "The service is temporarily unavailable. Try again in a moment."),
    too_many_pending: (
        "Too many sign-ins",
        "Too many sign-ins were started from your network and not finished. Try again later.",
    ),
    bad_form: ("Cannot continue", "This form is no longer valid. Go back to the application and start again."),
    device_title: "Connect a device",
    device_prompt: "Enter the code your device shows.",
    user_code: "Code",
    next: "Continue",
    wrong_code: "This code is unknown, used or expired. Check the code on your device.",
    too_many_codes: |minutes| format!("Too many wrong codes. Try again in {minutes} minute(s)."),
    compare_code: "Check that your device shows this code:",
    device_done_title: "Done",
    device_approved: "Return to your device: it continues by itself. You can close this window.",
    device_denied: "You denied access: your device gets nothing. You can close this window.",
    cannot_continue: "Cannot continue",
    cannot_sign_out: "Cannot sign out",
    details: "The request could not be handled:",
};

static NL: Text = Text {
    sign_in: "Inloggen",
    to_continue_to: "om verder te gaan naar",
    username: "Gebruikersnaam",
    password: "Wachtwoord",
    wrong_password: "Onjuiste gebruikersnaam of wachtwoord.",
    throttled: |minutes| format!("Te veel mislukte inlogpogingen. Probeer het over {minutes} minuut/minuten opnieuw."),
    allow_access: "Toegang geven?",
    asks_to: "vraagt om:",
    allow: "Toestaan",
    deny: "Weigeren",
    signed_in_as: "Ingelogd als",
    not_you: "Bent u dit niet? Log in als iemand anders",
    sign_out_title: "Uitloggen?",
    sign_out_question: "Wilt u uitloggen?",
    sign_out_of_client: "vraagt u om uit te loggen.",
    sign_out: "Uitloggen",
    signed_out_title: "Uitgelogd",
    signed_out: "U bent uitgelogd. U kunt dit venster sluiten.",
    unknown_client: ("Onbekende applicatie", "De applicatie die u hierheen stuurde is niet geregistreerd."),
    bad_redirect: (
        "Ongeldig terugkeeradres",
        "Het terugkeeradres van de applicatie is niet geregistreerd, dus u kunt er niet naar teruggestuurd worden.",
    ),
    session_expired: ("Sessie verlopen", "Het inloggen duurde te lang. Ga terug naar de applicatie en begin opnieuw."),
    unavailable: ("Tijdelijk niet beschikbaar", "De dienst is tijdelijk niet beschikbaar. Probeer het zo opnieuw."),
    too_many_pending: (
        "Te veel inlogpogingen",
        "Er zijn vanaf uw netwerk te veel inlogpogingen gestart en niet afgerond. Probeer het later opnieuw.",
    ),
    bad_form: ("Kan niet verder", "Dit formulier is niet meer geldig. Ga terug naar de applicatie en begin opnieuw."),
    device_title: "Apparaat koppelen",
    device_prompt: "Voer de code in die uw apparaat toont.",
    user_code: "Code",
    next: "Verder",
    wrong_code: "Deze code is onbekend, al gebruikt of verlopen. Controleer de code op uw apparaat.",
    too_many_codes: |minutes| format!("Te veel onjuiste codes. Probeer het over {minutes} minuut/minuten opnieuw."),
    compare_code: "Controleer of uw apparaat deze code toont:",
    device_done_title: "Klaar",
    device_approved: "Ga terug naar uw apparaat: het gaat vanzelf verder. U kunt dit venster sluiten.",
    device_denied: "U heeft toegang geweigerd: uw apparaat krijgt niets. U kunt dit venster sluiten.",
    cannot_continue: "Kan niet verder",
    cannot_sign_out: "Kan niet uitloggen",
    details: "Het verzoek kon niet worden afgehandeld:",
};

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn ui_locales_come_first_then_accept_language_then_english() {
        assert_eq!(Lang::pick(Some("nl"), &accept("en")), Lang::Nl);
        assert_eq!(Lang::pick(Some("fr-CA nl-NL"), &accept("en")), Lang::Nl, "the first supported one");
        assert_eq!(Lang::pick(Some("fr"), &accept("nl-BE,en;q=0.5")), Lang::Nl, "ui_locales names none we have");
        assert_eq!(Lang::pick(None, &accept("en-GB,nl;q=0.8")), Lang::En);
        assert_eq!(Lang::pick(None, &accept("de, fr")), Lang::En);
        assert_eq!(Lang::pick(None, &HeaderMap::new()), Lang::En);
    }

    #[test]
    fn odd_language_headers_fall_back_to_english() {
        for odd in [";;;", ",,,", "*", "nl;q=NaN, en", "x-klingon", "\u{7f}"] {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(odd) {
                h.insert(header::ACCEPT_LANGUAGE, v);
            }
            let _ = Lang::pick(Some(odd), &h);
        }
        assert_eq!(Lang::pick(Some("\u{7f}"), &HeaderMap::new()), Lang::En);
    }
}
