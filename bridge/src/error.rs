//! Why a Publish did not happen, and the gRPC status each cause gives an app.
//!
//! The codes follow LoRes' own server where it has one: UNAVAILABLE when the node is not
//! running, FAILED_PRECONDITION when the topic has no open stream, INTERNAL when the node
//! failed the publish. Causes LoRes does not have get the standard code for them.

use std::time::Duration;

use thiserror::Error;
use tonic::Status;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PublishError {
    #[error("the bridge is stopping")]
    Stopped,
    #[error("this bridge does not carry the topic")]
    NotCarried,
    #[error("the topic's stream is closed: {0}")]
    StreamClosed(String),
    #[error("the node could not publish: {0}")]
    Failed(String),
    #[error("too many publishes are waiting; retry shortly")]
    Busy,
    #[error("the node did not persist the operation within {0:?}")]
    TimedOut(Duration),
    #[error("the bridge's state database failed: {0}")]
    BridgeDb(String),
}

impl From<PublishError> for Status {
    fn from(error: PublishError) -> Status {
        let message = error.to_string();
        match error {
            PublishError::Stopped => Status::unavailable(message),
            PublishError::NotCarried | PublishError::StreamClosed(_) => {
                Status::failed_precondition(message)
            }
            PublishError::Failed(_) | PublishError::BridgeDb(_) => Status::internal(message),
            PublishError::Busy => Status::resource_exhausted(message),
            PublishError::TimedOut(_) => Status::deadline_exceeded(message),
        }
    }
}
