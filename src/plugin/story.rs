//! The running story as a resource.

use bevy::prelude::*;

use super::assets::StoryAsset;
use crate::engine::backend::RequestId;
use crate::story::{StoryRuntime, StoryState, content_hash};

/// What the story waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoryWait {
    /// Not started, or paused until the player talks to someone.
    #[default]
    Idle,
    /// Ready to move on this frame.
    Advance,
    /// A generated line (request id).
    Line(RequestId),
    /// Scoring the player's free text (request id).
    Route(RequestId),
    /// The player's pick of the presented options.
    Choice,
    /// The player's free text.
    Input,
    /// The story is over.
    Ended,
}

/// The story the plugin runs (one at a time), its state, and who the player is talking to.
/// Set [`handle`](Self::handle) (or the plugin's `story` field) to run a story.
#[derive(Resource, Default)]
pub struct DialogueStory {
    /// The story asset to run.
    pub handle: Option<Handle<StoryAsset>>,
    pub(crate) runtime: Option<StoryRuntime>,
    pub(crate) partner: Option<Entity>,
    pub(crate) wait: StoryWait,
    pub(crate) presented: Vec<usize>,
    pub(crate) last_node: Option<String>,
    /// The last prompt sent for a generated line (debug panes show it).
    pub last_prompt: Option<crate::engine::backend::Prompt>,
}

impl DialogueStory {
    /// The runtime, once the story asset has loaded.
    pub fn runtime(&self) -> Option<&StoryRuntime> {
        self.runtime.as_ref()
    }

    /// The story state (node, variables, memories), once loaded.
    pub fn state(&self) -> Option<&StoryState> {
        self.runtime.as_ref().map(StoryRuntime::state)
    }

    /// The NPC the player is talking to in the story.
    pub fn partner(&self) -> Option<Entity> {
        self.partner
    }

    /// What the story waits for.
    pub fn wait(&self) -> StoryWait {
        self.wait
    }

    /// Puts a hot-reloaded story in place, keeping the player's state when its node still
    /// exists; otherwise keeps the old version running and says why.
    pub(crate) fn reload(&mut self, asset: &StoryAsset) -> Result<(), String> {
        let Some(old) = &self.runtime else {
            return Ok(());
        };
        let mut save = old.save();
        save.story_hash = content_hash(&asset.0);
        save.story_id = asset.0.story.id.clone();
        let restored = StoryRuntime::restore(asset.0.clone(), save).map_err(|e| e.to_string())?;
        self.runtime = Some(restored);
        if matches!(self.wait, StoryWait::Choice | StoryWait::Input) {
            self.wait = StoryWait::Advance;
        }
        Ok(())
    }
}
