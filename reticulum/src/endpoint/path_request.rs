//! Path requests, both ways: asking transport nodes for the announce of a bridge we do not
//! know yet, and answering those who look for us with an announce; each rate-limited. Apart
//! from the endpoint's top module because it is a protocol of its own, on a PLAIN
//! destination, beside the bridges' SINGLE packets.

use std::time::Duration;

use rand_chacha::rand_core::Rng;

use super::{Endpoint, Handled};
use crate::packet::{DestinationType, HASH_LEN, Hash16, Packet, PacketType, context};

/// The PLAIN destination transport nodes take path requests on.
pub(super) const PATH_REQUEST_NAME: &str = "rnstransport.path.request";
/// At most one path request per destination in this time, and one answer to requests for us.
const PATH_REQUEST_INTERVAL: Duration = Duration::from_secs(30);
const PATH_ANSWER_INTERVAL: Duration = Duration::from_secs(10);
/// Destinations whose path requests are remembered for rate limiting.
const MAX_PATH_REQUESTS: usize = 256;

impl Endpoint {
    /// Asks the network for `destination`'s announce (a transport node that knows the path
    /// answers with it). Rate-limited per destination; returns whether a request was queued.
    pub fn request_path(&mut self, now: Duration, destination: &Hash16) -> bool {
        if self
            .path_requests
            .get(destination)
            .is_some_and(|t| now < *t + PATH_REQUEST_INTERVAL)
        {
            return false;
        }
        if self.path_requests.len() >= MAX_PATH_REQUESTS {
            self.path_requests
                .retain(|_, t| now < *t + PATH_REQUEST_INTERVAL);
            if self.path_requests.len() >= MAX_PATH_REQUESTS {
                return false;
            }
        }
        self.path_requests.insert(*destination, now);
        let mut data = destination.0.to_vec();
        let mut tag = [0u8; HASH_LEN];
        self.rng.fill_bytes(&mut tag);
        data.extend_from_slice(&tag);
        let packet = Packet::new(
            PacketType::Data,
            DestinationType::Plain,
            self.path_request_destination,
            context::NONE,
            data,
        );
        self.stats.path_requests_sent += 1;
        self.queue(packet);
        true
    }

    /// Someone looks for a path to us (a transport node without our announce forwards the
    /// request): announce, at most once per `PATH_ANSWER_INTERVAL`.
    pub(super) fn on_path_request(&mut self, now: Duration, packet: &Packet) -> Handled {
        if packet.data.get(..HASH_LEN) != Some(&self.destination.0[..]) {
            return Handled::Ignored;
        }
        if self
            .last_path_answer
            .is_some_and(|t| now < t + PATH_ANSWER_INTERVAL)
        {
            return Handled::PathRequest;
        }
        self.last_path_answer = Some(now);
        self.stats.path_requests_answered += 1;
        self.announce(now);
        Handled::PathRequest
    }
}
