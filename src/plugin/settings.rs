//! Run-time settings, copied from the plugin's fields; change the resource to retune.

use bevy::prelude::*;

use crate::engine::sampler::SamplingParams;

/// How the plugin schedules many NPCs and how much it does per frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduling {
    /// A listener this close (world units) makes the NPC's persona prefill ahead of time.
    pub warm_radius: f32,
    /// An NPC's line is cancelled when the listener gets farther than this.
    pub cancel_radius: f32,
    /// NPCs inside this cone in front of the listener are served before those behind it.
    pub view_cone_degrees: f32,
    /// Most backend events handled per frame (the rest wait for the next frame).
    pub max_events_per_frame: usize,
    /// Most story steps taken per frame.
    pub max_steps_per_frame: usize,
}

impl Default for Scheduling {
    fn default() -> Self {
        Self {
            warm_radius: 6.0,
            cancel_radius: 15.0,
            view_cone_degrees: 90.0,
            max_events_per_frame: 64,
            max_steps_per_frame: 16,
        }
    }
}

/// The plugin's run-time settings.
#[derive(Resource, Debug, Clone, Default)]
pub struct DialogueSettings {
    /// Sampling for generated lines (personas and nodes override temperature and length).
    pub sampling: SamplingParams,
    /// Scheduling.
    pub scheduling: Scheduling,
}
