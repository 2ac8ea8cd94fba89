//! The village: ground, houses, the well, lights, and the three NPCs at their places.

use bevy::prelude::*;
use bevy_llama_dialogue::plugin::{DialogueListener, Npc};

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
    app.add_systems(Startup, (build_village, spawn_npcs, spawn_player));
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
        commands.spawn((
            Mesh3d(meshes.add(Cuboid::new(1.0, 1.8, 0.1))),
            MeshMaterial3d(dark.clone()),
            Transform::from_xyz(x, 0.9, z + d / 2.0 + 0.05),
        ));
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
    commands.spawn((
        DirectionalLight {
            illuminance: 9_000.0,
            shadow_maps_enabled: true,
            color: Color::srgb(1.0, 0.88, 0.72),
            ..default()
        },
        Transform::from_xyz(-8.0, 12.0, 6.0).looking_at(Vec3::ZERO, Vec3::Y),
    ));
    commands.insert_resource(GlobalAmbientLight {
        color: Color::srgb(0.75, 0.8, 1.0),
        brightness: 350.0,
        ..default()
    });
}

/// Where each NPC stands, its persona, body colour.
pub const NPCS: [(&str, &str, Vec3, Color); 3] = [
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
];

fn spawn_npcs(
    mut commands: Commands,
    assets: Res<AssetServer>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let skin = materials.add(Color::srgb(0.93, 0.78, 0.65));
    for (id, name, at, color) in NPCS {
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
                npc.spawn((
                    Mesh3d(meshes.add(Sphere::new(0.25))),
                    MeshMaterial3d(skin.clone()),
                    Transform::from_xyz(0.0, 1.62, 0.0),
                ));
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
            at,
        ));
    }
}
