//! Saving and loading a running story (atomic files, see `story::SaveGame`).

use bevy::prelude::*;

use super::events::ChoicesWithdrawn;
use super::messages::{LoadStory, SaveStory, StorySaved};
use super::story::{DialogueStory, PlayerStory, StoryWait};
use crate::story::{SaveGame, StoryRuntime};

/// The story a save or load names: `story`, else the plugin's own, else the only one.
fn target<'a>(
    stories: &'a mut Query<(Entity, &mut DialogueStory, Has<PlayerStory>)>,
    story: Option<Entity>,
) -> Result<Mut<'a, DialogueStory>, String> {
    if let Some(e) = story {
        return stories
            .get_mut(e)
            .map(|(_, s, _)| s)
            .map_err(|_| format!("{e} is not a story (it has no `DialogueStory`)"));
    }
    let count = stories.iter().count();
    let wanted = stories
        .iter()
        .find(|(_, _, player)| *player || count == 1)
        .map(|(e, _, _)| e);
    match wanted {
        Some(e) => Ok(stories.get_mut(e).map_err(|e| e.to_string())?.1),
        None if count == 0 => Err("no story is running".into()),
        None => Err(format!(
            "{count} stories are running and none is the plugin's: name one in `story`"
        )),
    }
}

pub(crate) fn save_and_load(
    mut commands: Commands,
    mut stories: Query<(Entity, &mut DialogueStory, Has<PlayerStory>)>,
    mut saves: MessageReader<SaveStory>,
    mut loads: MessageReader<LoadStory>,
    mut done: MessageWriter<StorySaved>,
) {
    for s in saves.read() {
        let result = target(&mut stories, s.story).and_then(|story| match story.runtime() {
            Some(rt) => rt.save().write(&s.path).map_err(|e| e.to_string()),
            None => Err("the story has not loaded yet".into()),
        });
        done.write(StorySaved {
            path: s.path.clone(),
            loaded: false,
            result,
        });
    }
    for l in loads.read() {
        let result = target(&mut stories, l.story).and_then(|mut story| {
            let Some(c) = story.conversation.as_mut() else {
                return Err("the story has not loaded yet".to_owned());
            };
            let bundle = c.runtime().bundle().clone();
            let rt = SaveGame::read(&l.path)
                .and_then(|save| StoryRuntime::restore(bundle, save))
                .map_err(|e| e.to_string())?;
            // Choices or an input prompt on screen belong to the state being replaced.
            let shown = matches!(c.wait(), StoryWait::Choice | StoryWait::Input);
            c.replace(rt);
            if let (true, Some(npc)) = (shown, story.partner) {
                commands.trigger(ChoicesWithdrawn { entity: npc });
            }
            Ok(())
        });
        done.write(StorySaved {
            path: l.path.clone(),
            loaded: true,
            result,
        });
    }
}
