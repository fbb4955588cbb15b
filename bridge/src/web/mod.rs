//! The steward's window: a live status page, `/metrics` for Prometheus and the status as
//! JSON, all served on the status listener beside the gRPC status service.
//!
//! Why on `status_listen` rather than a listener of its own: the page, the JSON, the metrics
//! and the gRPC status are one set of read-only facts, so one address (and one decision on who
//! may reach it: bind address, firewall) covers them all, `lorabridge status` and the browser
//! point at the same place, and the config gains no key. One connection handler tells the
//! two apart: a request with content type `application/grpc` goes to tonic, any other to
//! the web endpoints. Browsers speak HTTP/1.1 to it, gRPC clients HTTP/2.
//!
//! The parts: [`snapshot`] builds the status (for gRPC too), [`history`] keeps the little of
//! the past the page shows, [`server`] accepts connections within fixed bounds, `endpoints`
//! answers the web requests, `events` streams the live view (server-sent events), `metrics`
//! writes the Prometheus text, `json` writes ids in hex, and `assets/` holds the page,
//! compiled into the binary (stewards' servers are often offline: no CDN).

mod endpoints;
mod events;
pub mod history;
pub mod json;
mod metrics;
pub mod server;
pub mod snapshot;

pub use history::{History, Recorder};
pub use server::{ServeError, serve};
pub use snapshot::{Configured, SnapshotError, StatusSource};
