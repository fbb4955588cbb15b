//! Checks of network addresses written as text: "host:port" and http(s) URLs. Enough to catch
//! a steward's typo at start-up with a message saying what is wrong, without a URL crate.

/// "host:port" with a non-empty host (IPv6 in brackets) and a port 1..=65535.
pub(crate) fn check_host_port(addr: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{addr:?} is not \"host:port\": {why}"));
    let Some((host, port)) = addr.rsplit_once(':') else {
        return bad("no port");
    };
    if host.is_empty() {
        return bad("no host");
    }
    if host.contains(char::is_whitespace) {
        return bad("white space in the host");
    }
    let ipv6 = host.starts_with('[') && host.ends_with(']') && host.len() > 2;
    if host.contains(':') && !ipv6 {
        return bad("write IPv6 addresses in brackets, e.g. [::1]:4242");
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => bad("the port must be a number 1..=65535"),
        Ok(_) => Ok(()),
    }
}

/// An `http://` or `https://` URL with a host and an optional valid port: enough to catch
/// typos with a plain message; iroh's own parser then has the last word.
pub(super) fn check_http_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{url:?} is not an http(s) URL: {why}"));
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return bad("it must start with https:// or http://");
    };
    if url.contains(char::is_whitespace) {
        return bad("it contains white space");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => return bad("unclosed [ in the host"),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return bad("no host");
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return bad("the port must be a number 0..=65535");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_takes_names_ipv4_and_bracketed_ipv6() {
        for good in [
            "localhost:4242",
            "10.0.0.1:1",
            "[::1]:65535",
            "rns.local:4242",
        ] {
            assert_eq!(check_host_port(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("localhost", "no port"),
            (":4242", "no host"),
            ("a b:1", "white space"),
            ("::1:4242", "brackets"),
            ("host:0", "1..=65535"),
            ("host:x", "1..=65535"),
        ] {
            let error = check_host_port(bad).expect_err(bad);
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn http_urls_need_a_scheme_and_a_host() {
        for good in [
            "https://relay.example.org",
            "HTTP://relay.example.org:8080/path",
            "https://[::1]:443/",
            "https://user@relay.example.org",
        ] {
            assert_eq!(check_http_url(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("relay.example.org", "https://"),
            ("https://:443", "no host"),
            ("https://relay .org", "white space"),
            ("https://[::1", "unclosed"),
            ("https://relay.example.org:99999", "port"),
        ] {
            let error = check_http_url(bad).expect_err(bad);
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
