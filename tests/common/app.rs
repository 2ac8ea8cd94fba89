//! Headless app helpers for the plugin tests (MinimalPlugins + AssetPlugin).

use bevy::prelude::*;
use bevy_llama_dialogue::plugin::*;

/// Every dialogue event seen, in order: (entity, "Kind: detail").
#[derive(Resource, Default, Debug)]
pub struct Log(pub Vec<(Entity, String)>);

impl Log {
    pub fn kinds_for(&self, e: Entity) -> Vec<String> {
        self.0
            .iter()
            .filter(|(x, _)| *x == e)
            .map(|(_, k)| k.clone())
            .collect()
    }
    pub fn count(&self, prefix: &str) -> usize {
        self.0.iter().filter(|(_, k)| k.starts_with(prefix)).count()
    }
    pub fn last(&self, prefix: &str) -> Option<&(Entity, String)> {
        self.0.iter().rev().find(|(_, k)| k.starts_with(prefix))
    }
}

fn record(app: &mut App) {
    app.init_resource::<Log>();
    app.add_observer(|e: On<LineQueued>, mut l: ResMut<Log>| {
        l.0.push((e.entity, format!("Queued: {:?}", e.speaker)))
    });
    app.add_observer(|e: On<LineStarted>, mut l: ResMut<Log>| {
        l.0.push((e.entity, format!("Started: {:?}", e.speaker)))
    });
    app.add_observer(|e: On<LineChunk>, mut l: ResMut<Log>| {
        l.0.push((e.entity, format!("Chunk: {}", e.text)))
    });
    app.add_observer(|e: On<LineFinished>, mut l: ResMut<Log>| {
        l.0.push((e.entity, format!("Finished: {}", e.text)))
    });
    app.add_observer(|e: On<ChoicesPresented>, mut l: ResMut<Log>| {
        l.0.push((e.entity, format!("Choices: {}", e.options.join(" | "))))
    });
    app.add_observer(|e: On<InputRequested>, mut l: ResMut<Log>| {
        l.0.push((e.entity, format!("Input: {:?}", e.prompt)))
    });
    app.add_observer(|e: On<StoryNodeEntered>, mut l: ResMut<Log>| {
        l.0.push((e.entity, format!("Node: {}", e.node)))
    });
    app.add_observer(|e: On<ChoicesWithdrawn>, mut l: ResMut<Log>| {
        l.0.push((e.entity, "Withdrawn".to_string()))
    });
    app.add_observer(|e: On<StoryEnded>, mut l: ResMut<Log>| {
        l.0.push((e.entity, format!("Ended: {}", e.title)))
    });
    app.add_observer(|e: On<DialogueError>, mut l: ResMut<Log>| {
        l.0.push((e.entity, format!("Error: {}", e.message)))
    });
    app.add_observer(|e: On<DialogueFlagged>, mut l: ResMut<Log>| {
        l.0.push((
            e.entity,
            format!(
                "Flagged: {} {:?} {:?} by {} -> {}",
                e.flag.rule, e.flag.direction, e.flag.matched, e.flag.by, e.replaced_with
            ),
        ))
    });
    app.add_observer(|e: On<PlayerInputLimited>, mut l: ResMut<Log>| {
        l.0.push((
            e.entity,
            format!("Limited: {}/{} refused={}", e.chars, e.max_chars, e.refused),
        ))
    });
    // Global events, logged on `Entity::PLACEHOLDER`.
    app.add_observer(|e: On<ModelReady>, mut l: ResMut<Log>| {
        l.0.push((Entity::PLACEHOLDER, format!("ModelReady: {}", e.label)))
    });
    app.add_observer(|e: On<ModelFailed>, mut l: ResMut<Log>| {
        l.0.push((Entity::PLACEHOLDER, format!("ModelFailed: {}", e.reason)))
    });
}

/// A headless app with the plugin, assets and transforms, recording dialogue events.
pub fn app(plugin: LlamaDialoguePlugin, watch: bool) -> App {
    app_with(plugin, watch, |_| {})
}

/// [`app`], with more plugins or observers added by `extra` before the app is finished.
pub fn app_with(plugin: LlamaDialoguePlugin, watch: bool, extra: impl FnOnce(&mut App)) -> App {
    let mut app = App::new();
    app.add_plugins(plugin).add_plugins((
        MinimalPlugins,
        AssetPlugin {
            watch_for_changes_override: Some(watch),
            ..default()
        },
        TransformPlugin,
    ));
    record(&mut app);
    extra(&mut app);
    app.finish();
    app.cleanup();
    app
}

/// A plugin running the bundled story without a model.
pub fn lantern_plugin() -> LlamaDialoguePlugin {
    LlamaDialoguePlugin {
        story: Some("stories://lantern.story.ron".into()),
        ..default()
    }
}

/// Spawns an NPC with a bundled persona at `x` metres in front of the origin.
pub fn spawn_npc(app: &mut App, persona: &str, z: f32) -> Entity {
    let handle = app
        .world()
        .resource::<AssetServer>()
        .load(format!("stories://personas/{persona}.persona.ron"));
    app.world_mut()
        .spawn((Npc::new(handle), Transform::from_xyz(0.0, 0.0, z)))
        .id()
}

/// Runs frames until `done` holds (the bound only stops a broken test from hanging).
pub fn run_until(app: &mut App, mut done: impl FnMut(&mut App) -> bool) -> bool {
    for _ in 0..20_000 {
        app.update();
        if done(app) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    false
}

/// Runs until the story and every NPC persona are loaded.
pub fn run_until_loaded(app: &mut App) {
    assert!(
        run_until(app, |app| {
            let story_ok = app
                .world_mut()
                .query::<&DialogueStory>()
                .iter(app.world())
                .all(|s| s.runtime().is_some());
            let personas = app.world().resource::<Assets<PersonaAsset>>().len();
            let npcs = app.world_mut().query::<&Npc>().iter(app.world()).count();
            story_ok && personas >= npcs
        }),
        "assets never loaded"
    );
}

/// The plugin's own story (its `story` field), as it is now.
pub fn story(app: &mut App) -> DialogueStory {
    app.world_mut()
        .query_filtered::<&DialogueStory, With<PlayerStory>>()
        .single(app.world())
        .expect("the plugin's story")
        .clone()
}

pub fn send<M: Message>(app: &mut App, m: M) {
    app.world_mut().write_message(m);
}

pub fn log(app: &App) -> &Log {
    app.world().resource::<Log>()
}
