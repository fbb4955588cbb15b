//! Why a configuration was refused: one error type whose message names the key.

use std::fmt;

/// Why the configuration was refused. The message names the key (as a dotted path such as
/// `radio.spreading_factor` or `regions[0].apps`, counting `[[regions]]` from 0) and the reason,
/// so it reads as its own fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    kind: ErrorKind,
    key: Option<String>,
    message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorKind {
    /// The file could not be read.
    Read,
    /// Not TOML.
    Syntax,
    /// A key the loader does not know (a typo, usually).
    UnknownKey,
    /// A known key with a bad or missing value.
    Invalid,
}

impl ConfigError {
    /// The dotted path of the offending key, when the error is about one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Whether the key is not one the loader knows.
    pub fn is_unknown_key(&self) -> bool {
        self.kind == ErrorKind::UnknownKey
    }

    /// A known key with a bad or missing value.
    pub(super) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            kind: ErrorKind::Invalid,
            key: Some(key.into()),
            message: message.into(),
        }
    }

    /// A key the loader does not know; `hint` follows the key in the message.
    pub(super) fn unknown_key(key: String, hint: String) -> Self {
        ConfigError {
            kind: ErrorKind::UnknownKey,
            key: Some(key),
            message: hint,
        }
    }

    /// The file could not be read.
    pub(super) fn read(message: String) -> Self {
        ConfigError {
            kind: ErrorKind::Read,
            key: None,
            message,
        }
    }

    /// A TOML syntax error with the line and column a steward's editor shows.
    pub(super) fn syntax(text: &str, error: &toml::de::Error) -> Self {
        let message = error.message().trim_end();
        let message = match error.span() {
            Some(span) => {
                let before = text.get(..span.start).unwrap_or(text);
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!("config is not valid TOML at line {line}, column {column}: {message}")
            }
            None => format!("config is not valid TOML: {message}"),
        };
        ConfigError {
            kind: ErrorKind::Syntax,
            key: None,
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, &self.key) {
            (ErrorKind::UnknownKey, Some(key)) => write!(f, "unknown key `{key}`{}", self.message),
            (_, Some(key)) => write!(f, "config key `{key}`: {}", self.message),
            (_, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

pub(super) type Result<T, E = ConfigError> = std::result::Result<T, E>;
