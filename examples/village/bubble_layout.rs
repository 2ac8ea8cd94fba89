//! Where screen-space bubbles go: kept inside the view with room to grow, and apart from each
//! other. Plain rectangle geometry in logical pixels (y down), no ECS.

use bevy::math::{Rect, Vec2};

/// Gap kept to the view's edges and between bubbles, in logical pixels.
pub const MARGIN: f32 = 10.0;
/// Widest line of a bubble's text, in logical pixels.
pub const TEXT_WIDTH: f32 = 310.0;
/// The widest a bubble gets: its text, padding and border.
pub const MAX_W: f32 = TEXT_WIDTH + 2.0 * 14.0 + 4.0;
/// Room for one more line of text (a streaming line grows by a line at a time).
pub const GROW: f32 = 26.0;

/// Moves `r` (vertically: above a bubble in the way if there is room, else below it) until it
/// overlaps none of `others`; stays inside `area`.
pub fn separate(mut r: Rect, others: &[Rect], area: Rect) -> Rect {
    for _ in 0..others.len() * 2 + 1 {
        let Some(other) = others.iter().find(|o| overlaps(r, **o)) else {
            return r;
        };
        let above = other.min.y - MARGIN - GROW - r.height();
        let dy = if above >= area.min.y {
            above - r.min.y
        } else {
            other.max.y + MARGIN + GROW - r.min.y
        };
        r = clamp_into(
            Rect::from_corners(r.min + Vec2::Y * dy, r.max + Vec2::Y * dy),
            area,
        );
    }
    // Still in the way after trying each: side by side instead.
    if let Some(other) = others.iter().find(|o| overlaps(r, **o)) {
        let dx = if other.max.x + MARGIN + r.width() <= area.max.x {
            other.max.x + MARGIN - r.min.x
        } else {
            other.min.x - MARGIN - r.width() - r.min.x
        };
        r = clamp_into(
            Rect::from_corners(r.min + Vec2::X * dx, r.max + Vec2::X * dx),
            area,
        );
    }
    r
}

pub fn clamp_into(r: Rect, area: Rect) -> Rect {
    let size = r.size().min(area.size());
    let min = r.min.clamp(area.min, area.max - size);
    Rect::from_corners(min, min + size)
}

/// Whether two bubbles could touch once their lines have grown (wider up to `MAX_W`, a line
/// taller).
fn overlaps(a: Rect, b: Rect) -> bool {
    let grown = |r: Rect| {
        Rect::new(
            r.min.x,
            r.min.y - GROW,
            r.min.x + r.width().max(MAX_W),
            r.max.y,
        )
    };
    let (a, b) = (grown(a), grown(b));
    a.min.x < b.max.x + MARGIN / 2.0
        && b.min.x < a.max.x + MARGIN / 2.0
        && a.min.y < b.max.y + MARGIN / 2.0
        && b.min.y < a.max.y + MARGIN / 2.0
}
