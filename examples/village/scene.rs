//! The village at dusk: ground, houses with lit windows, the forge's glow, the well with the
//! empty lantern hook, Tilda's cart, fog, lights, and the four NPCs at their places (the sky is
//! in `sky.rs`). When the story brings the lantern back, it hangs over the well and lights the
//! square.

use bevy::light::CascadeShadowConfigBuilder;
use bevy::pbr::{DistanceFog, FogFalloff};
use bevy::prelude::*;
use bevy_llama_dialogue::plugin::{DialogueListener, Npc, StoryNodeEntered};

/// Story nodes after which the lantern hangs over the well again.
const LANTERN_BACK: [&str; 4] = ["wren_joy", "wren_truth", "ending_festival", "ending_truth"];

/// The lantern over the well (hidden until the story brings it back) and its light.
#[derive(Component)]
struct Lantern;

/// Dusk colours.
const FOG: Color = Color::srgb(0.36, 0.30, 0.40);
const WARM: Color = Color::srgb(1.0, 0.72, 0.38);

/// An NPC's display name and colour (for the panel and the hint).
#[derive(Component, Debug, Clone)]
pub struct NpcLabel {
    /// Display name.
    pub name: String,
    /// Panel colour.
    pub color: Color,
}

/// The player's camera.
#[derive(Component)]
pub struct PlayerCamera;

pub fn plugin(app: &mut App) {
    app.insert_resource(ClearColor(crate::sky::SKY_ZENITH))
        .add_systems(
            Startup,
            (
                build_village,
                crate::sky::build_sky,
                spawn_npcs,
                spawn_player,
            ),
        )
        .add_observer(lantern_back);
}

/// The story brought the lantern back: it hangs over the well and lights the square.
fn lantern_back(
    e: On<StoryNodeEntered>,
    mut lantern: Query<&mut Visibility, With<Lantern>>,
    mut ambient: ResMut<GlobalAmbientLight>,
) {
    if !LANTERN_BACK.contains(&e.node.as_str()) {
        return;
    }
    for mut v in &mut lantern {
        *v = Visibility::Inherited;
    }
    ambient.brightness = 260.0;
}

