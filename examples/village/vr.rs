//! The `vr` feature (`--vr`): the same village through OpenXR (`bevy_mod_openxr`). Bubbles are
//! already in the world; the listener follows the headset; an NPC is talked to by walking up to
//! it (proximity) or with the right controller's A / select button. With the `voice` feature,
//! hold the right trigger to speak.
//!
//! Compiled in CI (`cargo check --example village --features vr`); no OpenXR runtime is available
//! where this crate is built, so it has not been run.

use bevy::prelude::*;
use bevy_llama_dialogue::plugin::TalkTo;
use bevy_mod_openxr::action_binding::{OxrSendActionBindings, OxrSuggestActionBinding};
use bevy_mod_openxr::action_set_attaching::OxrAttachActionSet;
use bevy_mod_openxr::action_set_syncing::{OxrActionSetSyncSet, OxrSyncActionSet};
use bevy_mod_openxr::openxr_session_running;
use bevy_mod_openxr::resources::OxrInstance;
use bevy_mod_openxr::session::OxrSession;
use bevy_mod_xr::camera::XrCamera;
use bevy_mod_xr::session::{XrSessionCreated, session_available};

use crate::player::Nearby;
use crate::scene::PlayerCamera;

/// The VR plugins around `DefaultPlugins`.
pub fn plugins(default: bevy::app::PluginGroupBuilder) -> bevy::app::PluginGroupBuilder {
    bevy_mod_openxr::add_xr_plugins(default)
}

#[derive(Resource)]
struct TalkAction {
    set: openxr::ActionSet,
    talk: openxr::Action<bool>,
    speak: openxr::Action<bool>,
}

pub fn plugin(app: &mut App) {
    app.add_systems(Startup, create_actions.run_if(session_available))
        .add_systems(XrSessionCreated, attach)
        .add_systems(OxrSendActionBindings, suggest_bindings)
        .add_systems(
            PreUpdate,
            sync.before(OxrActionSetSyncSet)
                .run_if(openxr_session_running),
        )
        .add_systems(
            Update,
            (follow_head, talk).chain().run_if(openxr_session_running),
        );
    #[cfg(feature = "voice")]
    app.add_systems(Update, hold_trigger.run_if(openxr_session_running));
}

fn create_actions(instance: Res<OxrInstance>, mut commands: Commands) {
    let created = instance
        .create_action_set("dialogue", "Dialogue", 0)
        .and_then(|set| {
            let talk = set.create_action("talk", "Talk to the NPC in front", &[])?;
            let speak = set.create_action("speak", "Hold to speak", &[])?;
            Ok(TalkAction { set, talk, speak })
        });
    match created {
        Ok(actions) => commands.insert_resource(actions),
        Err(e) => warn!("VR: cannot create the talk action: {e}"),
    }
}

fn attach(actions: Option<Res<TalkAction>>, mut attach: MessageWriter<OxrAttachActionSet>) {
    if let Some(a) = actions {
        attach.write(OxrAttachActionSet(a.set.clone()));
    }
}

fn sync(actions: Option<Res<TalkAction>>, mut sync: MessageWriter<OxrSyncActionSet>) {
    if let Some(a) = actions {
        sync.write(OxrSyncActionSet(a.set.clone()));
    }
}

fn suggest_bindings(
    actions: Option<Res<TalkAction>>,
    mut bindings: MessageWriter<OxrSuggestActionBinding>,
) {
    let Some(a) = actions else { return };
    for (profile, path) in [
        (
            "/interaction_profiles/oculus/touch_controller",
            "/user/hand/right/input/a/click",
        ),
        (
            "/interaction_profiles/khr/simple_controller",
            "/user/hand/right/input/select/click",
        ),
        (
            "/interaction_profiles/valve/index_controller",
            "/user/hand/right/input/a/click",
        ),
    ] {
        bindings.write(OxrSuggestActionBinding {
            action: a.talk.as_raw(),
            interaction_profile: profile.into(),
            bindings: vec![path.into()],
        });
    }
    // Hold to speak: the right trigger (a float input read as a button by the runtime).
    for (profile, path) in [
        (
            "/interaction_profiles/oculus/touch_controller",
            "/user/hand/right/input/trigger/value",
        ),
        (
            "/interaction_profiles/valve/index_controller",
            "/user/hand/right/input/trigger/click",
        ),
    ] {
        bindings.write(OxrSuggestActionBinding {
            action: a.speak.as_raw(),
            interaction_profile: profile.into(),
            bindings: vec![path.into()],
        });
    }
}

/// Push-to-talk on the trigger.
#[cfg(feature = "voice")]
fn hold_trigger(
    actions: Option<Res<TalkAction>>,
    session: Res<OxrSession>,
    mut push: ResMut<bevy_llama_dialogue::plugin::PushToTalk>,
) {
    let held = actions
        .and_then(|a| a.speak.state(&session, openxr::Path::NULL).ok())
        .is_some_and(|s| s.current_state);
    if push.pressed != held {
        push.pressed = held;
    }
}

/// The listener (and the bubbles' facing) follow the headset.
fn follow_head(
    head: Query<&GlobalTransform, With<XrCamera>>,
    mut player: Single<&mut Transform, With<PlayerCamera>>,
) {
    if let Some(h) = head.iter().next() {
        player.translation = h.translation();
        player.rotation = h.rotation();
    }
}

/// Talks on approach, and again on the controller button.
fn talk(
    actions: Option<Res<TalkAction>>,
    session: Res<OxrSession>,
    nearby: Res<Nearby>,
    mut last: Local<Option<Entity>>,
    mut talk: MessageWriter<TalkTo>,
) {
    let pressed = actions
        .and_then(|a| a.talk.state(&session, openxr::Path::NULL).ok())
        .is_some_and(|s| s.current_state && s.changed_since_last_sync);
    if let Some(npc) = nearby.0
        && (pressed || *last != Some(npc))
    {
        talk.write(TalkTo { npc });
    }
    *last = nearby.0;
}
