// Speech bubble: a rounded panel with a soft edge and a small tail, the streamed text (rendered
// by egui into a texture) on top, and three pulsing dots while the NPC is still "thinking".
#import bevy_pbr::forward_io::VertexOutput

struct BubbleParams {
    // rgb: panel colour, a: panel opacity
    color: vec4<f32>,
    // x: time in seconds, y: thinking (0 or 1), z: width / height of the panel, w: atlas slot
    state: vec4<f32>,
};

@group(#{MATERIAL_BIND_GROUP}) @binding(0) var<uniform> params: BubbleParams;
@group(#{MATERIAL_BIND_GROUP}) @binding(1) var text_texture: texture_2d<f32>;
@group(#{MATERIAL_BIND_GROUP}) @binding(2) var text_sampler: sampler;

// Signed distance to a rounded rectangle centred at 0 with half-size `half` and radius `r`.
fn rounded_box(p: vec2<f32>, half: vec2<f32>, r: f32) -> f32 {
    let q = abs(p) - half + vec2<f32>(r);
    return length(max(q, vec2<f32>(0.0))) + min(max(q.x, q.y), 0.0) - r;
}

@fragment
fn fragment(in: VertexOutput) -> @location(0) vec4<f32> {
    let aspect = params.state.z;
    // Texture reads and derivatives first, in uniform control flow.
    let text_uv = vec2<f32>((params.state.w + in.uv.x) / 3.0, min(in.uv.y / 0.85, 1.0));
    let glyph = textureSample(text_texture, text_sampler, text_uv);
    // Panel space: x in [-aspect, aspect], y from 1 (top) to -1 at 85% of the quad's height;
    // the bottom 15% holds the tail.
    let p = vec2<f32>((in.uv.x * 2.0 - 1.0) * aspect, 1.0 - in.uv.y * 2.0 / 0.85);
    let panel = rounded_box(p, vec2<f32>(aspect - 0.06, 0.94), 0.35);
    // The tail: a small triangle pointing down, left of the panel's centre.
    let t = vec2<f32>(p.x + 0.25, p.y + 1.0);
    let tail = max(abs(t.x) - (t.y + 0.32) * 0.8, max(-0.32 - t.y, t.y - 0.05));
    let d = min(panel, tail);
    let edge = fwidth(d) * 1.5 + 0.02;
    let inside = 1.0 - smoothstep(-edge, edge, d);
    // A darker rim and a soft shade toward the bottom.
    let rim = smoothstep(-0.09, -0.02, d);
    var rgb = mix(params.color.rgb, params.color.rgb * 0.55, rim) * (0.92 + 0.08 * (1.0 - in.uv.y));
    // The streamed text (egui glyphs on a transparent background), only on the panel.
    let text_a = glyph.a * select(0.0, 1.0, in.uv.y <= 0.85);
    rgb = mix(rgb, glyph.rgb, text_a);
    // Thinking: three dots pulsing one after another.
    let thinking = params.state.y;
    for (var i = 0; i < 3; i = i + 1) {
        let phase = params.state.x * 4.0 - f32(i) * 0.7;
        let lift = 0.5 + 0.5 * sin(phase);
        let centre = vec2<f32>((f32(i) - 1.0) * 0.45, -0.1 + 0.12 * lift);
        let dot_d = length(p - centre) - (0.12 + 0.04 * lift);
        let dot_a = (1.0 - smoothstep(-0.02, 0.02, dot_d)) * thinking;
        rgb = mix(rgb, vec3<f32>(0.25, 0.22, 0.3), dot_a);
    }
    return vec4<f32>(rgb, params.color.a * inside);
}
