//! What the demo, the examples and the end-to-end tests share, kept out of the daemon: a
//! [`neighbourhood`] of whole bridges in one process, on iroh, emulated LoRa modules or
//! Reticulum, and the [`demo`] a newcomer runs first; the reference Reticulum stack as child
//! processes ([`rns`]) and our transport driven on a task of its own ([`driven_rns`]); a `lorabridge run` process on files of its own ([`station`]).

pub mod demo;
pub mod driven_rns;
pub mod neighbourhood;
pub mod rns;
pub mod station;