fn build_village(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let mut mat = |c: Color, rough: f32| {
        materials.add(StandardMaterial {
            base_color: c,
            perceptual_roughness: rough,
            ..default()
        })
    };
    let grass = mat(Color::srgb(0.33, 0.52, 0.27), 0.95);
    let path = mat(Color::srgb(0.62, 0.55, 0.42), 0.9);
    let wall = mat(Color::srgb(0.86, 0.80, 0.68), 0.8);
    let roof = mat(Color::srgb(0.55, 0.22, 0.16), 0.7);
    let stone = mat(Color::srgb(0.52, 0.52, 0.55), 0.85);
    let wood = mat(Color::srgb(0.42, 0.28, 0.16), 0.8);
    let dark = mat(Color::srgb(0.15, 0.13, 0.12), 0.9);
    let glow = |strength: f32| StandardMaterial {
        base_color: WARM,
        emissive: LinearRgba::from(WARM) * strength,
        ..default()
    };
    let window = materials.add(glow(6.0));

    commands.spawn((
        Mesh3d(meshes.add(Plane3d::default().mesh().size(80.0, 80.0))),
        MeshMaterial3d(grass),
    ));
    commands.spawn((
        Mesh3d(meshes.add(Plane3d::default().mesh().size(4.0, 40.0))),
        MeshMaterial3d(path.clone()),
        Transform::from_xyz(0.0, 0.01, 4.0),
    ));
    commands.spawn((
        Mesh3d(meshes.add(Plane3d::default().mesh().size(24.0, 4.0))),
        MeshMaterial3d(path),
        Transform::from_xyz(0.0, 0.01, -6.0),
    ));
    // Houses: a box and a pyramid-ish roof (a squashed cone with four sides).
    for (x, z, w, d) in [
        (-9.0, -11.0, 6.0, 5.0),
        (9.0, -11.0, 6.0, 5.0),
        (-10.0, 4.0, 5.0, 5.0),
        (10.0, 5.0, 5.0, 6.0),
    ] {
        commands.spawn((
            Mesh3d(meshes.add(Cuboid::new(w, 3.0, d))),
            MeshMaterial3d(wall.clone()),
            Transform::from_xyz(x, 1.5, z),
        ));
        commands.spawn((
            Mesh3d(meshes.add(ConicalFrustum {
                radius_top: 0.1,
                radius_bottom: w.max(d) * 0.75,
                height: 2.0,
            })),
            MeshMaterial3d(roof.clone()),
            Transform::from_xyz(x, 4.0, z)
                .with_rotation(Quat::from_rotation_y(std::f32::consts::FRAC_PI_4)),
        ));
        let front = z + d / 2.0 + 0.05;
        commands.spawn((
            Mesh3d(meshes.add(Cuboid::new(1.0, 1.8, 0.1))),
            MeshMaterial3d(dark.clone()),
            Transform::from_xyz(x, 0.9, front),
        ));
        // Two lit windows on the front (emissive: point lights cost a software renderer dear).
        for side in [-1.0, 1.0] {
            commands.spawn((
                Mesh3d(meshes.add(Cuboid::new(0.8, 0.7, 0.06))),
                MeshMaterial3d(window.clone()),
                Transform::from_xyz(x + side * w * 0.3, 1.7, front + 0.01),
            ));
        }
    }
    // The mill's wheel and the forge's chimney mark Mara's and Tobin's places.
    commands.spawn((
        Mesh3d(meshes.add(Cylinder::new(1.6, 0.3))),
        MeshMaterial3d(wood.clone()),
        Transform::from_xyz(-12.2, 1.8, -11.0)
            .with_rotation(Quat::from_rotation_z(std::f32::consts::FRAC_PI_2)),
    ));
    commands.spawn((
        Mesh3d(meshes.add(Cuboid::new(1.0, 5.5, 1.0))),
        MeshMaterial3d(stone.clone()),
        Transform::from_xyz(11.0, 2.75, -12.0),
    ));
    // The forge's fire, by Tobin's door.
    commands.spawn((
        Mesh3d(meshes.add(Cuboid::new(1.4, 0.9, 1.0))),
        MeshMaterial3d(stone.clone()),
        Transform::from_xyz(6.0, 0.45, -7.6),
    ));
    commands.spawn((
        Mesh3d(meshes.add(Cuboid::new(1.0, 0.2, 0.7))),
        MeshMaterial3d(materials.add(StandardMaterial {
            base_color: Color::srgb(1.0, 0.4, 0.1),
            emissive: LinearRgba::rgb(12.0, 3.5, 0.6),
            ..default()
        })),
        Transform::from_xyz(6.0, 0.95, -7.6),
    ));
    commands.spawn((
        PointLight {
            color: Color::srgb(1.0, 0.5, 0.2),
            intensity: 60_000.0,
            range: 10.0,
            shadow_maps_enabled: false,
            ..default()
        },
        Transform::from_xyz(6.0, 1.6, -7.0),
    ));
    // The well, with the empty lantern hook.
    commands.spawn((
        Mesh3d(meshes.add(Cylinder::new(1.2, 0.9))),
        MeshMaterial3d(stone),
        Transform::from_xyz(0.0, 0.45, -2.0),
    ));
    for x in [-1.0, 1.0] {
        commands.spawn((
            Mesh3d(meshes.add(Cuboid::new(0.15, 2.6, 0.15))),
            MeshMaterial3d(wood.clone()),
            Transform::from_xyz(x, 1.3, -2.0),
        ));
    }
    commands.spawn((
        Mesh3d(meshes.add(Cuboid::new(2.3, 0.15, 0.15))),
        MeshMaterial3d(wood),
        Transform::from_xyz(0.0, 2.6, -2.0),
    ));
    // Tilda's cart: a box on two wheels, with her wares.
    commands.spawn((
        Mesh3d(meshes.add(Cuboid::new(1.6, 0.6, 0.9))),
        MeshMaterial3d(materials.add(Color::srgb(0.3, 0.45, 0.35))),
        Transform::from_xyz(-5.6, 0.75, 2.2),
    ));
    for z in [1.7, 2.7] {
        commands.spawn((
            Mesh3d(meshes.add(Cylinder::new(0.4, 0.08))),
            MeshMaterial3d(materials.add(Color::srgb(0.35, 0.24, 0.14))),
            Transform::from_xyz(-5.6, 0.4, z)
                .with_rotation(Quat::from_rotation_x(std::f32::consts::FRAC_PI_2)),
        ));
    }
    for (i, colour) in [
        (0, Color::srgb(0.75, 0.1, 0.08)),
        (1, Color::srgb(0.78, 0.55, 0.28)),
    ] {
        commands.spawn((
            Mesh3d(meshes.add(Sphere::new(0.14))),
            MeshMaterial3d(materials.add(colour)),
            Transform::from_xyz(-6.0 + i as f32 * 0.5, 1.12, 2.2),
        ));
    }
    // The lantern, back on its hook when the story says so.
    commands
        .spawn((
            Lantern,
            Mesh3d(meshes.add(Cuboid::new(0.35, 0.45, 0.35))),
            MeshMaterial3d(materials.add(glow(25.0))),
            Transform::from_xyz(0.0, 2.2, -2.0),
            Visibility::Hidden,
        ))
        .with_child(PointLight {
            color: WARM,
            intensity: 400_000.0,
            range: 22.0,
            shadow_maps_enabled: false,
            ..default()
        });
    // The sun just set: a low orange light from the west, a cool dusk ambient.
    commands.spawn((
        DirectionalLight {
            illuminance: 1_800.0,
            shadow_maps_enabled: true,
            color: Color::srgb(1.0, 0.62, 0.38),
            ..default()
        },
        Transform::from_xyz(-20.0, 4.5, 4.0).looking_at(Vec3::ZERO, Vec3::Y),
        // One cascade over the square: software renderers draw each cascade's shadow map.
        CascadeShadowConfigBuilder {
            num_cascades: 1,
            maximum_distance: 35.0,
            ..default()
        }
        .build(),
    ));
    // The rising moon's cool fill from the east, so faces toward the player are lit.
    commands.spawn((
        DirectionalLight {
            illuminance: 900.0,
            shadow_maps_enabled: false,
            color: Color::srgb(0.62, 0.68, 1.0),
            ..default()
        },
        Transform::from_xyz(12.0, 9.0, 16.0).looking_at(Vec3::ZERO, Vec3::Y),
    ));
    commands.insert_resource(GlobalAmbientLight {
        color: Color::srgb(0.55, 0.55, 0.85),
        brightness: 220.0,
        ..default()
    });
}

