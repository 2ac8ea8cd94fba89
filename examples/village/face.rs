//! Faces made of primitives: a head that turns toward the player, eyes that blink and follow
//! them, brows and a mouth that show the NPC's emotion ([`NpcEmotion`]), a mouth that moves
//! while the NPC speaks (with the voice feature, from the visemes in `NpcMouth`; else from the
//! streamed text), and a small idle sway. The whole NPC turns to face the player it talks to.

use bevy::prelude::*;
use bevy_llama_dialogue::plugin::{Npc, NpcEmotion, SpeechBuffer, TalkTo};

use crate::scene::PlayerCamera;

/// The head pivot of an NPC (child of the NPC), holding the face.
#[derive(Component)]
pub struct Head {
    npc: Entity,
    /// Phase of this NPC's blinking and sway, so they differ.
    phase: f32,
}

#[derive(Component)]
struct Eye {
    phase: f32,
}

#[derive(Component)]
struct Pupil {
    npc: Entity,
}

#[derive(Component)]
struct Brow {
    npc: Entity,
    /// -1 left, 1 right.
    side: f32,
}

#[derive(Component)]
struct Mouth {
    npc: Entity,
    phase: f32,
}

/// Where the player's head is, for the NPCs' gaze.
#[derive(Resource, Default)]
struct PlayerEye(Vec3);

/// How far NPCs notice the player (turn their heads).
const NOTICE: f32 = 9.0;

pub fn plugin(app: &mut App) {
    app.init_resource::<PlayerEye>()
        .init_resource::<TalkingWith>()
        .add_systems(
            Update,
            (
                player_eye,
                turn_to_partner,
                turn_heads,
                blink,
                look,
                brows,
                mouths,
            )
                .chain(),
        );
}

/// Builds the head and face of `npc` as its children.
pub fn spawn_face(
    npc: &mut ChildSpawnerCommands,
    index: usize,
    skin: Handle<StandardMaterial>,
    meshes: &mut Assets<Mesh>,
    materials: &mut Assets<StandardMaterial>,
) {
    let owner = npc.target_entity();
    let phase = index as f32 * 1.7;
    let white = materials.add(StandardMaterial {
        base_color: Color::srgb(0.97, 0.97, 0.95),
        perceptual_roughness: 0.4,
        ..default()
    });
    let dark = materials.add(StandardMaterial {
        base_color: Color::srgb(0.08, 0.06, 0.05),
        perceptual_roughness: 0.3,
        ..default()
    });
    let lips = materials.add(Color::srgb(0.45, 0.12, 0.12));
    let eye = meshes.add(Sphere::new(0.055));
    let pupil = meshes.add(Sphere::new(0.028));
    let brow = meshes.add(Cuboid::new(0.09, 0.018, 0.02));
    let mouth = meshes.add(Cuboid::new(0.12, 0.1, 0.03));
    npc.spawn((
        Head { npc: owner, phase },
        Transform::from_xyz(0.0, 1.88, 0.0),
        Visibility::default(),
    ))
    .with_children(|head| {
        head.spawn((Mesh3d(meshes.add(Sphere::new(0.25))), MeshMaterial3d(skin)));
        // NPCs face their local -Z.
        for side in [-1.0f32, 1.0] {
            head.spawn((
                Eye { phase },
                Mesh3d(eye.clone()),
                MeshMaterial3d(white.clone()),
                Transform::from_xyz(side * 0.09, 0.05, -0.2),
            ))
            .with_child((
                Pupil { npc: owner },
                Mesh3d(pupil.clone()),
                MeshMaterial3d(dark.clone()),
                Transform::from_xyz(0.0, 0.0, -0.04),
            ));
            head.spawn((
                Brow { npc: owner, side },
                Mesh3d(brow.clone()),
                MeshMaterial3d(dark.clone()),
                Transform::from_xyz(side * 0.09, 0.13, -0.215),
            ));
        }
        head.spawn((
            Mouth { npc: owner, phase },
            Mesh3d(mouth),
            MeshMaterial3d(lips),
            Transform::from_xyz(0.0, -0.09, -0.225).with_scale(Vec3::new(1.0, 0.15, 1.0)),
        ));
    });
}

