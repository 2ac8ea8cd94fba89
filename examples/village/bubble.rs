//! Speech bubbles on the desktop: a Bevy UI panel per NPC, anchored above its head on screen,
//! with its name, the streamed words wrapped inside with padding in a proportional font, and a
//! blinking cursor while the line streams. Every frame the bubbles are clamped into the 3D view
//! (left of the dialogue panel), pushed apart so they never overlap, and faded with distance.
//! The rectangles drawn are kept in [`BubbleRects`] so the screenshot script can check them.
//! (In a headset the bubbles live in the world instead: `world_bubble.rs`.)

use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use bevy_llama_dialogue::plugin::{Npc, NpcEmotion, SpeechBuffer};

use crate::bubble_layout::{GROW, MARGIN, MAX_W, TEXT_WIDTH, clamp_into, separate};
use crate::scene::{NpcLabel, PlayerCamera};

/// Seconds a bubble stays after its line ends.
const LINGER: f32 = 5.0;
/// Characters shown of a long line (its latest words).
const SHOWN: usize = 220;
/// Height of the tail under a bubble.
const TAIL: f32 = 14.0;
/// Distance (m) from which bubbles fade, and where they reach their faintest.
const FADE: (f32, f32) = (10.0, 24.0);
const PAPER: Color = Color::srgb(0.98, 0.96, 0.9);
const INK: Color = Color::srgb(0.16, 0.13, 0.11);

/// The proportional font of the bubbles (Ubuntu Light, shipped inside egui's default fonts).
#[derive(Resource, Clone)]
pub struct BubbleFont(pub Handle<Font>);

/// Space the dialogue panel takes on the right of the window (logical pixels); bubbles stay
/// left of it.
#[derive(Resource, Default)]
pub struct PanelInset(pub f32);

/// The bubble rectangles drawn in the last frame, in logical window pixels, with the window's
/// size: `(NPC name, rect)`.
#[derive(Resource, Default, Debug, Clone)]
pub struct BubbleRects {
    /// Window width and height.
    pub window: Vec2,
    /// The part of the window bubbles may use (left of the panel).
    pub area: Rect,
    /// Visible bubbles, as placed (before this frame's layout).
    pub rects: Vec<(String, Rect)>,
    /// Visible bubbles as laid out and drawn this frame (after layout; tails included).
    pub drawn: Vec<(String, Rect)>,
}

/// One NPC's bubble (the root UI node).
#[derive(Component)]
struct Bubble {
    npc: Entity,
    last_active: f32,
    /// Opacity from the distance (1 near).
    fade: f32,
    /// Where the tail sits (from the bubble's left), when it points at the head.
    tail_x: Option<f32>,
}

#[derive(Component)]
struct BubbleName(Entity);
#[derive(Component)]
struct BubbleBody(Entity);
#[derive(Component)]
struct BubbleCursor(Entity);
#[derive(Component)]
struct BubbleTail;

pub fn plugin(app: &mut App) {
    let font = app
        .world_mut()
        .resource_mut::<Assets<Font>>()
        .add(Font::from_bytes(
            epaint_default_fonts::UBUNTU_LIGHT.to_vec(),
        ));
    app.insert_resource(BubbleFont(font))
        .init_resource::<PanelInset>()
        .init_resource::<BubbleRects>()
        .add_systems(
            Update,
            (spawn_bubbles, update_texts, place_bubbles, fade_parts).chain(),
        )
        .add_systems(PostUpdate, measure_drawn.after(bevy::ui::UiSystems::Layout));
}

