//! Story driving: the story asset loaded and hot-reloaded, story steps, line requests out.
//! Never blocks. Game messages come in through [`talk`](super::talk).

use bevy::prelude::*;

use super::assets::StoryAsset;
use super::backend::{DialogueBackendRes, Purpose};
use super::components::SpeechBuffer;
use super::events::{
    ChoicesPresented, ChoicesWithdrawn, DialogueError, InputRequested, StoryEnded, StoryNodeEntered,
};
use super::lookup::NpcLookup;
use super::speech;
use super::story::{DialogueStory, StoryWait};
use crate::engine::backend::{BackendRequest, ConversationId, GenerateRequest};
use crate::story::{Beat, StoryRuntime};

/// Starts the story once its asset is loaded; puts hot-reloaded versions in place.
pub(crate) fn load_story(
    mut commands: Commands,
    mut story: ResMut<DialogueStory>,
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
    let Some(handle) = story.handle.clone() else {
        return;
    };
    for e in changed.read() {
        if let AssetEvent::Modified { id } = e
            && *id == handle.id()
            && let Some(asset) = assets.get(&handle)
        {
            let shown = matches!(story.wait, StoryWait::Choice | StoryWait::Input)
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
    }
    if story.runtime.is_none()
        && let Some(asset) = assets.get(&handle)
    {
        match StoryRuntime::new(asset.0.clone()) {
            Ok(rt) => {
                story.runtime = Some(rt);
                story.wait = StoryWait::Idle;
            }
            Err(e) => warn!("story `{}` cannot start: {e}", asset.0.story.id),
        }
    }
}

pub(super) fn conversation(npc: Entity) -> ConversationId {
    ConversationId(npc.to_bits())
}

/// Whether talking to `npc` resumes the story: its current beat is this NPC's or narration.
pub(super) fn story_involves(story: &mut DialogueStory, lookup: &NpcLookup, npc: Entity) -> bool {
    let Some(rt) = story.runtime.as_mut() else {
        return false;
    };
    let Some(id) = lookup.persona(npc).map(|p| p.id.clone()) else {
        return false;
    };
    if story.partner == Some(npc) && story.wait != StoryWait::Idle {
        return true;
    }
    match rt.beat() {
        Ok(Beat::Line { speaker, .. }) | Ok(Beat::Choice { speaker, .. }) => {
            speaker.is_none_or(|s| s == id)
        }
        Ok(Beat::Generate(r)) => r.speaker == id,
        Ok(Beat::FreeInput { speaker, .. }) => speaker == id,
        Ok(Beat::Ended { .. }) | Err(_) => false,
    }
}

/// Takes story steps until the story needs a line, an answer, or ends.
pub(crate) fn advance_story(
    mut commands: Commands,
    mut story: ResMut<DialogueStory>,
    mut backend: ResMut<DialogueBackendRes>,
    lookup: NpcLookup,
    mut buffers: Query<&mut SpeechBuffer>,
) {
    let story = &mut *story;
    if story.wait != StoryWait::Advance {
        return;
    }
    let Some(partner) = story.partner else {
        story.wait = StoryWait::Idle;
        return;
    };
    let Some(rt) = story.runtime.as_mut() else {
        return;
    };
    let target =
        |speaker: Option<&str>| speaker.and_then(|s| lookup.entity_of(s)).unwrap_or(partner);
    for _ in 0..lookup.settings().scheduling.max_steps_per_frame {
        // Every node entered, Branch nodes included; after a load, the node it resumes at.
        let mut entered = rt.take_entered();
        let node = rt.state().node.clone();
        if entered.is_empty() && story.last_node.as_deref() != Some(node.as_str()) {
            entered.push(node);
        }
        for node in entered {
            let speaker = rt
                .bundle()
                .story
                .node(&node)
                .and_then(|n| n.speaker())
                .map(str::to_owned);
            commands.trigger(StoryNodeEntered {
                entity: target(speaker.as_deref()),
                speaker,
                partner,
                node: node.clone(),
            });
            story.last_node = Some(node);
        }
        // Story lines sample as the plugin's settings say (changeable at run time).
        if rt.sampling() != &lookup.settings().sampling {
            rt.set_sampling(lookup.settings().sampling.clone());
        }
        let beat = match rt.beat() {
            Ok(b) => b,
            Err(e) => {
                commands.trigger(DialogueError {
                    entity: partner,
                    message: e.to_string(),
                    fallback_used: false,
                });
                story.wait = StoryWait::Idle;
                return;
            }
        };
        match beat {
            Beat::Line { speaker, text, .. } => {
                let npc = target(speaker.as_deref());
                speech::authored(&mut commands, &mut buffers, npc, speaker, &text);
                if let Err(e) = rt.advance() {
                    commands.trigger(DialogueError {
                        entity: npc,
                        message: e.to_string(),
                        fallback_used: false,
                    });
                    story.wait = StoryWait::Idle;
                    return;
                }
            }
            Beat::Generate(req) => {
                let npc = target(Some(&req.speaker));
                let id = backend.next_id();
                let mut params = req.params.clone();
                params.seed = params.seed.or(lookup.settings().sampling.seed);
                story.last_prompt = Some(req.prompt.prompt.clone());
                let request = BackendRequest::Generate(GenerateRequest {
                    id,
                    conversation: conversation(npc),
                    prompt: req.prompt.prompt.clone(),
                    params,
                    priority: lookup.priority(npc, Some(partner)),
                    fallback: Some(req.fallback.clone()),
                });
                let generated = backend.has_model();
                let purpose = Purpose::StoryLine {
                    fallback: req.fallback.clone(),
                };
                match backend.submit(request, npc, purpose) {
                    Ok(id) => {
                        backend.mark_line(id, Some(req.speaker.clone()));
                        speech::queue(
                            &mut commands,
                            &mut buffers,
                            npc,
                            Some(req.speaker.clone()),
                            generated,
                        );
                        story.wait = StoryWait::Line(id);
                        return;
                    }
                    Err(e) => {
                        speech::authored(
                            &mut commands,
                            &mut buffers,
                            npc,
                            Some(req.speaker.clone()),
                            &req.fallback,
                        );
                        commands.trigger(DialogueError {
                            entity: npc,
                            message: e.to_string(),
                            fallback_used: true,
                        });
                        if rt.finish_line(&req.fallback).is_err() {
                            story.wait = StoryWait::Idle;
                            return;
                        }
                    }
                }
            }
            Beat::Choice {
                speaker,
                text,
                options,
                ..
            } => {
                let npc = target(speaker.as_deref());
                story.presented = options.iter().map(|o| o.index).collect();
                commands.trigger(ChoicesPresented {
                    entity: npc,
                    speaker,
                    partner,
                    text,
                    options: options.into_iter().map(|o| o.text).collect(),
                });
                story.partner = Some(npc);
                story.wait = StoryWait::Choice;
                return;
            }
            Beat::FreeInput { speaker, text, .. } => {
                let npc = target(Some(&speaker));
                commands.trigger(InputRequested {
                    entity: npc,
                    speaker: Some(speaker),
                    partner,
                    prompt: text,
                });
                story.partner = Some(npc);
                story.wait = StoryWait::Input;
                return;
            }
            Beat::Ended { title, text, .. } => {
                commands.trigger(StoryEnded {
                    entity: partner,
                    partner,
                    title,
                    text,
                });
                story.wait = StoryWait::Ended;
                return;
            }
        }
    }
}
