//! Finding NPCs: persona of an entity, entity of a persona, priority by the listener.

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;

use super::assets::PersonaAsset;
use super::components::{DialogueListener, Npc};
use super::settings::DialogueSettings;
use crate::story::Persona;

/// Why an entity cannot speak now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NotReady {
    /// No such entity (despawned?).
    Dead,
    /// The entity has no `Npc` component.
    NotNpc,
    /// Its persona file is still loading: ask again later.
    Loading,
    /// Its persona file failed to load.
    Failed(String),
}

/// NPCs, their personas and the listener.
#[derive(SystemParam)]
pub(crate) struct NpcLookup<'w, 's> {
    npcs: Query<'w, 's, (Entity, &'static Npc, &'static GlobalTransform)>,
    entities: &'w bevy::ecs::entity::Entities,
    server: Res<'w, AssetServer>,
    personas: Res<'w, Assets<PersonaAsset>>,
    listener: Query<'w, 's, &'static GlobalTransform, With<DialogueListener>>,
    settings: Res<'w, DialogueSettings>,
    safety: Res<'w, super::safety::DialogueSafety>,
}

impl NpcLookup<'_, '_> {
    /// The safety rules, moderators and audit log.
    pub fn safety(&self) -> &super::safety::DialogueSafety {
        &self.safety
    }

    /// The persona of an NPC, once loaded.
    pub fn persona(&self, npc: Entity) -> Option<&Persona> {
        let (_, n, _) = self.npcs.get(npc).ok()?;
        self.personas.get(&n.persona).map(|p| &p.0)
    }

    /// Whether `npc` can speak now, and why not.
    pub fn readiness(&self, npc: Entity) -> Result<&Persona, NotReady> {
        let Ok((_, n, _)) = self.npcs.get(npc) else {
            return Err(if self.entities.contains(npc) {
                NotReady::NotNpc
            } else {
                NotReady::Dead
            });
        };
        if let Some(p) = self.personas.get(&n.persona) {
            return Ok(&p.0);
        }
        match self.server.load_state(&n.persona) {
            bevy::asset::LoadState::Failed(e) => Err(NotReady::Failed(e.to_string())),
            _ => Err(NotReady::Loading),
        }
    }

    /// The NPC whose persona id is `id` (the first, if several).
    pub fn entity_of(&self, id: &str) -> Option<Entity> {
        self.npcs
            .iter()
            .find(|(_, n, _)| self.personas.get(&n.persona).is_some_and(|p| p.0.id == id))
            .map(|(e, _, _)| e)
    }

    /// Distance from the listener, if there is one.
    pub fn distance(&self, npc: Entity) -> Option<f32> {
        let listener = self.listener.single().ok()?;
        let (_, _, at) = self.npcs.get(npc).ok()?;
        Some(listener.translation().distance(at.translation()))
    }

    /// Whether the NPC is within the listener's view cone.
    pub fn in_view(&self, npc: Entity) -> bool {
        let (Ok(listener), Ok((_, _, at))) = (self.listener.single(), self.npcs.get(npc)) else {
            return false;
        };
        let to = at.translation() - listener.translation();
        if to.length_squared() < 1e-6 {
            return true;
        }
        let forward = listener.forward().as_vec3();
        let half = (self.settings.scheduling.view_cone_degrees * 0.5).to_radians();
        forward.angle_between(to) <= half
    }

    /// Request priority: the conversation partner first, then NPCs in view, then nearer ones.
    pub fn priority(&self, npc: Entity, partner: Option<Entity>) -> i32 {
        let near = self
            .distance(npc)
            .map_or(0, |d| 1_000_000 - ((d * 1000.0) as i32).clamp(0, 1_000_000));
        let view = if self.in_view(npc) { 2_000_000 } else { 0 };
        let talking = if partner == Some(npc) { 4_000_000 } else { 0 };
        near + view + talking
    }

    /// Every NPC.
    pub fn all(&self) -> impl Iterator<Item = Entity> + '_ {
        self.npcs.iter().map(|(e, _, _)| e)
    }

    /// The settings.
    pub fn settings(&self) -> &DialogueSettings {
        &self.settings
    }
}
