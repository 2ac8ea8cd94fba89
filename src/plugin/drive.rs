//! Story driving: story assets started and hot-reloaded, and each story's beat loop
//! ([`Conversation::next`](crate::story::Conversation::next)) turned into entity events and line
//! requests. Never blocks. Game messages come in through [`talk`](super::talk).

use std::sync::Arc;

use bevy::prelude::*;

use super::assets::StoryAsset;
use super::backend::{DialogueBackendHandle, LineMarkup, Purpose, Speaking, hold};
use super::components::SpeechBuffer;
use super::events::{
    ChoicesPresented, ChoicesWithdrawn, DialogueError, InputRequested, StoryEnded, StoryNodeEntered,
};
use super::lookup::NpcLookup;
use super::speech;
use super::story::{DialogueStory, StoryWait};
use crate::engine::backend::{BackendRequest, ConversationId, GenerateRequest};
use crate::story::{Beat, Conversation, LineRequest, Step, StoryRuntime};

/// Starts each story once its asset is loaded; puts hot-reloaded versions in place.
pub(crate) fn load_story(
    mut commands: Commands,
    mut stories: Query<&mut DialogueStory>,
    assets: Res<Assets<StoryAsset>>,
    mut changed: MessageReader<AssetEvent<StoryAsset>>,
    mut failed: MessageReader<bevy::asset::AssetLoadFailedEvent<StoryAsset>>,
) {
    // Bevy's asset server has logged the file's errors already: say only what happens now,
    // without repeating them.
    for f in failed.read() {
        warn!(
            "story file `{}` refused (its errors are above); the last good version keeps running",
            f.path
        );
    }
    let modified: Vec<_> = changed
        .read()
        .filter_map(|e| match e {
            AssetEvent::Modified { id } => Some(*id),
            _ => None,
        })
        .collect();
    for mut story in &mut stories {
        let story = &mut *story;
        if modified.contains(&story.handle.id())
            && let Some(asset) = assets.get(&story.handle)
        {
            let shown = matches!(story.wait(), StoryWait::Choice | StoryWait::Input)
                .then_some(story.partner)
                .flatten();
            match story.reload(asset) {
                Ok(()) => {
                    info!("story `{}` reloaded", asset.0.story.id);
                    // The choices (or prompt) are asked again from the new version.
                    if let Some(npc) = shown {
                        commands.trigger(ChoicesWithdrawn { entity: npc });
                    }
                }
                Err(why) => warn!("story reloaded but the old version keeps running: {why}"),
            }
        }
        if story.conversation.is_none()
            && let Some(asset) = assets.get(&story.handle)
        {
            match StoryRuntime::new(asset.0.clone()) {
                Ok(rt) => story.conversation = Some(Conversation::new(rt)),
                Err(e) => warn!("story `{}` cannot start: {e}", asset.0.story.id),
            }
        }
    }
}

pub(super) fn conversation(npc: Entity) -> ConversationId {
    ConversationId(npc.to_bits())
}

/// Whether talking to `npc` resumes `story`: its current beat is this NPC's or narration.
pub(super) fn story_involves(story: &mut DialogueStory, lookup: &NpcLookup, npc: Entity) -> bool {
    if story.partner == Some(npc) && !matches!(story.wait(), StoryWait::Idle | StoryWait::Ended) {
        return true;
    }
    let Some(c) = story.conversation.as_mut() else {
        return false;
    };
    let Some(id) = lookup.persona(npc).map(|p| p.id.clone()) else {
        return false;
    };
    match c.runtime_mut().beat() {
        Ok(Beat::Line { speaker, .. }) | Ok(Beat::Choice { speaker, .. }) => {
            speaker.is_none_or(|s| s == id)
        }
        Ok(Beat::Generate(r)) => r.speaker == id,
        Ok(Beat::FreeInput { speaker, .. }) => speaker == id,
        Ok(Beat::Ended { .. }) | Err(_) => false,
    }
}

/// Takes every story's steps until it needs a line, an answer, or ends.
pub(crate) fn advance_story(
    mut commands: Commands,
    mut stories: Query<(Entity, &mut DialogueStory)>,
    mut backend: ResMut<DialogueBackendHandle>,
    lookup: NpcLookup,
    mut buffers: Query<&'static mut SpeechBuffer>,
    mut speaking: Query<&'static mut Speaking>,
) {
    for (entity, mut story) in &mut stories {
        let story = &mut *story;
        autoplay(story, &lookup);
        if story.wait() != StoryWait::Advance {
            continue;
        }
        // An autoplaying story waits for its partner's persona (its speakers are looked up
        // by persona id).
        let Some(partner) = story.partner.filter(|p| lookup.persona(*p).is_some()) else {
            if story.partner.is_none()
                && let Some(c) = story.conversation.as_mut()
            {
                c.pause();
            }
            continue;
        };
        let mut driver = StoryDriver {
            commands: &mut commands,
            backend: &mut backend,
            lookup: &lookup,
            buffers: &mut buffers,
            speaking: &mut speaking,
            story: entity,
            partner,
        };
        driver.run(story);
    }
}

/// Starts an autoplaying story once an NPC of each cast member who speaks in it is loaded (so
/// every line goes to its own speaker).
fn autoplay(story: &mut DialogueStory, lookup: &NpcLookup) {
    let (Some(partner), None, Some(c)) =
        (story.autoplay, story.partner, story.conversation.as_mut())
    else {
        return;
    };
    let cast_here = c
        .runtime()
        .bundle()
        .story
        .nodes
        .iter()
        .filter_map(|n| n.speaker())
        .all(|k| lookup.entity_of(k).is_some());
    if c.wait() == StoryWait::Idle && cast_here && lookup.persona(partner).is_some() {
        story.partner = Some(partner);
        c.resume();
    }
}

