//! What the config tests share: a minimal valid file to vary, and the check that a bad value
//! is refused with its key named.

use std::path::Path;

use super::Config;
use super::error::Result;

pub(super) const NET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
pub(super) const R1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
pub(super) const R2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

pub(super) const RADIO: &str = "[radio]\nboard = \"rak3172-usb\"\n";

/// A minimal valid file: `top` goes before the first table, `tail` after the region.
pub(super) fn file(top: &str, tail: &str) -> String {
    format!(
        "network_id = \"{NET}\"\n{top}\n[[regions]]\nid = \"{R1}\"\napps = [\"chat\"]\n{tail}\n"
    )
}

pub(super) fn parse(text: &str) -> Result<Config> {
    Config::from_toml_str(text, Path::new("/srv/bridge"))
}

pub(super) fn ok(text: &str) -> Config {
    parse(text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

pub(super) fn bytes(hex_text: &str) -> [u8; 32] {
    let mut out = [0; 32];
    hex::decode_to_slice(hex_text, &mut out).expect("test hex");
    out
}

/// Each file is refused with `key` named; `reason` is a fragment of the message.
pub(super) fn assert_refused(cases: Vec<(String, &str, &str)>) {
    for (text, key, reason) in cases {
        let error = parse(&text).expect_err(&format!("{key} should fail:\n{text}"));
        assert_eq!(error.key(), Some(key), "{error}\n---\n{text}");
        let shown = error.to_string();
        assert!(
            shown.starts_with(&format!("config key `{key}`: ")),
            "{shown}"
        );
        assert!(shown.contains(reason), "{shown:?} lacks {reason:?}");
    }
}
