//! A handle per request: [`Replies`] wraps a backend and hands out a [`Reply`] for each
//! request it accepts. The reply receives that request's events, and only those; cancelling
//! it, or dropping it, cancels the request. Whoever holds the reply (an NPC entity, a CLI
//! loop) owns the request, so nothing is ever delivered to someone who is gone.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};

use super::{BackendEvent, BackendRequest, DialogueBackend, RequestId, SubmitError};

/// The events of one request, and the right to cancel it. Dropping a reply that has not seen
/// its last event cancels the request.
#[derive(Debug)]
pub struct Reply {
    id: RequestId,
    // In a `Mutex` only so the reply is `Sync` (an ECS component); `&mut self` access never
    // locks.
    events: Mutex<Receiver<BackendEvent>>,
    cancel: Sender<RequestId>,
    done: bool,
}

impl Reply {
    /// The request's id.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The next event that has arrived, if any. After the last one (see
    /// [`BackendEvent::is_final`]) the reply is done and returns `None`.
    pub fn try_next(&mut self) -> Option<BackendEvent> {
        if self.done {
            return None;
        }
        let events = match self.events.get_mut() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        match events.try_recv() {
            Ok(event) => {
                self.done = event.is_final();
                Some(event)
            }
            Err(TryRecvError::Empty) => None,
            // The router is gone (the backend was replaced or dropped): nothing more comes.
            Err(TryRecvError::Disconnected) => {
                self.done = true;
                None
            }
        }
    }

    /// Whether the last event was taken (or can no longer come).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Cancels the request (it still ends with its last event: `Finished { Cancelled }` for
    /// a line). Takes effect at the router's next [`Replies::pump`].
    pub fn cancel(&self) {
        if !self.done {
            let _ = self.cancel.send(self.id);
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// A backend with a [`Reply`] per request. Not `Clone`: one router owns the backend.
pub struct Replies {
    backend: Box<dyn DialogueBackend>,
    open: HashMap<RequestId, Sender<BackendEvent>>,
    cancel_tx: Sender<RequestId>,
    cancel_rx: Receiver<RequestId>,
    next_id: RequestId,
    events: Vec<BackendEvent>,
}

impl Replies {
    /// Wraps a backend.
    pub fn new(backend: Box<dyn DialogueBackend>) -> Self {
        let (cancel_tx, cancel_rx) = mpsc::channel();
        Self {
            backend,
            open: HashMap::new(),
            cancel_tx,
            cancel_rx,
            next_id: 1,
            events: Vec::new(),
        }
    }

    /// The backend.
    pub fn backend(&mut self) -> &mut dyn DialogueBackend {
        self.backend.as_mut()
    }

    /// Puts another backend in place (a failed model replaced by authored lines). Every open
    /// request is dropped: its reply sees no more events and says it is done.
    pub fn replace(&mut self, backend: Box<dyn DialogueBackend>) -> Box<dyn DialogueBackend> {
        self.open.clear();
        std::mem::replace(&mut self.backend, backend)
    }

    /// A fresh request id.
    pub fn next_id(&mut self) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Submits a request (its id from [`next_id`](Self::next_id)) and returns its reply.
    pub fn submit(&mut self, request: BackendRequest) -> Result<Reply, SubmitError> {
        let id = request.id().unwrap_or(0);
        self.backend.submit(request)?;
        let (tx, rx) = mpsc::channel();
        self.open.insert(id, tx);
        Ok(Reply {
            id,
            events: Mutex::new(rx),
            cancel: self.cancel_tx.clone(),
            done: false,
        })
    }

    /// Requests that have not seen their last event.
    pub fn in_flight(&self) -> usize {
        self.open.len()
    }

    /// Passes cancels on, then moves at most `max` ready events to their replies; returns how
    /// many events came. Events of a dropped reply are discarded. Never blocks.
    pub fn pump(&mut self, max: usize) -> usize {
        while let Ok(id) = self.cancel_rx.try_recv() {
            if self.open.contains_key(&id) {
                self.backend.cancel(id);
            }
        }
        self.events.clear();
        let n = self.backend.poll(max, &mut self.events);
        for event in self.events.drain(..) {
            let Some(id) = event.id() else { continue };
            let last = event.is_final();
            let delivered = self.open.get(&id).is_some_and(|tx| tx.send(event).is_ok());
            if last || !delivered {
                self.open.remove(&id);
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::backend::{ConversationId, GenerateRequest, Prompt, Scripted};
    use crate::engine::generate::FinishReason;
    use crate::engine::sampler::SamplingParams;

    fn line(r: &mut Replies, fallback: &str) -> BackendRequest {
        BackendRequest::Generate(GenerateRequest {
            id: r.next_id(),
            conversation: ConversationId(1),
            prompt: Prompt::new("", "hello"),
            params: SamplingParams::default(),
            priority: 0,
            fallback: Some(fallback.into()),
            constraint: None,
            banned: None,
        })
    }

    /// Pumps until `reply` is done, collecting its events.
    fn drain(r: &mut Replies, reply: &mut Reply) -> Vec<BackendEvent> {
        let mut out = Vec::new();
        for _ in 0..10_000 {
            r.pump(64);
            while let Some(e) = reply.try_next() {
                out.push(e);
            }
            if reply.is_done() {
                return out;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("the reply never finished: {out:?}");
    }

    fn finished_text(events: &[BackendEvent]) -> (String, FinishReason) {
        match events.last() {
            Some(BackendEvent::Finished { text, reason, .. }) => (text.clone(), *reason),
            other => panic!("expected Finished, got {other:?}"),
        }
    }

    #[test]
    fn each_reply_gets_only_its_own_events() {
        let mut r = Replies::new(Box::new(Scripted::new()));
        let req = line(&mut r, "one two three");
        let mut a = r.submit(req).unwrap();
        let req = line(&mut r, "four five");
        let mut b = r.submit(req).unwrap();
        assert_eq!(r.in_flight(), 2);
        let from_b = drain(&mut r, &mut b);
        let from_a = drain(&mut r, &mut a);
        assert!(from_a.iter().all(|e| e.id() == Some(a.id())));
        assert!(from_b.iter().all(|e| e.id() == Some(b.id())));
        assert_eq!(finished_text(&from_a).0, "one two three");
        assert_eq!(finished_text(&from_b).0, "four five");
        assert_eq!(r.in_flight(), 0);
        assert_eq!(a.try_next(), None);
    }

    #[test]
    fn cancel_and_drop_cancel_the_request() {
        let mut r = Replies::new(Box::new(Scripted::new()));
        let long = "a b c d e f g h i j k l m n o p q r s t u v w x y z";
        let req = line(&mut r, long);
        let mut a = r.submit(req).unwrap();
        a.cancel();
        let (_, reason) = finished_text(&drain(&mut r, &mut a));
        assert_eq!(reason, FinishReason::Cancelled);
        // A dropped reply cancels its request; its events go nowhere.
        let req = line(&mut r, long);
        let b = r.submit(req).unwrap();
        drop(b);
        for _ in 0..10_000 {
            r.pump(64);
            if r.in_flight() == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(r.in_flight(), 0);
    }

    #[test]
    fn replacing_the_backend_ends_open_replies() {
        let mut r = Replies::new(Box::new(Scripted::new()));
        let req = line(&mut r, "never heard");
        let mut a = r.submit(req).unwrap();
        let _old = r.replace(Box::new(Scripted::new()));
        assert_eq!(r.in_flight(), 0);
        assert_eq!(a.try_next(), None);
        assert!(a.is_done());
    }
}
