//! Whether the dialogue backend can speak: the [`DialogueBackendStatus`] resource and the
//! global [`ModelReady`] / [`ModelFailed`] events, each sent once when the state changes.

use bevy::prelude::*;

use super::backend::DialogueBackendHandle;
use crate::engine::backend::BackendStatus;

/// The backend's state, updated every frame in [`DialogueSystems::Receive`](super::DialogueSystems).
///
/// A game can show a loading indicator while `Loading`, or read it before offering free text.
#[derive(Resource, Debug, Clone, PartialEq, Eq, Default)]
pub enum DialogueBackendStatus {
    /// The model is loading (or downloading) on the worker thread.
    #[default]
    Loading,
    /// Lines can be generated (by the model, or by a scripted backend configured on purpose).
    Ready,
    /// The model could not load or stopped: NPCs speak their authored fallback lines.
    Failed(String),
}

/// Triggered once when the backend becomes ready. Observe with `app.add_observer`.
#[derive(Event, Debug, Clone)]
pub struct ModelReady {
    /// The backend's label (`local: model.gguf`, `scripted (no model)`).
    pub label: String,
}

/// Triggered once when the model fails to load or stops; authored fallback lines are spoken
/// from then on. Observe with `app.add_observer`.
#[derive(Event, Debug, Clone)]
pub struct ModelFailed {
    /// Why (the typed load error, as text).
    pub reason: String,
}

/// Follows the backend's state; runs after the receive system, which switches a failed model
/// to authored lines.
pub(crate) fn track(
    mut backend: ResMut<DialogueBackendHandle>,
    mut status: ResMut<DialogueBackendStatus>,
    mut commands: Commands,
) {
    let now = match backend.fallback_reason() {
        Some(reason) => DialogueBackendStatus::Failed(reason.to_owned()),
        None => match backend.backend().status() {
            BackendStatus::Loading => DialogueBackendStatus::Loading,
            BackendStatus::Ready => DialogueBackendStatus::Ready,
            BackendStatus::Failed(why) => DialogueBackendStatus::Failed(why),
            BackendStatus::Stopped => {
                DialogueBackendStatus::Failed("the model worker stopped".into())
            }
        },
    };
    if *status == now {
        return;
    }
    match &now {
        DialogueBackendStatus::Ready => {
            info!("dialogue backend ready: {}", backend.label());
            commands.trigger(ModelReady {
                label: backend.label().to_owned(),
            });
        }
        DialogueBackendStatus::Failed(reason) => commands.trigger(ModelFailed {
            reason: reason.clone(),
        }),
        DialogueBackendStatus::Loading => {}
    }
    *status = now;
}
