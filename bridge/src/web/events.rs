//! The live view: the status as server-sent events, one `status` event with the JSON of a
//! snapshot on opening and after each refresh of the actor's status (every second).
//!
//! Why server-sent events and not a WebSocket: the page only listens, the browser's
//! `EventSource` reconnects by itself after a restart of the bridge, and it is plain HTTP,
//! which needs no upgrade handling and no extra crate.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::StreamBody;
use hyper::body::Frame;
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::snapshot::StatusSource;
use crate::actor::status::Transports;

/// How long the browser waits before reconnecting, in milliseconds.
const RETRY_MS: u32 = 3000;

struct Live {
    source: StatusSource,
    refreshes: watch::Receiver<Transports>,
    shutdown: watch::Receiver<bool>,
    opened: bool,
    /// Holds one of the live-view places until the stream is dropped (the client left).
    _permit: OwnedSemaphorePermit,
}

/// The event stream, as a response body; it ends when the bridge stops.
pub fn stream(
    source: StatusSource,
    permit: OwnedSemaphorePermit,
    shutdown: watch::Receiver<bool>,
) -> StreamBody<impl Stream<Item = Result<Frame<Bytes>, Infallible>> + Send> {
    let mut refreshes = source.refreshes();
    refreshes.mark_unchanged();
    let live = Live {
        source,
        refreshes,
        shutdown,
        opened: false,
        _permit: permit,
    };
    let events = futures_util::stream::unfold(live, |mut live| async move {
        if *live.shutdown.borrow() {
            return None;
        }
        let mut event = String::new();
        if live.opened {
            tokio::select! {
                changed = live.refreshes.changed() => changed.ok()?,
                _ = live.shutdown.changed() => return None,
            }
        } else {
            live.opened = true;
            event.push_str(&format!("retry: {RETRY_MS}\n"));
        }
        let snapshot = live.source.snapshot().await;
        let json = snapshot
            .map_err(|e| e.to_string())
            .and_then(|status| serde_json::to_string(&status).map_err(|e| e.to_string()));
        match json {
            Ok(json) => event.push_str(&format!("event: status\ndata: {json}\n\n")),
            Err(e) => event.push_str(&format!("event: problem\ndata: {}\n\n", one_line(&e))),
        }
        Some((Bytes::from(event), live))
    });
    StreamBody::new(events.map(|event| Ok(Frame::data(event))))
}

/// An event's data ends at a newline.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}