/// Where each NPC stands, its persona, body colour.
pub const NPCS: [(&str, &str, Vec3, Color); 4] = [
    (
        "wren",
        "Elder Wren",
        Vec3::new(1.8, 0.0, -0.5),
        Color::srgb(0.45, 0.35, 0.6),
    ),
    (
        "mara",
        "Mara",
        Vec3::new(-7.5, 0.0, -7.5),
        Color::srgb(0.85, 0.75, 0.45),
    ),
    (
        "tobin",
        "Tobin",
        Vec3::new(7.5, 0.0, -7.8),
        Color::srgb(0.35, 0.45, 0.55),
    ),
    (
        "tilda",
        "Tilda",
        Vec3::new(-4.2, 0.0, 2.2),
        Color::srgb(0.62, 0.3, 0.28),
    ),
];

fn spawn_npcs(
    mut commands: Commands,
    assets: Res<AssetServer>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let skin = materials.add(Color::srgb(0.93, 0.78, 0.65));
    for (index, (id, name, at, color)) in NPCS.into_iter().enumerate() {
        let persona = assets.load(format!("stories://personas/{id}.persona.ron"));
        commands
            .spawn((
                Npc::new(persona),
                NpcLabel {
                    name: name.into(),
                    color,
                },
                Transform::from_translation(at).looking_at(Vec3::new(0.0, 0.0, 8.0), Vec3::Y),
                Visibility::default(),
            ))
            .with_children(|npc| {
                npc.spawn((
                    Mesh3d(meshes.add(Capsule3d::new(0.35, 1.0))),
                    MeshMaterial3d(materials.add(color)),
                    Transform::from_xyz(0.0, 0.85, 0.0),
                ));
                crate::face::spawn_face(npc, index, skin.clone(), &mut meshes, &mut materials);
            });
    }
}

fn spawn_player(mut commands: Commands, args: Res<crate::DemoArgs>) {
    let at = Transform::from_xyz(0.0, 1.7, 12.0).looking_at(Vec3::new(0.0, 1.4, 0.0), Vec3::Y);
    if args.vr {
        // The headset brings its own cameras; this entity follows the head (see `vr`).
        commands.spawn((PlayerCamera, DialogueListener, at));
    } else {
        commands.spawn((
            PlayerCamera,
            DialogueListener,
            Camera3d::default(),
            bevy_egui::PrimaryEguiContext,
            DistanceFog {
                color: FOG,
                falloff: FogFalloff::Linear {
                    start: 14.0,
                    end: 70.0,
                },
                ..default()
            },
            at,
        ));
    }
}
