//! Saving and loading the running story (atomic files, see `story::SaveGame`).

use bevy::prelude::*;

use super::events::ChoicesWithdrawn;
use super::messages::{LoadStory, SaveStory, StorySaved};
use super::story::{DialogueStory, StoryWait};
use crate::story::{SaveGame, StoryRuntime};

pub(crate) fn save_and_load(
    mut commands: Commands,
    mut story: ResMut<DialogueStory>,
    mut saves: MessageReader<SaveStory>,
    mut loads: MessageReader<LoadStory>,
    mut done: MessageWriter<StorySaved>,
) {
    for s in saves.read() {
        let result = match story.runtime() {
            Some(rt) => rt.save().write(&s.path).map_err(|e| e.to_string()),
            None => Err("no story is running".into()),
        };
        done.write(StorySaved {
            path: s.path.clone(),
            loaded: false,
            result,
        });
    }
    for l in loads.read() {
        let result = match story.runtime() {
            None => Err("no story is running".into()),
            Some(rt) => {
                let bundle = rt.bundle().clone();
                SaveGame::read(&l.path)
                    .and_then(|save| StoryRuntime::restore(bundle, save))
                    .map_err(|e| e.to_string())
            }
        };
        let result = result.map(|rt| {
            // Choices or an input prompt on screen belong to the state being replaced.
            if let (StoryWait::Choice | StoryWait::Input, Some(npc)) = (story.wait, story.partner) {
                commands.trigger(ChoicesWithdrawn { entity: npc });
            }
            story.runtime = Some(rt);
            story.wait = StoryWait::Idle;
            story.last_node = None;
        });
        done.write(StorySaved {
            path: l.path.clone(),
            loaded: true,
            result,
        });
    }
}
