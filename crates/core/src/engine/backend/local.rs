//! [`LocalLlama`]: the [`Worker`] behind the [`DialogueBackend`] trait.

use super::protocol::{BackendEvent, BackendRequest, RequestId};
use super::{BackendKind, BackendStatus, DialogueBackend, SubmitError};
use crate::engine::worker::{Worker, WorkerConfig};

/// A GGUF model on a background worker thread.
pub struct LocalLlama {
    worker: Worker,
    label: String,
}

impl LocalLlama {
    /// Starts loading the model on a worker thread; returns at once.
    pub fn spawn(config: WorkerConfig) -> Self {
        let label = format!("local: {}", config.model.label());
        Self {
            worker: Worker::spawn(config),
            label,
        }
    }

    /// The underlying worker (model info, blocking waits for tools).
    pub fn worker(&mut self) -> &mut Worker {
        &mut self.worker
    }
}

impl DialogueBackend for LocalLlama {
    fn kind(&self) -> BackendKind {
        BackendKind::LocalModel
    }

    fn label(&self) -> String {
        self.label.clone()
    }

    fn status(&mut self) -> BackendStatus {
        self.worker.status()
    }

    fn submit(&mut self, request: BackendRequest) -> Result<(), SubmitError> {
        self.worker.submit(request)
    }

    fn cancel(&mut self, id: RequestId) {
        self.worker.cancel(id);
    }

    fn poll(&mut self, max: usize, out: &mut Vec<BackendEvent>) -> usize {
        let mut n = 0;
        while n < max {
            match self.worker.try_event() {
                Some(e) => {
                    out.push(e);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    fn shutdown(&mut self) {
        self.worker.shutdown();
    }
}