fn player_eye(camera: Single<&Transform, With<PlayerCamera>>, mut eye: ResMut<PlayerEye>) {
    eye.0 = camera.translation;
}

/// An NPC chatting with another (set by the crowd scene): it faces that NPC.
#[derive(Component)]
pub struct ChatPartner(pub Entity);

/// The NPC the player last talked to, until the player walks off.
#[derive(Resource, Default)]
struct TalkingWith(Option<Entity>);

/// The NPC the player talks to turns its body to face them; NPCs chatting face each other.
fn turn_to_partner(
    time: Res<Time>,
    mut talk: MessageReader<TalkTo>,
    mut with: ResMut<TalkingWith>,
    eye: Res<PlayerEye>,
    partners: Query<&ChatPartner>,
    globals: Query<&GlobalTransform>,
    mut npcs: Query<(Entity, &mut Transform), With<Npc>>,
) {
    if let Some(t) = talk.read().last() {
        with.0 = Some(t.npc);
    }
    for (npc, mut t) in &mut npcs {
        let target = if Some(npc) == with.0 {
            if t.translation.distance(eye.0) > NOTICE {
                with.0 = None;
                continue;
            }
            eye.0
        } else if let Ok(p) = partners.get(npc)
            && let Ok(g) = globals.get(p.0)
        {
            g.translation()
        } else {
            continue;
        };
        let to = (target - t.translation).with_y(0.0);
        if to.length_squared() < 1e-3 {
            continue;
        }
        // Facing -Z toward the target.
        let want = Transform::default()
            .looking_to(to.normalize(), Vec3::Y)
            .rotation;
        let k = 1.0 - (-4.0 * time.delta_secs()).exp();
        t.rotation = t.rotation.slerp(want, k);
    }
}

/// Heads follow the player within reach (up to 70° from the body), else look ahead; a small
/// idle sway on top.
fn turn_heads(
    time: Res<Time>,
    eye: Res<PlayerEye>,
    npcs: Query<&GlobalTransform>,
    mut heads: Query<(&Head, &mut Transform)>,
) {
    let now = time.elapsed_secs();
    for (head, mut t) in &mut heads {
        let Ok(body) = npcs.get(head.npc) else {
            continue;
        };
        let at = body.transform_point(t.translation);
        let to_player = eye.0 - at;
        let local = body.affine().inverse().transform_vector3(to_player);
        let mut want = Quat::IDENTITY;
        if to_player.length() < NOTICE && local.z < 0.0 {
            let yaw = (-local.x).atan2(-local.z).clamp(-1.2, 1.2);
            let pitch = (local.y / local.xz().length().max(0.1))
                .atan()
                .clamp(-0.4, 0.4);
            want = Quat::from_rotation_y(yaw) * Quat::from_rotation_x(pitch);
        }
        let sway = Quat::from_rotation_z((now * 0.7 + head.phase).sin() * 0.04)
            * Quat::from_rotation_x((now * 0.5 + head.phase).sin() * 0.03);
        let k = 1.0 - (-5.0 * time.delta_secs()).exp();
        let target = want * sway;
        t.rotation = t.rotation.slerp(target, k);
    }
}

/// Eyes close for 0.12 s every few seconds.
fn blink(time: Res<Time>, mut eyes: Query<(&Eye, &mut Transform)>) {
    let now = time.elapsed_secs();
    for (eye, mut t) in &mut eyes {
        let period = 3.3 + (eye.phase * 0.37).fract() * 2.0;
        let into = (now + eye.phase).rem_euclid(period);
        let y = if into < 0.12 { 0.1 } else { 1.0 };
        if t.scale.y != y {
            t.scale.y = y;
        }
    }
}

