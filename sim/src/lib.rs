//! A LoRa mesh simulator in virtual time, and modem emulators on pseudo-terminals.

pub mod modem;
