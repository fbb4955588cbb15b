//! Our Reticulum transport on a task of its own, for tests that block on a Python peer while
//! the transport must keep running (in the daemon, its loop drives the transport instead).

use lorabridge::reticulum::{Reticulum, ReticulumEvent, TransportStats};
use lorabridge_reticulum::Hash16;
use tokio::sync::{mpsc, oneshot};

type Call = Box<dyn FnOnce(&mut Reticulum) + Send>;

/// A [`Reticulum`] driven by a task: its events arrive on the receiver `spawn` returns, and
/// calls run on the task between events. Dropping it stops the task and the transport.
pub struct DrivenRns {
    calls: mpsc::UnboundedSender<Call>,
    destination: Hash16,
    task: tokio::task::JoinHandle<()>,
}

impl DrivenRns {
    /// Must run inside a tokio runtime.
    pub fn spawn(mut rns: Reticulum) -> (Self, mpsc::UnboundedReceiver<ReticulumEvent>) {
        let destination = rns.destination();
        let (calls, mut call_rx) = mpsc::unbounded_channel::<Call>();
        let (events_tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    call = call_rx.recv() => match call {
                        Some(call) => call(&mut rns),
                        None => return,
                    },
                    event = rns.next_event() => {
                        let Some(event) = event else { return };
                        if events_tx.send(event).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let driven = Self {
            calls,
            destination,
            task,
        };
        (driven, events)
    }

    pub fn destination(&self) -> Hash16 {
        self.destination
    }

    /// Runs `f` on the transport's task and returns its result.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Reticulum) -> R + Send + 'static,
    ) -> R {
        let (reply, result) = oneshot::channel();
        let call: Call = Box::new(move |rns| {
            let _ = reply.send(f(rns));
        });
        self.calls.send(call).expect("the transport's task runs");
        result.await.expect("the transport's task answers")
    }

    /// Whether the transport took the frame (see [`Reticulum::send`]).
    pub async fn send(&self, to: Hash16, frame: Vec<u8>) -> bool {
        self.call(move |rns| rns.send(to, &frame).is_ok()).await
    }

    pub async fn announce(&self) {
        self.call(Reticulum::announce).await
    }

    pub async fn stats(&self) -> TransportStats {
        self.call(|rns| rns.stats()).await
    }
}

impl Drop for DrivenRns {
    fn drop(&mut self) {
        self.task.abort();
    }
}
