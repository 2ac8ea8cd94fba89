//! The dusk sky: a dome coloured from the warm horizon to the night above, and the moon.

use bevy::asset::RenderAssetUsages;
use bevy::light::{NotShadowCaster, NotShadowReceiver};
use bevy::mesh::{Indices, PrimitiveTopology};
use bevy::prelude::*;

/// The sky straight up (also the clear colour).
pub const SKY_ZENITH: Color = Color::srgb(0.10, 0.12, 0.30);
/// The sky at the horizon, where the sun has just set.
const SKY_HORIZON: Color = Color::srgb(0.93, 0.55, 0.33);

/// A dome around the village, coloured from the warm horizon to the night above (vertex
/// colours on an unlit, fog-free material), with a pale moon low in the east.
pub fn build_sky(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let (rings, segments, radius) = (16u32, 32u32, 90.0f32);
    let mut positions = Vec::new();
    let mut colours = Vec::new();
    for r in 0..=rings {
        // From a little below the horizon to the zenith.
        let lat = -0.15 + (r as f32 / rings as f32) * (std::f32::consts::FRAC_PI_2 + 0.15);
        let t = (lat.max(0.0) / std::f32::consts::FRAC_PI_2).powf(0.6);
        let c = SKY_HORIZON.mix(&SKY_ZENITH, t).to_linear();
        for g in 0..=segments {
            let lon = g as f32 / segments as f32 * std::f32::consts::TAU;
            positions.push([
                radius * lat.cos() * lon.cos(),
                radius * lat.sin(),
                radius * lat.cos() * lon.sin(),
            ]);
            colours.push([c.red, c.green, c.blue, 1.0]);
        }
    }
    let mut indices = Vec::new();
    for r in 0..rings {
        for g in 0..segments {
            let a = r * (segments + 1) + g;
            let b = a + segments + 1;
            indices.extend_from_slice(&[a, a + 1, b, a + 1, b + 1, b]);
        }
    }
    let normals = vec![[0.0, -1.0, 0.0]; positions.len()];
    let dome = Mesh::new(
        PrimitiveTopology::TriangleList,
        RenderAssetUsages::default(),
    )
    .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, positions)
    .with_inserted_attribute(Mesh::ATTRIBUTE_NORMAL, normals)
    .with_inserted_attribute(Mesh::ATTRIBUTE_COLOR, colours)
    .with_inserted_indices(Indices::U32(indices));
    commands.spawn((
        Mesh3d(meshes.add(dome)),
        MeshMaterial3d(materials.add(StandardMaterial {
            base_color: Color::WHITE,
            unlit: true,
            fog_enabled: false,
            cull_mode: None,
            ..default()
        })),
        NotShadowCaster,
        NotShadowReceiver,
    ));
    commands.spawn((
        Mesh3d(meshes.add(Sphere::new(3.0))),
        MeshMaterial3d(materials.add(StandardMaterial {
            base_color: Color::srgb(0.95, 0.93, 0.82),
            unlit: true,
            fog_enabled: false,
            ..default()
        })),
        Transform::from_xyz(50.0, 22.0, -60.0),
        NotShadowCaster,
        NotShadowReceiver,
    ));
}