/// Pupils move toward the player within reach.
fn look(
    eye: Res<PlayerEye>,
    globals: Query<&GlobalTransform>,
    mut pupils: Query<(&Pupil, &ChildOf, &mut Transform)>,
) {
    for (pupil, parent, mut t) in &mut pupils {
        let Ok(eyeball) = globals.get(parent.parent()) else {
            continue;
        };
        let local = eyeball
            .affine()
            .inverse()
            .transform_vector3(eye.0 - eyeball.translation());
        let near = globals
            .get(pupil.npc)
            .is_ok_and(|g| g.translation().distance(eye.0) < NOTICE);
        let dir = if near && local.z < 0.0 {
            local.normalize_or_zero()
        } else {
            Vec3::NEG_Z
        };
        // On the eyeball's surface, at most ~35° off centre.
        let d = (dir + Vec3::NEG_Z * 1.2).normalize() * 0.04;
        t.translation = t.translation.lerp(d, 0.3);
    }
}

/// The brows' tilt and height per emotion.
fn brow_pose(emotion: Option<&str>) -> (f32, f32) {
    match emotion.unwrap_or("") {
        "glad" | "happy" | "warm" | "amused" | "hopeful" => (0.0, 0.02),
        "worried" | "sad" | "afraid" | "nervous" | "ashamed" | "guilty" => (0.35, 0.01),
        "angry" | "stern" | "annoyed" | "suspicious" => (-0.4, -0.012),
        "surprised" => (0.0, 0.04),
        _ => (0.0, 0.0),
    }
}

fn brows(emotions: Query<&NpcEmotion>, mut brows: Query<(&Brow, &mut Transform)>) {
    for (brow, mut t) in &mut brows {
        let emotion = emotions.get(brow.npc).ok().map(|e| e.0.as_str());
        let (tilt, lift) = brow_pose(emotion);
        // Inner ends (toward the nose) go up with a positive tilt.
        let want = Quat::from_rotation_z(-brow.side * tilt);
        t.rotation = t.rotation.slerp(want, 0.2);
        t.translation.y += (0.13 + lift - t.translation.y) * 0.2;
    }
}

/// The mouth opens with the voice's visemes (feature `voice`), else with the streamed text; it
/// widens with a glad emotion and narrows with a worried one.
fn mouths(
    time: Res<Time>,
    buffers: Query<&SpeechBuffer>,
    emotions: Query<&NpcEmotion>,
    #[cfg(feature = "voice")] voice: Query<&bevy_llama_dialogue::plugin::NpcMouth>,
    mut mouths: Query<(&Mouth, &mut Transform)>,
) {
    let now = time.elapsed_secs();
    for (mouth, mut t) in &mut mouths {
        let speaking = buffers
            .get(mouth.npc)
            .is_ok_and(|b| b.speaking && !b.thinking);
        // Syllable-like motion while words stream in.
        #[allow(unused_mut)]
        let mut open = if speaking {
            let s = (now * 11.0 + mouth.phase).sin() * 0.5 + 0.5;
            let w = (now * 4.3 + mouth.phase * 2.0).sin() * 0.5 + 0.5;
            (s * (0.4 + 0.6 * w)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        #[cfg(feature = "voice")]
        if let Ok(m) = voice.get(mouth.npc) {
            open = m.open;
        }
        let emotion = emotions.get(mouth.npc).ok().map(|e| e.0.as_str());
        let (lift, _) = brow_pose(emotion);
        let width = if lift > 0.1 {
            0.8
        } else if emotion.is_some_and(|e| matches!(e, "glad" | "happy" | "warm" | "amused")) {
            1.35
        } else {
            1.0
        };
        let y = 0.15 + open * 0.85;
        t.scale.y += (y - t.scale.y) * 0.5;
        t.scale.x += (width - t.scale.x) * 0.1;
    }
}