/// Records where the visible bubbles (with their tails) were laid out this frame.
fn measure_drawn(
    bubbles: Query<(
        &Bubble,
        &ComputedNode,
        &UiGlobalTransform,
        &Visibility,
        &Children,
    )>,
    tails: Query<(&ComputedNode, &UiGlobalTransform), With<BubbleTail>>,
    labels: Query<&NpcLabel>,
    mut rects: ResMut<BubbleRects>,
) {
    let rect = |node: &ComputedNode, at: &UiGlobalTransform| {
        let scale = node.inverse_scale_factor();
        let centre = at.translation * scale;
        Rect::from_center_size(centre, node.size() * scale)
    };
    rects.drawn.clear();
    for (bubble, node, at, visibility, children) in &bubbles {
        if *visibility == Visibility::Hidden {
            continue;
        }
        let mut r = rect(node, at);
        for child in children.iter() {
            if let Ok((tail, tail_at)) = tails.get(child)
                && bubble.tail_x.is_some()
            {
                // Turned 45°: its corners reach half a diagonal from its centre.
                let t = rect(tail, tail_at);
                let half = t.size().max_element() * std::f32::consts::FRAC_1_SQRT_2;
                r = r.union(Rect::from_center_half_size(t.center(), Vec2::splat(half)));
            }
        }
        let name = labels
            .get(bubble.npc)
            .map_or_else(|_| "?".into(), |l| l.name.clone());
        rects.drawn.push((name, r));
    }
}

