//! The `Radio` trait and serial drivers for LoRa modules.
