//! Errors a radio reports to its caller.

use std::time::Duration;

use thiserror::Error;

/// Why a radio operation did not happen.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum RadioError {
    /// The frame does not fit in one module transmission.
    #[error("frame of {size} bytes exceeds the module's MTU of {mtu} bytes")]
    FrameTooLarge { size: usize, mtu: usize },
    /// Empty frames cannot be sent by any of the modules.
    #[error("empty frame: the modules cannot send zero bytes")]
    EmptyFrame,
    /// The module cannot do what was asked: a modulation its command set cannot express, or
    /// an operation that needs more than the call gives (an E22 needs its pins).
    #[error("not supported by {module}: {reason}")]
    Unsupported {
        module: &'static str,
        reason: String,
    },
    /// A send or the modulation was attempted before [`crate::Radio::configure`].
    #[error("radio not configured: call configure first")]
    NotConfigured,
    /// The module answered a command with an error.
    #[error("module rejected {command:?}: {reply}")]
    Rejected { command: String, reply: String },
    /// The module did not answer a command in time.
    #[error("no answer to {command:?} within {timeout:?}")]
    Timeout { command: String, timeout: Duration },
    /// The module answered something unexpected (a failed detect, a wrong echo, old firmware).
    #[error("unexpected module: {0}")]
    Protocol(String),
    /// A GPIO line the driver needs (an E22's M0/M1/AUX) could not be used.
    #[error("GPIO line {line}: {reason}")]
    Gpio { line: String, reason: String },
    /// The serial port could not be used.
    #[error("serial port {path}: {reason}")]
    Port { path: String, reason: String },
    /// A queued frame waited longer than the queue timeout while the port was away.
    #[error("port unavailable for {waited:?}: frame not sent ({reason})")]
    Unavailable { waited: Duration, reason: String },
    /// Listen-before-talk kept finding another frame on air: the module refused to send
    /// `attempts` times, over `waited`, and the frame was not sent. The channel is congested
    /// (or someone transmits without pause); the caller may try again later.
    #[error(
        "channel busy: {attempts} tries over {waited:?} found another frame on air; frame not sent"
    )]
    ChannelBusy { attempts: u32, waited: Duration },
    /// The driver queue is full; the caller should slow down.
    #[error("driver queue full ({capacity} requests)")]
    QueueFull { capacity: usize },
    /// The regional airtime rules do not allow this transmission now; `retry_after` is how
    /// long until the same send would be allowed (`None`: never, e.g. the frame alone is
    /// longer than the budget, or the channel is outside the region).
    #[error("{}", duty_cycle_text(retry_after, reason))]
    DutyCycle {
        retry_after: Option<Duration>,
        reason: String,
    },
    /// The driver gave up reconnecting.
    #[error("driver failed: {0}")]
    Failed(String),
    /// The driver was shut down.
    #[error("radio closed")]
    Closed,
}

fn duty_cycle_text(retry_after: &Option<Duration>, reason: &str) -> String {
    match retry_after {
        Some(wait) => format!("refused by the airtime rules ({reason}); may send in {wait:?}"),
        None => format!("refused by the airtime rules ({reason}); this send can never be allowed"),
    }
}
