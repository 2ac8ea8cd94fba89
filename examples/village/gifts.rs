//! What NPCs do besides talking ([`NpcAction`]): Tilda's `give_item` puts the items in the
//! player's hand (primitives held at the bottom right of the view) with a note in the panel's
//! conversation; `wave` is noted too. A card says what happened for a few seconds.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};
use bevy_llama_dialogue::plugin::NpcAction;

use crate::panel::Conversation;
use crate::scene::{NpcLabel, PlayerCamera};

/// Seconds the card stays.
const CARD: f32 = 6.0;

/// The last action, for the card and the script: (what happened, when).
#[derive(Resource, Default)]
pub struct LastAction(pub Option<(String, f32)>);

/// An item in the player's hand.
#[derive(Component)]
struct Held;

pub fn plugin(app: &mut App) {
    app.init_resource::<LastAction>()
        .add_observer(on_action)
        .add_systems(EguiPrimaryContextPass, card);
}

#[allow(clippy::too_many_arguments)]
fn on_action(
    e: On<NpcAction>,
    time: Res<Time>,
    mut commands: Commands,
    labels: Query<&NpcLabel>,
    camera: Single<Entity, With<PlayerCamera>>,
    held: Query<Entity, With<Held>>,
    mut conversation: Option<ResMut<Conversation>>,
    mut last: ResMut<LastAction>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let who = labels
        .get(e.entity)
        .map_or_else(|_| "Someone".to_owned(), |l| l.name.clone());
    let action = &e.action;
    let what = match action.name.as_str() {
        "give_item" => {
            let item = action
                .arg::<String>("item")
                .unwrap_or_else(|| "something".into());
            let count = action.arg::<i64>("count").unwrap_or(1).clamp(1, 3);
            for old in &held {
                commands.entity(old).despawn();
            }
            let (mesh, colour): (Mesh, Color) = match item.as_str() {
                "apple" => (Sphere::new(0.06).into(), Color::srgb(0.75, 0.1, 0.08)),
                "bread" => (
                    Capsule3d::new(0.05, 0.12).into(),
                    Color::srgb(0.78, 0.55, 0.28),
                ),
                _ => (
                    Cylinder::new(0.045, 0.16).into(),
                    Color::srgb(0.35, 0.55, 0.8),
                ),
            };
            let mesh = meshes.add(mesh);
            let material = materials.add(colour);
            for i in 0..count {
                let item = commands
                    .spawn((
                        Held,
                        Mesh3d(mesh.clone()),
                        MeshMaterial3d(material.clone()),
                        // Held low on the right, in front of the camera.
                        Transform::from_xyz(0.22 + i as f32 * 0.13, -0.24, -0.6)
                            .with_rotation(Quat::from_rotation_z(0.5)),
                    ))
                    .id();
                commands.entity(*camera).add_child(item);
            }
            format!("{who} gives you {count} × {item}")
        }
        "wave" => format!("{who} waves at you"),
        other => format!("{who}: {other}"),
    };
    info!("action: {action} → {what}");
    if let Some(c) = conversation.as_mut() {
        c.history.push((String::new(), format!("({what})")));
    }
    last.0 = Some((what, time.elapsed_secs()));
}

fn card(mut contexts: EguiContexts, time: Res<Time>, last: Res<LastAction>) -> Result {
    let ctx = contexts.ctx_mut()?;
    let Some((what, at)) = &last.0 else {
        return Ok(());
    };
    if time.elapsed_secs() - at > CARD {
        return Ok(());
    }
    egui::Area::new(egui::Id::new("action"))
        .anchor(
            egui::Align2::CENTER_BOTTOM,
            egui::vec2(-crate::panel::PANEL_WIDTH / 2.0, -90.0),
        )
        .show(ctx, |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.label(
                    egui::RichText::new(what)
                        .size(20.0)
                        .color(egui::Color32::from_rgb(250, 215, 140)),
                );
            });
        });
    Ok(())
}
