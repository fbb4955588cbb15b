//! The lorabridge daemon as a library: the binary is a thin CLI over it, and the end-to-end
//! tests run real bridges in-process (and restart them) through it.

pub mod actor;
pub mod boot_clock;
pub mod bridge;
pub mod bridge_db;
pub mod config;
pub mod doctor;
pub mod error;
pub mod grpc;
pub mod lores;
pub mod node;
pub mod node_key;
pub mod reticulum;
pub mod run;
mod secret_file;
pub mod service;
pub mod status_report;
pub mod web;
