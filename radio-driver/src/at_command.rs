//! The command/reply exchange both AT dialects (RUI3 and RAK811) run over an [`OpenPort`]: write one
//! line, wait within a timeout for the module's final answer, ask again while it is busy.
//!
//! The dialects differ only in syntax: each keeps its own parser and says, in
//! [`AtParser::sort`], which of its events mean "done", "refused" or "a line of the answer".

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::RadioError;
use crate::driver::open_port::{Classified, Decode, OpenPort, PortError, StepError};

/// One AT dialect's pure parser, and how its events read to the shared exchange code.
pub(crate) trait AtParser: Default + Send + 'static {
    /// What the parser reports.
    type Event: Send + fmt::Debug + 'static;
    /// Most text lines kept as one command's answer: a bound on memory when a module floods.
    const MAX_TEXT_LINES: usize;
    /// Feeds bytes from the port; appends events to `out`.
    fn push(&mut self, bytes: &[u8], out: &mut Vec<Self::Event>);
    /// Puts one event in the terms both dialects share.
    fn sort(event: Self::Event) -> AtEvent<Self::Event>;
    /// Whether a refusal, worded as in [`AtEvent::Refused`], means "busy: ask again later".
    fn is_busy(reply: &str) -> bool;
}

/// An AT module's output in the terms both dialects share.
#[derive(Debug)]
pub(crate) enum AtEvent<E> {
    /// A frame received on air.
    Frame {
        rssi: i16,
        snr: i16,
        payload: Vec<u8>,
    },
    /// Garbage: a malformed receive report or an overlong line.
    Noise,
    /// The command succeeded, with whatever followed `OK` on its line (RAK811 puts the
    /// firmware version there).
    Ok(String),
    /// The module refused the command; its reply, worded for the caller.
    Refused(String),
    /// A line of text: query values, listings, banners.
    Text(String),
    /// Anything else the dialect reports (transmit done, reboot finished).
    Other(E),
}

/// Adapts an [`AtParser`] to the driver's [`Decode`]: frames and noise go to the driver, the
/// rest waits for the exchange that asked.
pub(crate) struct AtDecoder<P: AtParser> {
    parser: P,
    /// The parser's events of one push, before sorting (emptied every time).
    scratch: Vec<P::Event>,
}

// By hand: a derive would also ask for a default event, which no dialect has.
impl<P: AtParser> Default for AtDecoder<P> {
    fn default() -> Self {
        Self {
            parser: P::default(),
            scratch: Vec::new(),
        }
    }
}

impl<P: AtParser> Decode for AtDecoder<P> {
    type Event = AtEvent<P::Event>;

    fn push(&mut self, bytes: &[u8], out: &mut Vec<Self::Event>) {
        self.parser.push(bytes, &mut self.scratch);
        out.extend(self.scratch.drain(..).map(P::sort));
    }

    fn classify(event: Self::Event) -> Classified<Self::Event> {
        match event {
            AtEvent::Frame { rssi, snr, payload } => Classified::Frame {
                payload,
                rssi: Some(rssi),
                snr: Some(f32::from(snr)),
            },
            AtEvent::Noise => Classified::Noise,
            other => Classified::Event(other),
        }
    }
}

/// An open port to an AT module.
pub(crate) type AtLink<P> = OpenPort<AtDecoder<P>>;

/// A command's successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    /// What followed `OK` on its line; empty for RUI3.
    pub info: String,
    /// The text lines before `OK` (query values), at most [`AtParser::MAX_TEXT_LINES`].
    pub texts: Vec<String>,
}

/// Writes one command line. Replies left over from earlier commands are forgotten first, so
/// that a late `OK` is never taken for this command's answer.
pub(crate) async fn send_line<P: AtParser>(
    link: &mut AtLink<P>,
    line: &str,
    timeout: Duration,
) -> Result<(), PortError> {
    link.clear_events();
    link.write(format!("{line}\r\n").as_bytes(), timeout).await
}

/// The module's refusal of `line`, as the caller hears it.
pub(crate) fn rejected(line: &str, reply: String) -> StepError {
    StepError::Radio(RadioError::Rejected {
        command: line.into(),
        reply,
    })
}

