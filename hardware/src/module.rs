//! The module families lorabridge drives: one name for each, shared by board profiles,
//! configuration files and the drivers.
//!
//! The kind is a board fact (which firmware or chip sits on the board), so it lives here;
//! what a driver knows of a kind (its airtime on air, the settings it accepts) lives with the
//! drivers in `lorabridge-radio`.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A module family, named as board profiles and configuration files write it
/// (`module = "rnode"`, `driver = "sx126x"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleKind {
    /// RAK3172 and other modules with RUI3 AT firmware, in LoRa P2P mode.
    Rui3,
    /// RAK811 with AT firmware v3.0.x, in LoRa P2P mode.
    Rak811,
    /// Boards flashed with the RNode firmware, spoken to over KISS.
    Rnode,
    /// Ebyte E22 UART modules (registers, transparent mode, M0/M1/AUX pins); they hear only
    /// other E22s.
    E22,
    /// An SX1262 (SX126x family) on SPI, driven through its command set by the host.
    Sx126x,
    /// An SX1276/77/78/79 (SX127x family) on SPI, driven through its registers by the host.
    Sx127x,
}

/// Every kind, in the order messages list them.
const ALL: [ModuleKind; 6] = [
    ModuleKind::Rui3,
    ModuleKind::Rak811,
    ModuleKind::Rnode,
    ModuleKind::E22,
    ModuleKind::Sx126x,
    ModuleKind::Sx127x,
];

impl ModuleKind {
    /// Whether the host talks to the radio chip over SPI (no serial line, no baud).
    pub fn is_spi(self) -> bool {
        matches!(self, ModuleKind::Sx126x | ModuleKind::Sx127x)
    }

    /// The name used on the command line, in configuration files and in board profiles.
    pub fn name(self) -> &'static str {
        match self {
            ModuleKind::Rui3 => "rui3",
            ModuleKind::Rak811 => "rak811",
            ModuleKind::Rnode => "rnode",
            ModuleKind::E22 => "e22",
            ModuleKind::Sx126x => "sx126x",
            ModuleKind::Sx127x => "sx127x",
        }
    }

    /// How the module family is called in messages to stewards.
    pub fn module_name(self) -> &'static str {
        match self {
            ModuleKind::Rui3 => "RUI3",
            ModuleKind::Rak811 => "RAK811",
            ModuleKind::Rnode => "RNode",
            ModuleKind::E22 => "Ebyte E22",
            ModuleKind::Sx126x => "SX126x (SPI)",
            ModuleKind::Sx127x => "SX127x (SPI)",
        }
    }
}

impl fmt::Display for ModuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no module kind; the message lists the names there are.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unknown driver {0:?}: expected rui3, rak811, rnode, e22, sx126x or sx127x")]
pub struct UnknownModule(pub String);

impl std::str::FromStr for ModuleKind {
    type Err = UnknownModule;

    /// Any case: `RNode` and `rnode` are one kind.
    fn from_str(s: &str) -> Result<Self, UnknownModule> {
        ALL.into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownModule(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_in_any_case_and_others_are_refused() {
        for kind in ALL {
            assert_eq!(kind.name().parse::<ModuleKind>(), Ok(kind));
            assert_eq!(
                kind.to_string().to_uppercase().parse::<ModuleKind>(),
                Ok(kind)
            );
        }
        assert_eq!("RNode".parse::<ModuleKind>(), Ok(ModuleKind::Rnode));
        let error = "e32".parse::<ModuleKind>().unwrap_err().to_string();
        assert!(
            error.contains("\"e32\"") && error.contains("sx127x"),
            "{error}"
        );
    }
}
