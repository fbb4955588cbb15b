//! The hand-written walk over a [`toml::Table`]: every value read through a [`Section`] that
//! knows its dotted path, so each error names its key, and unknown keys are refused (with a
//! "did you mean" for a near miss) before any value is read.

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use toml::Value;

use super::error::{ConfigError, Result};

/// One TOML table being read, with its dotted path for error messages.
pub(super) struct Section<'a> {
    path: String,
    table: &'a toml::Table,
}

impl<'a> Section<'a> {
    /// Opens a table and refuses keys not in `known` before reading any value: a misspelt key
    /// is then reported as such, not as its correct spelling being missing.
    pub(super) fn new(path: &str, table: &'a toml::Table, known: &[&str]) -> Result<Self> {
        let section = Section {
            path: path.to_owned(),
            table,
        };
        section.check_unknown(known)?;
        Ok(section)
    }

    fn check_unknown(&self, known: &[&str]) -> Result<()> {
        let Some(unknown) = self.table.keys().find(|k| !known.contains(&k.as_str())) else {
            return Ok(());
        };
        let hint = match known.iter().min_by_key(|k| edit_distance(k, unknown)) {
            Some(close) if edit_distance(close, unknown) <= 2 => {
                format!("; did you mean `{}`?", self.key(close))
            }
            _ => {
                let here = if self.path.is_empty() {
                    "at the top level".to_owned()
                } else {
                    format!("in `{}`", self.path)
                };
                format!("; known keys {here}: {}", known.join(", "))
            }
        };
        Err(ConfigError::unknown_key(self.key(unknown), hint))
    }

    /// The dotted path of `name` in this table.
    pub(super) fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    pub(super) fn missing(&self, name: &str, what: impl fmt::Display) -> ConfigError {
        ConfigError::invalid(self.key(name), format!("missing: {what}"))
    }

    pub(super) fn get(&self, name: &str) -> Option<&'a Value> {
        self.table.get(name)
    }

    fn wrong_type(&self, name: &str, expected: &str, got: &Value) -> ConfigError {
        ConfigError::invalid(
            self.key(name),
            format!("expected {expected}, got {}", describe(got)),
        )
    }

    pub(super) fn string(&self, name: &str) -> Result<Option<&'a str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(name, "a string", other)),
        }
    }

    pub(super) fn bool(&self, name: &str) -> Result<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(name, "true or false", other)),
        }
    }

    /// An integer within `range`, converted to the field's type.
    pub(super) fn int<T: TryFrom<i64>>(
        &self,
        name: &str,
        range: RangeInclusive<i64>,
    ) -> Result<Option<T>> {
        let value = match self.get(name) {
            None => return Ok(None),
            Some(Value::Integer(i)) => *i,
            Some(other) => return Err(self.wrong_type(name, "a whole number", other)),
        };
        let out_of_range = || {
            ConfigError::invalid(
                self.key(name),
                format!(
                    "{value} is out of range {}..={}",
                    range.start(),
                    range.end()
                ),
            )
        };
        if !range.contains(&value) {
            return Err(out_of_range());
        }
        T::try_from(value).map(Some).map_err(|_| out_of_range())
    }

    pub(super) fn array(&self, name: &str) -> Result<&'a [Value]> {
        match self.get(name) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.wrong_type(name, "a list [ ... ]", other)),
        }
    }

    /// The strings of a list, each with its own key (`name[i]`); `what` says what each should
    /// be, for the message when one is not a string.
    pub(super) fn strings(&self, name: &str, what: &str) -> Result<Vec<(String, &'a str)>> {
        self.array(name)?
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let key = format!("{}[{i}]", self.key(name));
                match item {
                    Value::String(text) => Ok((key, text.as_str())),
                    other => Err(ConfigError::invalid(
                        key,
                        format!("expected {what}, got {}", describe(other)),
                    )),
                }
            })
            .collect()
    }

    /// A sub-table, its keys checked against `known`.
    pub(super) fn table(&self, name: &str, known: &[&str]) -> Result<Option<Section<'a>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Table(table)) => Section::new(&self.key(name), table, known).map(Some),
            Some(other) => Err(self.wrong_type(name, &format!("a [{name}] table"), other)),
        }
    }

    pub(super) fn hex32(&self, name: &str) -> Result<Option<[u8; 32]>> {
        self.get(name)
            .map(|v| hex32(&self.key(name), v))
            .transpose()
    }

    pub(super) fn socket_addr(&self, name: &str, default: &str) -> Result<SocketAddr> {
        let text = self.string(name)?.unwrap_or(default);
        text.parse().map_err(|_| {
            ConfigError::invalid(
                self.key(name),
                format!(
                    "{text:?} is not an address with port such as \"127.0.0.1:50051\" or \
                     \"[::1]:50051\""
                ),
            )
        })
    }

    /// A file path; relative ones are taken from `base_dir`, the config file's folder.
    pub(super) fn path(&self, name: &str, default: &str, base_dir: &Path) -> Result<PathBuf> {
        let text = self.string(name)?.unwrap_or(default);
        if text.trim().is_empty() {
            return Err(ConfigError::invalid(self.key(name), "the path is empty"));
        }
        Ok(base_dir.join(text))
    }
}