/// Runs one command: writes it and waits, within `timeout`, for `OK` or a refusal.
pub(crate) async fn command<P: AtParser>(
    link: &mut AtLink<P>,
    line: &str,
    timeout: Duration,
) -> Result<Answer, StepError> {
    let lost = |e: PortError| StepError::port_after(e, line, timeout);
    send_line(link, line, timeout).await.map_err(lost)?;
    let deadline = Instant::now() + timeout;
    let mut texts = Vec::new();
    loop {
        match link.next_event(deadline).await.map_err(lost)? {
            AtEvent::Ok(info) => return Ok(Answer { info, texts }),
            AtEvent::Refused(reply) => return Err(rejected(line, reply)),
            AtEvent::Text(t) if texts.len() < P::MAX_TEXT_LINES => texts.push(t),
            _ => {}
        }
    }
}

/// How often a greeting is tried (see [`greet`]).
const GREETING_TRIES: usize = 3;

/// Runs the first command of a conversation, trying it a few times: it may meet garbage left
/// in the module's input buffer, which spoils the line. The last failure is returned.
pub(crate) async fn greet<P: AtParser>(
    link: &mut AtLink<P>,
    line: &str,
    timeout: Duration,
) -> Result<Answer, StepError> {
    let mut last = None;
    for _ in 0..GREETING_TRIES {
        match command(link, line, timeout).await {
            Ok(answer) => return Ok(answer),
            Err(e) => last = Some(e),
        }
    }
    let unanswered = || StepError::Radio(RadioError::Protocol(format!("no answer to {line}")));
    Err(last.unwrap_or_else(unanswered))
}

/// How a dialect asks again when the module answers a command "busy".
pub(crate) struct BusyRetry<'a> {
    /// Retries at most (the driver's `busy_retries`).
    pub retries: u32,
    /// How long to wait before the nth retry (n counts from 1): longer each time gives the
    /// module longer to finish what it is doing; random spreads stations that deferred to the
    /// same frame apart.
    pub pause: &'a (dyn Fn(u32) -> Duration + Sync),
    /// A command run before each pause, such as re-arming a receiver so that frames arriving
    /// while we wait are heard (the port is read throughout the pause).
    pub wait_with: Option<&'a str>,
    /// A command that removes the cause, run before every retry (a RUI3 module is busy while
    /// its receiver is armed).
    pub clear: Option<&'a str>,
}

/// Why a command retried while busy failed.
#[derive(Debug)]
pub(crate) enum RetryError {
    /// The command failed, or was refused (busy more often than allowed, or otherwise).
    Command(StepError),
    /// The clearing command (or the one run while waiting) failed: the exchange stopped
    /// half-way.
    Clear(StepError),
}

impl From<RetryError> for StepError {
    fn from(e: RetryError) -> Self {
        match e {
            RetryError::Command(e) | RetryError::Clear(e) => e,
        }
    }
}

/// Runs a command, asking again after a pause while the module answers busy; every retry is
/// counted in the driver's stats.
pub(crate) async fn command_retrying_busy<P: AtParser>(
    link: &mut AtLink<P>,
    line: &str,
    timeout: Duration,
    retry: &BusyRetry<'_>,
) -> Result<Answer, RetryError> {
    let mut attempt = 0;
    loop {
        match command(link, line, timeout).await {
            Err(e) if is_busy::<P>(&e) && attempt < retry.retries => {
                attempt += 1;
                link.stats().busy_retries.fetch_add(1, Ordering::Relaxed);
                if let Some(wait_with) = retry.wait_with {
                    command(link, wait_with, timeout)
                        .await
                        .map_err(RetryError::Clear)?;
                }
                link.settle((retry.pause)(attempt))
                    .await
                    .map_err(|e| RetryError::Clear(StepError::port(e, line)))?;
                if let Some(clear) = retry.clear {
                    command(link, clear, timeout)
                        .await
                        .map_err(RetryError::Clear)?;
                }
            }
            other => return other.map_err(RetryError::Command),
        }
    }
}

