//! Speech bubbles in the world, for the headset (`--vr`: there is no screen to clamp to): a
//! camera-facing quad above each NPC drawn by our own material (`shaders/bubble.wgsl`: rounded
//! panel, soft edge, tail, "thinking" dots), with the streamed text laid out by Bevy UI into a
//! shared texture (one 512×256 slot per NPC) that the material samples. On the desktop the
//! bubbles are screen-space panels (`bubble.rs`).

use bevy::camera::{ClearColorConfig, RenderTarget};
use bevy::pbr::{Material, MaterialPlugin};
use bevy::prelude::*;
use bevy::render::render_resource::{AsBindGroup, ShaderType, TextureFormat};
use bevy::shader::ShaderRef;
use bevy::ui::UiTargetCamera;
use bevy_llama_dialogue::plugin::{Npc, SpeechBuffer};

use crate::scene::PlayerCamera;

const SLOT_W: u32 = 512;
const SLOT_H: u32 = 256;
const SLOTS: u32 = 4;
/// Seconds a bubble stays after its line ends.
const LINGER: f32 = 5.0;

/// The bubble material's uniform.
#[derive(Clone, Copy, Debug, Default, ShaderType)]
pub struct BubbleParams {
    /// Panel colour and opacity.
    pub color: Vec4,
    /// Time, thinking (0/1), aspect, atlas slot.
    pub state: Vec4,
}

/// Our speech-bubble material.
#[derive(Asset, TypePath, AsBindGroup, Clone, Debug)]
pub struct BubbleMaterial {
    #[uniform(0)]
    pub params: BubbleParams,
    #[texture(1)]
    #[sampler(2)]
    pub text: Handle<Image>,
}

impl Material for BubbleMaterial {
    fn fragment_shader() -> ShaderRef {
        "shaders://bubble.wgsl".into()
    }
    fn alpha_mode(&self) -> AlphaMode {
        AlphaMode::Blend
    }
}

/// A bubble of one NPC.
#[derive(Component)]
pub struct Bubble {
    npc: Entity,
    slot: u32,
    material: Handle<BubbleMaterial>,
    last_active: f32,
}

/// The UI text of a bubble's slot.
#[derive(Component)]
struct BubbleText(u32);

pub fn plugin(app: &mut App) {
    app.add_plugins(MaterialPlugin::<BubbleMaterial>::default())
        .add_systems(PostStartup, spawn_bubbles)
        .add_systems(Update, (update_bubbles, update_texts));
}

fn spawn_bubbles(
    mut commands: Commands,
    npcs: Query<Entity, With<Npc>>,
    mut images: ResMut<Assets<Image>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<BubbleMaterial>>,
) {
    let image = images.add(Image::new_target_texture(
        SLOT_W * SLOTS,
        SLOT_H,
        TextureFormat::Rgba8UnormSrgb,
        None,
    ));
    let camera = commands
        .spawn((
            Camera2d,
            Camera {
                order: -1,
                clear_color: ClearColorConfig::Custom(Color::NONE),
                ..default()
            },
            RenderTarget::Image(image.clone().into()),
        ))
        .id();
    for slot in 0..SLOTS {
        commands
            .spawn((
                Node {
                    position_type: PositionType::Absolute,
                    left: Val::Px((slot * SLOT_W) as f32 + 30.0),
                    top: Val::Px(20.0),
                    width: Val::Px(SLOT_W as f32 - 60.0),
                    ..default()
                },
                UiTargetCamera(camera),
            ))
            .with_child((
                Text::new(""),
                TextFont {
                    font_size: 28.0.into(),
                    ..default()
                },
                TextColor(Color::srgb(0.18, 0.14, 0.12)),
                BubbleText(slot),
            ));
    }
    let (w, h) = (2.4, 1.2 / 0.85);
    let quad = meshes.add(Rectangle::new(w, h));
    for (slot, npc) in npcs.iter().enumerate().take(SLOTS as usize) {
        let material = materials.add(BubbleMaterial {
            params: BubbleParams {
                color: Vec4::new(0.97, 0.95, 0.88, 0.96),
                state: Vec4::new(0.0, 0.0, w / 1.2, slot as f32),
            },
            text: image.clone(),
        });
        commands.spawn((
            Bubble {
                npc,
                slot: slot as u32,
                material: material.clone(),
                last_active: f32::NEG_INFINITY,
            },
            Mesh3d(quad.clone()),
            MeshMaterial3d(material),
            Transform::default(),
            Visibility::Hidden,
        ));
    }
}

/// Shows bubbles of speaking NPCs, places them above the head facing the camera, animates.
fn update_bubbles(
    time: Res<Time>,
    camera: Single<&GlobalTransform, With<PlayerCamera>>,
    npcs: Query<(&GlobalTransform, &SpeechBuffer)>,
    mut bubbles: Query<(&mut Bubble, &mut Transform, &mut Visibility)>,
    mut materials: ResMut<Assets<BubbleMaterial>>,
) {
    let now = time.elapsed_secs();
    for (mut bubble, mut transform, mut visibility) in &mut bubbles {
        let Ok((at, buffer)) = npcs.get(bubble.npc) else {
            *visibility = Visibility::Hidden;
            continue;
        };
        if buffer.speaking {
            bubble.last_active = now;
        }
        let show = buffer.line > 0 && now - bubble.last_active < LINGER;
        *visibility = if show {
            Visibility::Visible
        } else {
            Visibility::Hidden
        };
        if !show {
            continue;
        }
        transform.translation = at.translation() + Vec3::Y * 2.75;
        let to_camera = (camera.translation() - transform.translation).with_y(0.0);
        if to_camera.length_squared() > 1e-4 {
            transform.rotation = Quat::from_rotation_arc(Vec3::Z, to_camera.normalize());
        }
        if let Some(mut m) = materials.get_mut(&bubble.material) {
            m.params.state.x = now;
            m.params.state.y = if buffer.thinking { 1.0 } else { 0.0 };
        }
    }
}

/// Puts each NPC's current text into its slot of the shared texture (the latest words of long
/// lines; nothing while thinking: the shader draws the dots).
fn update_texts(
    bubbles: Query<&Bubble>,
    buffers: Query<&SpeechBuffer>,
    mut texts: Query<(&BubbleText, &mut Text)>,
) {
    for bubble in &bubbles {
        let Ok(buffer) = buffers.get(bubble.npc) else {
            continue;
        };
        let wanted = if buffer.thinking {
            String::new()
        } else {
            let t = buffer.text.as_str();
            match t.char_indices().rev().nth(150) {
                Some((i, _)) => format!("…{}", &t[i..]),
                None => t.to_owned(),
            }
        };
        for (slot, mut text) in &mut texts {
            if slot.0 == bubble.slot && text.0 != wanted {
                text.0 = wanted.clone();
            }
        }
    }
}