/// NPCs whose name label just appeared.
type NewLabels<'w, 's> = Query<'w, 's, (Entity, &'static NpcLabel), (With<Npc>, Added<NpcLabel>)>;

fn spawn_bubbles(mut commands: Commands, font: Res<BubbleFont>, npcs: NewLabels) {
    for (npc, label) in &npcs {
        let text_font = |size: f32| TextFont {
            font: font.0.clone().into(),
            font_size: size.into(),
            ..default()
        };
        let accent = label.color.darker(0.25);
        commands
            .spawn((
                Bubble {
                    npc,
                    last_active: f32::NEG_INFINITY,
                    fade: 1.0,
                    tail_x: None,
                },
                Node {
                    position_type: PositionType::Absolute,
                    flex_direction: FlexDirection::Column,
                    min_width: Val::Px(120.0),
                    padding: UiRect::axes(Val::Px(14.0), Val::Px(9.0)),
                    border: UiRect::all(Val::Px(2.0)),
                    border_radius: BorderRadius::all(Val::Px(12.0)),
                    ..default()
                },
                BackgroundColor(PAPER.with_alpha(0.95)),
                BorderColor::all(accent),
                Visibility::Hidden,
                GlobalZIndex(10),
            ))
            .with_children(|b| {
                b.spawn((
                    Text::new(label.name.clone()),
                    text_font(16.0),
                    TextColor(accent),
                    BubbleName(npc),
                ));
                b.spawn((
                    // The text's own width limit, so its wrapped height reaches the bubble.
                    Node {
                        max_width: Val::Px(TEXT_WIDTH),
                        ..default()
                    },
                    Text::new(""),
                    text_font(20.0),
                    TextColor(INK),
                    BubbleBody(npc),
                ))
                .with_child((
                    TextSpan::new(""),
                    text_font(20.0),
                    TextColor(accent),
                    BubbleCursor(npc),
                ));
                // The tail: a small square turned 45°, half hidden under the bubble's edge.
                b.spawn((
                    Node {
                        position_type: PositionType::Absolute,
                        width: Val::Px(TAIL),
                        height: Val::Px(TAIL),
                        bottom: Val::Px(-TAIL / 2.0 - 1.0),
                        left: Val::Px(20.0),
                        border: UiRect::new(Val::ZERO, Val::Px(2.0), Val::ZERO, Val::Px(2.0)),
                        ..default()
                    },
                    UiTransform::from_rotation(Rot2::degrees(45.0)),
                    BackgroundColor(PAPER.with_alpha(0.95)),
                    BorderColor::all(accent),
                    BubbleTail,
                ));
            });
    }
}

/// The name (with the emotion the line shows, if any), the latest words (or animated dots
/// while the model thinks) and the cursor.
fn update_texts(
    time: Res<Time>,
    buffers: Query<&SpeechBuffer>,
    labels: Query<(&NpcLabel, Option<&NpcEmotion>)>,
    mut names: Query<(&BubbleName, &mut Text), Without<BubbleBody>>,
    mut bodies: Query<(&BubbleBody, &mut Text), Without<BubbleName>>,
    mut cursors: Query<(&BubbleCursor, &mut TextSpan)>,
) {
    let now = time.elapsed_secs();
    for (name, mut text) in &mut names {
        let Ok((label, emotion)) = labels.get(name.0) else {
            continue;
        };
        let wanted = match emotion {
            Some(e) => format!("{} · {}", label.name, e.0),
            None => label.name.clone(),
        };
        if text.0 != wanted {
            text.0 = wanted;
        }
    }
    for (body, mut text) in &mut bodies {
        let Ok(buffer) = buffers.get(body.0) else {
            continue;
        };
        let wanted = if buffer.thinking {
            let dots = 1 + (now * 3.0) as usize % 3;
            "•".repeat(dots)
        } else {
            latest_words(buffer.text.trim(), SHOWN)
        };
        if text.0 != wanted {
            text.0 = wanted;
        }
    }
    for (cursor, mut span) in &mut cursors {
        let Ok(buffer) = buffers.get(cursor.0) else {
            continue;
        };
        let on = buffer.speaking && !buffer.thinking && (now * 2.5).fract() < 0.6;
        let wanted = if on { " |" } else { "" };
        if span.0 != wanted {
            span.0 = wanted.into();
        }
    }
}

/// The end of `text`, at most `max` characters, cut at a word with a leading ellipsis.
fn latest_words(text: &str, max: usize) -> String {
    match text.char_indices().rev().nth(max) {
        None => text.to_owned(),
        Some((i, _)) => {
            let rest = &text[i..];
            let at = rest.find(' ').map_or(0, |s| s + 1);
            format!("…{}", &rest[at..])
        }
    }
}

/// Shows, places, separates and fades the bubbles.
#[allow(clippy::type_complexity)]
fn place_bubbles(
    time: Res<Time>,
    window: Single<&Window, With<PrimaryWindow>>,
    camera: Single<(&Camera, &Transform), With<PlayerCamera>>,
    inset: Res<PanelInset>,
    npcs: Query<(&GlobalTransform, &SpeechBuffer, &NpcLabel)>,
    mut bubbles: Query<(
        Entity,
        &mut Bubble,
        &mut Node,
        &ComputedNode,
        &mut Visibility,
        &mut BackgroundColor,
    )>,
    mut rects: ResMut<BubbleRects>,
) {
    let now = time.elapsed_secs();
    let (camera, eye) = *camera;
    let eye_global = GlobalTransform::from(*eye);
    let size = Vec2::new(window.width(), window.height());
    let area = Rect::new(
        MARGIN,
        MARGIN,
        (size.x - inset.0 - MARGIN).max(MARGIN + 1.0),
        size.y - MARGIN,
    );
    // (bubble, distance to the eye, head on screen (None: behind), measured size, name)
    let mut shown = Vec::new();
    for (entity, mut bubble, _, computed, mut visibility, _) in &mut bubbles {
        let Ok((at, buffer, label)) = npcs.get(bubble.npc) else {
            visibility.set_if_neq(Visibility::Hidden);
            continue;
        };
        if buffer.speaking {
            bubble.last_active = now;
        }
        let show = buffer.line > 0 && now - bubble.last_active < LINGER;
        // Only real changes are written: a changed `Node`, colour or visibility makes Bevy lay
        // out or re-propagate the UI again.
        visibility.set_if_neq(if show {
            Visibility::Inherited
        } else {
            Visibility::Hidden
        });
        if !show {
            continue;
        }
        let head = at.translation() + Vec3::Y * 2.3;
        let distance = head.distance(eye.translation);
        let in_front = eye.forward().dot(head - eye.translation) > 0.05;
        let anchor = camera
            .world_to_viewport(&eye_global, head)
            .ok()
            .filter(|_| in_front);
        let mut measured = computed.size() * computed.inverse_scale_factor();
        if measured.x < 1.0 {
            measured = Vec2::new(240.0, 70.0); // not laid out yet
        }
        shown.push((entity, distance, anchor, measured, label.name.clone()));
    }
    // The nearest keeps its place; the others move out of its way.
    shown.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut placed: Vec<(Entity, Rect, Option<Vec2>, f32, String)> = Vec::new();
    for (entity, distance, anchor, size, name) in shown {
        // A head behind the camera or off screen: the bubble waits at the nearest edge.
        let a = anchor.unwrap_or(Vec2::new(area.center().x, area.max.y));
        let r = Rect::from_corners(
            Vec2::new(a.x - size.x / 2.0, a.y - TAIL - size.y),
            Vec2::new(a.x + size.x / 2.0, a.y - TAIL),
        );
        let others: Vec<Rect> = placed.iter().map(|p| p.1).collect();
        // Room for the widest bubble on the right and one more line on top, so a line still
        // streaming in never leaves the view before the next placement.
        let room = Rect::new(
            area.min.x,
            area.min.y + GROW,
            (area.max.x - (MAX_W - r.width())).max(area.min.x + r.width()),
            area.max.y,
        );
        let r = separate(clamp_into(r, room), &others, room);
        let fade = 1.0 - ((distance - FADE.0) / (FADE.1 - FADE.0)).clamp(0.0, 1.0) * 0.7;
        placed.push((entity, r, anchor, fade, name));
    }
    rects.window = size;
    rects.area = area;
    rects.rects = placed.iter().map(|p| (p.4.clone(), p.1)).collect();
    for (entity, mut bubble, mut node, _, _, mut background) in &mut bubbles {
        let Some((_, r, anchor, fade, _)) = placed.iter().find(|p| p.0 == entity) else {
            continue;
        };
        // Anchored by the bottom: a line that grows pushes the bubble up, away from the head,
        // and the room reserved above (`GROW`) keeps it inside until the next placement.
        let (left, bottom) = (Val::Px(r.min.x), Val::Px(size.y - r.max.y));
        if node.left != left || node.bottom != bottom || node.top != Val::Auto {
            node.left = left;
            node.bottom = bottom;
            node.top = Val::Auto;
        }
        background.set_if_neq(BackgroundColor(PAPER.with_alpha(0.95 * fade)));
        bubble.fade = *fade;
        // The tail points at the head when the head is just under the bubble.
        bubble.tail_x = anchor
            .filter(|a| (a.y - TAIL - r.max.y).abs() < 2.0 && a.x > r.min.x && a.x < r.max.x)
            .map(|a| (a.x - r.min.x - TAIL / 2.0).clamp(12.0, r.width() - 30.0));
    }
}

/// Text, border and tail follow their bubble's fade; the tail shows only when it points at
/// the head.
#[allow(clippy::type_complexity)]
fn fade_parts(
    bubbles: Query<(Entity, &Bubble, &Children)>,
    labels: Query<&NpcLabel>,
    mut borders: Query<&mut BorderColor>,
    mut colours: Query<&mut TextColor>,
    mut tails: Query<(&mut Node, &mut BackgroundColor), With<BubbleTail>>,
    spans: Query<&Children, With<BubbleBody>>,
) {
    for (root, bubble, children) in &bubbles {
        let Ok(label) = labels.get(bubble.npc) else {
            continue;
        };
        let accent = label.color.darker(0.25).with_alpha(bubble.fade);
        let tail_alpha = if bubble.tail_x.is_some() { 1.0 } else { 0.0 };
        let mut paint = |e: Entity, border_alpha: f32| {
            if let Ok(mut b) = borders.get_mut(e) {
                let c = accent.with_alpha(bubble.fade * border_alpha);
                if b.top != c {
                    *b = BorderColor::all(c);
                }
            }
        };
        paint(root, 1.0);
        // The children: name, body (its span: the cursor), tail.
        for child in children.iter() {
            if let Ok((mut node, mut bg)) = tails.get_mut(child) {
                paint(child, tail_alpha);
                bg.set_if_neq(BackgroundColor(
                    PAPER.with_alpha(0.95 * bubble.fade * tail_alpha),
                ));
                if let Some(x) = bubble.tail_x
                    && node.left != Val::Px(x)
                {
                    node.left = Val::Px(x);
                }
                continue;
            }
            if let Ok(mut c) = colours.get_mut(child) {
                let alpha = bubble.fade;
                if c.0.alpha() != alpha {
                    c.0.set_alpha(alpha);
                }
            }
            for span in spans.get(child).into_iter().flat_map(|c| c.iter()) {
                if let Ok(mut c) = colours.get_mut(span)
                    && c.0.alpha() != bubble.fade
                {
                    c.0.set_alpha(bubble.fade);
                }
            }
        }
    }
}
