//! Stories as components: each [`DialogueStory`] entity runs one conversation through its story
//! (the Bevy-free [`Conversation`] loop), so several stories run at once.

use bevy::prelude::*;

use super::assets::StoryAsset;
use crate::engine::backend::Prompt;
pub use crate::story::StoryWait;
use crate::story::{Conversation, StoryRuntime, StoryState, content_hash};

/// A story being played: spawn one per story (the plugin's `story` field spawns the first).
/// Several run at once, each with its own state and partner; the player's messages go to the
/// story whose current beat involves the NPC they name.
///
/// ```no_run
/// # use bevy::prelude::*;
/// # use bevy_llama_dialogue::plugin::DialogueStory;
/// fn start(mut commands: Commands, assets: Res<AssetServer>, npcs: Query<Entity>) {
///     // Runs when the player talks to one of its NPCs.
///     commands.spawn(DialogueStory::new(assets.load("stories://lantern.story.ron")));
/// }
/// ```
#[derive(Component, Clone)]
pub struct DialogueStory {
    /// The story asset.
    pub handle: Handle<StoryAsset>,
    /// Start by itself, with this NPC as the partner, instead of waiting for the player to
    /// talk: NPC ↔ NPC scenes, ambient chatter. It starts once the story and an NPC of each
    /// cast member who speaks in it are loaded.
    pub autoplay: Option<Entity>,
    pub(crate) conversation: Option<Conversation>,
    pub(crate) partner: Option<Entity>,
    /// The last prompt sent for a generated line (debug panes show it).
    pub last_prompt: Option<Prompt>,
}

/// Marks the story the plugin's `story` field spawned: `SaveStory`/`LoadStory` without a
/// `story` apply to it.
#[derive(Component, Debug, Default)]
pub struct PlayerStory;

impl DialogueStory {
    /// A story that starts when the player talks to an NPC of its first beat.
    pub fn new(handle: Handle<StoryAsset>) -> Self {
        Self {
            handle,
            autoplay: None,
            conversation: None,
            partner: None,
            last_prompt: None,
        }
    }

    /// A story that plays by itself once loaded, with `partner` as the NPC its narration and
    /// speaker-less events go to (NPC ↔ NPC scenes).
    pub fn autoplay(handle: Handle<StoryAsset>, partner: Entity) -> Self {
        Self {
            autoplay: Some(partner),
            ..Self::new(handle)
        }
    }

    /// The conversation (runtime and wait state), once the story asset has loaded.
    pub fn conversation(&self) -> Option<&Conversation> {
        self.conversation.as_ref()
    }

    /// The runtime, once the story asset has loaded.
    pub fn runtime(&self) -> Option<&StoryRuntime> {
        self.conversation.as_ref().map(Conversation::runtime)
    }

    /// The story state (node, variables, memories), once loaded.
    pub fn state(&self) -> Option<&StoryState> {
        self.runtime().map(StoryRuntime::state)
    }

    /// The NPC the player (or, when autoplaying, the story) is talking to.
    pub fn partner(&self) -> Option<Entity> {
        self.partner
    }

    /// What the story waits for.
    pub fn wait(&self) -> StoryWait {
        self.conversation
            .as_ref()
            .map_or(StoryWait::Idle, Conversation::wait)
    }

    /// Puts a hot-reloaded story in place, keeping the player's state when its node still
    /// exists; otherwise keeps the old version running and says why.
    pub(crate) fn reload(&mut self, asset: &StoryAsset) -> Result<(), String> {
        let Some(old) = &mut self.conversation else {
            return Ok(());
        };
        let mut save = old.runtime().save();
        save.story_hash = content_hash(&asset.0);
        save.story_id = asset.0.story.id.clone();
        let restored = StoryRuntime::restore(asset.0.clone(), save).map_err(|e| e.to_string())?;
        old.reload(restored);
        Ok(())
    }
}

/// The NPC the player talks to in a story, for priorities: the partner of the first story
/// that has one and is not autoplaying.
pub(crate) fn player_partner<'a>(
    stories: impl IntoIterator<Item = &'a DialogueStory>,
) -> Option<Entity> {
    stories
        .into_iter()
        .filter(|s| s.autoplay.is_none())
        .find_map(|s| s.partner)
}
