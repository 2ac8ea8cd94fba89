//! First-person player: WASD to walk, hold the right mouse button to look around, `E` to talk to
//! the NPC in front of you, `1`–`9` to pick a choice.

use bevy::input::mouse::AccumulatedMouseMotion;
use bevy::prelude::*;
use bevy_llama_dialogue::plugin::{ChoicePicked, Npc, TalkTo};

use crate::panel::{Conversation, UiFocus};
use crate::scene::PlayerCamera;

/// The NPC close enough to talk to, if any.
#[derive(Resource, Default, Debug, Clone, Copy)]
pub struct Nearby(pub Option<Entity>);

/// How close the player must be to talk.
pub const TALK_RADIUS: f32 = 4.0;

pub fn plugin(app: &mut App) {
    app.init_resource::<Nearby>()
        .add_systems(Update, (walk, look, find_nearby, talk_keys).chain());
}

fn walk(
    keys: Res<ButtonInput<KeyCode>>,
    time: Res<Time>,
    focus: Res<UiFocus>,
    mut camera: Single<&mut Transform, With<PlayerCamera>>,
) {
    if focus.0 {
        return;
    }
    let mut dir = Vec3::ZERO;
    let forward = camera.forward().as_vec3().with_y(0.0).normalize_or_zero();
    let right = camera.right().as_vec3().with_y(0.0).normalize_or_zero();
    for (key, v) in [
        (KeyCode::KeyW, forward),
        (KeyCode::KeyS, -forward),
        (KeyCode::KeyD, right),
        (KeyCode::KeyA, -right),
    ] {
        if keys.pressed(key) {
            dir += v;
        }
    }
    let speed = if keys.pressed(KeyCode::ShiftLeft) {
        7.0
    } else {
        4.0
    };
    camera.translation += dir.normalize_or_zero() * speed * time.delta_secs();
    camera.translation.x = camera.translation.x.clamp(-30.0, 30.0);
    camera.translation.z = camera.translation.z.clamp(-30.0, 30.0);
}

fn look(
    buttons: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    mut camera: Single<&mut Transform, With<PlayerCamera>>,
) {
    if !buttons.pressed(MouseButton::Right) || motion.delta == Vec2::ZERO {
        return;
    }
    let (mut yaw, mut pitch, _) = camera.rotation.to_euler(EulerRot::YXZ);
    yaw -= motion.delta.x * 0.003;
    pitch = (pitch - motion.delta.y * 0.003).clamp(-1.2, 1.2);
    camera.rotation = Quat::from_euler(EulerRot::YXZ, yaw, pitch, 0.0);
}

fn find_nearby(
    camera: Single<&Transform, With<PlayerCamera>>,
    npcs: Query<(Entity, &GlobalTransform), With<Npc>>,
    mut nearby: ResMut<Nearby>,
) {
    let at = camera.translation.with_y(0.0);
    nearby.0 = npcs
        .iter()
        .map(|(e, t)| (e, t.translation().with_y(0.0).distance(at)))
        .filter(|(_, d)| *d <= TALK_RADIUS)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(e, _)| e);
}

fn talk_keys(
    keys: Res<ButtonInput<KeyCode>>,
    focus: Res<UiFocus>,
    nearby: Res<Nearby>,
    conversation: Res<Conversation>,
    mut talk: MessageWriter<TalkTo>,
    mut pick: MessageWriter<ChoicePicked>,
) {
    if focus.0 {
        return;
    }
    if keys.just_pressed(KeyCode::KeyE)
        && let Some(npc) = nearby.0
    {
        talk.write(TalkTo { npc });
    }
    if let Some((npc, options)) = &conversation.choices {
        let digits = [
            KeyCode::Digit1,
            KeyCode::Digit2,
            KeyCode::Digit3,
            KeyCode::Digit4,
            KeyCode::Digit5,
            KeyCode::Digit6,
            KeyCode::Digit7,
            KeyCode::Digit8,
            KeyCode::Digit9,
        ];
        for (index, key) in digits.iter().enumerate().take(options.len()) {
            if keys.just_pressed(*key) {
                pick.write(ChoicePicked { npc: *npc, index });
            }
        }
    }
}