/// Whether the module refused a command as busy.
pub(crate) fn is_busy<P: AtParser>(e: &StepError) -> bool {
    matches!(e, StepError::Radio(RadioError::Rejected { reply, .. }) if P::is_busy(reply))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
    use tokio::sync::mpsc;

    use super::*;
    use crate::driver::open_port::{FrameSink, StatsInner};
    use crate::rui3::Rui3Parser;

    const T: Duration = Duration::from_secs(5);
    const SEND: &str = "AT+PSEND=00";
    const CLEAR: &str = "AT+PRECV=0";

    /// What a scripted exchange left behind: its outcome, the lines the module read, and the
    /// busy retries the driver counted.
    type Run<R> = (R, Vec<String>, u64);

    /// Runs `exchange` over an in-memory pipe to a module that answers the lines it reads,
    /// one by one, with `replies`.
    async fn against<R>(
        replies: &[&str],
        exchange: impl AsyncFnOnce(&mut AtLink<Rui3Parser>) -> R,
    ) -> Run<R> {
        let (ours, theirs) = tokio::io::duplex(4096);
        let (tx, _) = mpsc::channel(1);
        let stats = Arc::new(StatsInner::default());
        let mut link = OpenPort::new(Box::new(ours), FrameSink { tx, stats });
        let (outcome, heard) = tokio::join!(exchange(&mut link), module(theirs, replies));
        let busy = link.stats().busy_retries.load(Ordering::Relaxed);
        (outcome, heard, busy)
    }

    /// Plays the module: reads one command line per reply and answers it with that reply.
    async fn module(port: DuplexStream, replies: &[&str]) -> Vec<String> {
        let mut port = BufReader::new(port);
        let mut heard = Vec::new();
        for reply in replies {
            let mut line = String::new();
            port.read_line(&mut line).await.expect("a command");
            heard.push(line.trim_end().to_string());
            let reply = format!("{reply}\r\n");
            port.get_mut()
                .write_all(reply.as_bytes())
                .await
                .expect("reply");
        }
        heard
    }

    /// Sends [`SEND`], retrying up to `retries` times after [`CLEAR`].
    async fn send_clearing(
        link: &mut AtLink<Rui3Parser>,
        retries: u32,
    ) -> Result<Answer, RetryError> {
        let retry = BusyRetry {
            retries,
            pause: &|n| Duration::from_millis(1) * n,
            wait_with: None,
            clear: Some(CLEAR),
        };
        command_retrying_busy(link, SEND, T, &retry).await
    }

    /// Whether `e` is the module's "busy" answer to [`SEND`].
    fn is_busy_refusal(e: &StepError) -> bool {
        matches!(e, StepError::Radio(RadioError::Rejected { command, reply })
            if command == SEND && reply == "AT_BUSY_ERROR")
    }

    #[tokio::test]
    async fn command_keeps_the_text_before_ok() {
        let (answer, heard, _) = against(&["AT+NWM=0\r\nOK"], async |l| {
            command(l, "AT+NWM=?", T).await
        })
        .await;
        let answer = answer.expect("answered");
        assert_eq!(
            (answer.info.as_str(), answer.texts),
            ("", vec!["AT+NWM=0".into()])
        );
        assert_eq!(heard, ["AT+NWM=?"]);
    }

    #[tokio::test]
    async fn refusal_names_the_command_and_the_reply() {
        let (answer, ..) = against(&["AT_BUSY_ERROR"], async |l| command(l, SEND, T).await).await;
        assert!(is_busy_refusal(&answer.expect_err("refused")));
    }

    #[tokio::test]
    async fn greeting_is_tried_again_after_garbage() {
        let replies = ["AT_ERROR", "AT_ERROR", "OK"];
        let (answer, heard, _) = against(&replies, async |l| greet(l, "AT", T).await).await;
        assert!(answer.is_ok());
        assert_eq!(heard, ["AT", "AT", "AT"]);
    }

    #[tokio::test]
    async fn busy_is_counted_cleared_and_retried() {
        let replies = ["AT_BUSY_ERROR", "OK", "AT_BUSY_ERROR", "OK", "OK"];
        let (answer, heard, busy) = against(&replies, async |l| send_clearing(l, 4).await).await;
        assert!(answer.is_ok());
        assert_eq!(heard, [SEND, CLEAR, SEND, CLEAR, SEND]);
        assert_eq!(busy, 2);
    }

    #[tokio::test]
    async fn busy_too_often_is_the_refusal_of_the_command() {
        let replies = ["AT_BUSY_ERROR", "OK", "AT_BUSY_ERROR"];
        let (answer, ..) = against(&replies, async |l| send_clearing(l, 1).await).await;
        assert!(
            matches!(&answer, Err(RetryError::Command(e)) if is_busy_refusal(e)),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_clear_is_told_apart() {
        let replies = ["AT_BUSY_ERROR", "AT_ERROR"];
        let (answer, ..) = against(&replies, async |l| send_clearing(l, 1).await).await;
        assert!(matches!(answer, Err(RetryError::Clear(_))), "{answer:?}");
    }
}
