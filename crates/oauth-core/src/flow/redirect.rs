//! Building authorization responses: query parameters appended to the
//! client's redirect URI, always with `iss` (RFC 9207).

/// Appends `params` to `uri` as query parameters, form-urlencoded.
pub(crate) fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let query = query.finish();
    let sep = match uri.find('?') {
        None => "?",
        Some(i) if i + 1 == uri.len() || uri.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{uri}{sep}{query}")
}

#[cfg(test)]
mod tests {
    use super::with_params;

    #[test]
    fn params_join_an_existing_query() {
        assert_eq!(with_params("https://a/cb", &[("code", "x y")]), "https://a/cb?code=x+y");
        assert_eq!(with_params("https://a/cb?k=v", &[("code", "1")]), "https://a/cb?k=v&code=1");
        assert_eq!(with_params("https://a/cb?", &[("code", "1")]), "https://a/cb?code=1");
        assert_eq!(with_params("https://a/cb?k=v&", &[("code", "1")]), "https://a/cb?k=v&code=1");
    }

    #[test]
    fn params_are_encoded() {
        let url = with_params("https://a/cb", &[("state", "a&b=c#d"), ("iss", "https://as.example/")]);
        assert_eq!(url, "https://a/cb?state=a%26b%3Dc%23d&iss=https%3A%2F%2Fas.example%2F");
    }
}