/// One story's steps turned into events and requests.
struct StoryDriver<'a, 'w, 's, 'lw, 'ls, 'bw, 'bs, 'sw, 'ss> {
    commands: &'a mut Commands<'w, 's>,
    backend: &'a mut DialogueBackendHandle,
    lookup: &'a NpcLookup<'lw, 'ls>,
    buffers: &'a mut Query<'bw, 'bs, &'static mut SpeechBuffer>,
    speaking: &'a mut Query<'sw, 'ss, &'static mut Speaking>,
    story: Entity,
    partner: Entity,
}

impl StoryDriver<'_, '_, '_, '_, '_, '_, '_, '_, '_> {
    /// The NPC who speaks as `speaker` (the partner for narration or an absent speaker).
    fn target(&self, speaker: Option<&str>) -> Entity {
        speaker
            .and_then(|s| self.lookup.entity_of(s))
            .unwrap_or(self.partner)
    }

    fn run(&mut self, story: &mut DialogueStory) {
        let partner = self.partner;
        let max_steps = self.lookup.settings().scheduling.max_steps_per_frame;
        let mut steps = 0;
        while steps < max_steps {
            let Some(c) = story.conversation.as_mut() else {
                return;
            };
            // Story lines sample as the plugin's settings say (changeable at run time).
            if c.runtime().sampling() != &self.lookup.settings().sampling {
                c.runtime_mut()
                    .set_sampling(self.lookup.settings().sampling.clone());
            }
            let Some(step) = c.next() else { return };
            if !matches!(step, Step::Entered { .. }) {
                steps += 1;
            }
            match step {
                Step::Entered { node, speaker } => {
                    self.commands.trigger(StoryNodeEntered {
                        entity: self.target(speaker.as_deref()),
                        speaker,
                        partner,
                        node,
                    });
                }
                Step::Say { speaker, text, .. } => {
                    let npc = self.target(speaker.as_deref());
                    speech::authored(self.commands, self.buffers, npc, speaker, &text);
                }
                Step::Generate(req) => {
                    story.last_prompt = Some(req.prompt.prompt.clone());
                    self.generate(story, req);
                }
                Step::Choices {
                    speaker,
                    text,
                    options,
                    ..
                } => {
                    let npc = self.target(speaker.as_deref());
                    self.commands.trigger(ChoicesPresented {
                        entity: npc,
                        speaker,
                        partner,
                        text,
                        options: options.into_iter().map(|o| o.text).collect(),
                    });
                    story.partner = Some(npc);
                }
                Step::Input { speaker, text, .. } => {
                    let npc = self.target(Some(&speaker));
                    self.commands.trigger(InputRequested {
                        entity: npc,
                        speaker: Some(speaker),
                        partner,
                        prompt: text,
                    });
                    story.partner = Some(npc);
                }
                Step::Ended { title, text, .. } => {
                    self.commands.trigger(StoryEnded {
                        entity: partner,
                        partner,
                        title,
                        text,
                    });
                }
                Step::Failed(e) => {
                    self.commands.trigger(DialogueError {
                        entity: partner,
                        message: e.to_string(),
                        fallback_used: false,
                    });
                }
            }
        }
    }

    /// Sends a story line to the backend, or speaks its fallback when it cannot be sent.
    fn generate(&mut self, story: &mut DialogueStory, req: LineRequest) {
        let npc = self.target(Some(&req.speaker));
        let Some(c) = story.conversation.as_mut() else {
            return;
        };
        let id = self.backend.next_id();
        let story_id = c.runtime().bundle().story.id.clone();
        let safety = self.lookup.safety();
        let guard = safety.guard(
            Some(&req.speaker),
            Some(&story_id),
            &req.prompt.prompt,
            None,
        );
        let banned = guard.banned();
        let mut params = req.params.clone();
        params.seed = params.seed.or(self.lookup.settings().sampling.seed);
        let request = BackendRequest::Generate(GenerateRequest {
            id,
            conversation: conversation(npc),
            prompt: req.prompt.prompt.clone(),
            params,
            priority: self.lookup.priority(npc, Some(self.partner)),
            fallback: Some(req.fallback.clone()),
            constraint: req.format.as_ref().map(|f| Arc::new(f.constraint())),
            banned,
        });
        let generated = self.backend.has_model();
        let purpose = Purpose::StoryLine {
            story: self.story,
            fallback: req.fallback.clone(),
        };
        let speaker = Some(req.speaker.clone());
        match self
            .backend
            .submit(request, npc, purpose, Some(speaker.clone()))
        {
            Ok(mut request) => {
                request.markup = req.format.as_ref().map(LineMarkup::new);
                request.guard = Some(guard);
                c.line_sent(request.id());
                hold(self.speaking, npc, request);
                speech::queue(self.commands, self.buffers, npc, speaker, generated);
            }
            Err(e) => {
                speech::authored(self.commands, self.buffers, npc, speaker, &req.fallback);
                self.commands.trigger(DialogueError {
                    entity: npc,
                    message: e.to_string(),
                    fallback_used: true,
                });
                let _ = c.line_done(None, &req.fallback);
            }
        }
    }
}