/// 32 bytes written as 64 hex characters, in a TOML string.
pub(super) fn hex32(key: &str, value: &Value) -> Result<[u8; 32]> {
    let Value::String(text) = value else {
        return Err(ConfigError::invalid(
            key,
            format!(
                "expected a string of 64 hex characters, got {}",
                describe(value)
            ),
        ));
    };
    hex32_text(key, text)
}

/// 32 bytes written as 64 hex characters.
pub(super) fn hex32_text(key: &str, text: &str) -> Result<[u8; 32]> {
    let count = text.chars().count();
    if count != 64 {
        return Err(ConfigError::invalid(
            key,
            format!("expected 64 hex characters, got {count}"),
        ));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|e| {
        let reason = match e {
            hex::FromHexError::InvalidHexCharacter { c, index } => {
                format!("{c:?} at position {} is not a hex character", index + 1)
            }
            other => other.to_string(),
        };
        ConfigError::invalid(key, format!("expected 64 hex characters: {reason}"))
    })?;
    Ok(out)
}

/// Text the bridge must match byte for byte (it is hashed, or compared with what apps send):
/// an empty one, one with white space around it or with control characters is refused, as
/// a typo that would silently match nothing. `consequence` says what white space would do.
pub(super) fn check_exact_text(what: &str, text: &str, consequence: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if text.trim() != text {
        return Err(format!(
            "{what} {text:?} starts or ends with white space, {consequence}"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{what} {text:?} contains control characters"));
    }
    Ok(())
}

/// What a TOML value is, for "expected X, got Y" messages.
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Boolean(b) => format!("{b}"),
        Value::Datetime(d) => format!("the date {d}"),
        Value::Array(_) => "a list".into(),
        Value::Table(_) => "a table".into(),
    }
}

/// A range of a narrower integer type as the `i64` range [`Section::int`] takes.
pub(super) fn range_i64<T: Copy + Into<i64>>(range: &RangeInclusive<T>) -> RangeInclusive<i64> {
    (*range.start()).into()..=(*range.end()).into()
}

/// Levenshtein distance, for "did you mean" hints on misspelt keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            prev = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn unknown_keys_are_refused_everywhere() {
        let cases = [
            (
                file("netwrk_id = \"x\"", ""),
                "netwrk_id",
                Some("network_id"),
            ),
            (file("colour = \"blue\"", ""), "colour", None),
            (
                file("", "[iroh]\nmdsn = true"),
                "iroh.mdsn",
                Some("iroh.mdns"),
            ),
            (
                file("", "[[regions]]\nid = \"x\"\napp = [\"chat\"]"),
                "regions[1].app",
                Some("regions[1].apps"),
            ),
            (
                file("", &format!("{RADIO}sprading_factor = 7")),
                "radio.sprading_factor",
                Some("radio.spreading_factor"),
            ),
            (file("", &format!("{RADIO}mtu = 100")), "radio.mtu", None),
            (
                file("", "[reticulum]\nrnsd = [\"a:1\"]\nannounce_interval = 60"),
                "reticulum.announce_interval",
                None,
            ),
        ];
        for (text, key, hint) in cases {
            let error = parse(&text).expect_err(key);
            assert!(error.is_unknown_key(), "{error}");
            assert_eq!(error.key(), Some(key));
            let shown = error.to_string();
            assert!(
                shown.starts_with(&format!("unknown key `{key}`")),
                "{shown}"
            );
            match hint {
                Some(hint) => assert!(
                    shown.contains(&format!("did you mean `{hint}`?")),
                    "{shown}"
                ),
                None => assert!(shown.contains("known keys"), "{shown}"),
            }
        }
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let error = parse("network_id = \"abc\"\n\ngrpc_listen = 127.0.0.1:1\n").unwrap_err();
        let shown = error.to_string();
        assert_eq!(error.key(), None);
        assert!(shown.contains("line 3, column"), "{shown}");
    }

    #[test]
    fn messages_read_as_specified() {
        let error = parse(&file("", &format!("{RADIO}spreading_factor = 13"))).unwrap_err();
        assert_eq!(
            error.to_string(),
            "config key `radio.spreading_factor`: 13 is out of range 5..=12"
        );
        let error = parse(&file("", "").replace(NET, "00112233aabb")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "config key `network_id`: expected 64 hex characters, got 12"
        );
    }
}
