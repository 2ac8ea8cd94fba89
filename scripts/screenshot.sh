#!/usr/bin/env bash
# Plays the village demo as a person would — walk up to Elder Wren, talk, wait for the choices,
# watch Mara and Tobin talk, pick the tiny test model in the panel — under Xvfb with Mesa's
# software Vulkan (llvmpipe), and saves five screenshots into OUT_DIR: 01_approach.png (the
# "Press E" hint), 02_bubble.png (a speech bubble streaming mid-line), 03_choices.png (the panel
# with numbered choices), 04_npc_chat.png (two NPCs talking to each other), 05_loading.png (the
# model overlay after a pick in the panel). Fails if any is missing or blank, or if a bubble the
# demo reports drawing (OUT_DIR/bubbles.json) leaves the frame or the 3D view, or overlaps another.
#
#   scripts/screenshot.sh OUT_DIR [--model M.gguf]
#
# Installs xvfb, mesa-vulkan-drivers and the X11/Vulkan runtime libraries when they are missing
# (Debian/Ubuntu, needs root).
set -euo pipefail
out="${1:?usage: scripts/screenshot.sh OUT_DIR [--model M.gguf]}"
shift
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
rm -f "$out"/0[1-9]_*.png "$out"/bubbles.json

need=()
command -v Xvfb >/dev/null || need+=(xvfb)
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || need+=(mesa-vulkan-drivers)
ldconfig -p | grep -q 'libvulkan.so.1 ' || need+=(libvulkan1)
for pair in libX11.so.6:libx11-6 libXcursor.so.1:libxcursor1 libXrandr.so.2:libxrandr2 \
    libXi.so.6:libxi6 libxkbcommon-x11.so.0:libxkbcommon-x11-0; do
    ldconfig -p | grep -q "${pair%%:*}" || need+=("${pair##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "screenshot.sh: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cd "$root"
# Under CI the crates only the demo uses (rendering, windowing, egui, fonts: half of its build)
# are compiled at opt-level 1 instead of the dev profile's 3: the screenshots need them to draw,
# not to draw fast (the script counts frames, not seconds). A player's `cargo run` is untouched.
faster=()
if [ -n "${CI:-}" ]; then
    for p in bevy_pbr bevy_render bevy_core_pipeline bevy_sprite_render bevy_ui naga bevy_mesh \
        bevy_camera vello_cpu bevy_light wgpu-core bevy_window read-fonts bevy_egui egui skrifa \
        bevy_image bevy_text moxcms bevy_winit bevy_ui_render x11rb-protocol harfrust image \
        bevy_sprite swash ash bevy_color pxfm bevy_state wgpu naga_oil bevy_input_focus winit \
        wgpu-hal bevy_a11y epaint; do
        faster+=(--config "profile.dev.package.$p.opt-level=1")
    done
fi
cargo build --locked --example village --features demo "${faster[@]}"
display=":$((90 + RANDOM % 9))"
Xvfb "$display" -screen 0 1280x720x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true' EXIT
sleep 2
echo "screenshot.sh: running the demo on $display (software rendering, slow)"
DISPLAY="$display" WGPU_BACKEND=vulkan BEVY_ASSET_ROOT="$root" RUST_LOG=info,wgpu=error,naga=warn \
    timeout 1200 "$root/target/debug/examples/village" --script "$out" "$@"

python3 - "$out" <<'PY'
import struct, sys, zlib, pathlib
out = pathlib.Path(sys.argv[1])
ok = True
for name in ["01_approach.png", "02_bubble.png", "03_choices.png", "04_npc_chat.png", "05_loading.png"]:
    p = out / name
    if not p.is_file():
        print(f"screenshot.sh: missing {p}"); ok = False; continue
    data = p.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        print(f"screenshot.sh: {p} is not a PNG"); ok = False; continue
    pos, idat, (w, h, depth, ctype) = 8, b"", (0, 0, 0, 0)
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    channels = {2: 3, 6: 4}.get(ctype, 1)
    stride = w * channels
    # Undo the PNG row filters and count distinct colours on a grid of samples.
    prev, colours = bytearray(stride), set()
    for y in range(h):
        f = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = row[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1: row[i] = (row[i] + a) & 255
            elif f == 2: row[i] = (row[i] + b) & 255
            elif f == 3: row[i] = (row[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 8 == 0:
            for x in range(0, w, 8):
                colours.add(bytes(row[x * channels:x * channels + 3]))
        prev = row
    verdict = "ok" if len(colours) >= 64 else "BLANK"
    print(f"screenshot.sh: {name}: {w}x{h}, {len(colours)} distinct colours sampled: {verdict}")
    ok = ok and verdict == "ok"

# The bubbles: whole inside the frame and the 3D view, none over another, where shots need them.
import json
report = {r["shot"]: r for r in json.loads((out / "bubbles.json").read_text())}
need = {"02_bubble.png": 1, "04_npc_chat.png": 2}
for shot, r in sorted(report.items()):
    w, h = r["window"]
    ax0, ay0, ax1, ay1 = r["area"]
    rects = [(b["npc"], b["rect"]) for b in r["bubbles"]]
    problems = []
    for npc, (x0, y0, x1, y1) in rects:
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            problems.append(f"{npc}'s bubble {x0:.0f},{y0:.0f}-{x1:.0f},{y1:.0f} leaves the {w:.0f}x{h:.0f} frame")
        elif x0 < ax0 - 0.5 or y0 < ay0 - 0.5 or x1 > ax1 + 0.5 or y1 > ay1 + 0.5:
            problems.append(f"{npc}'s bubble {x0:.0f},{y0:.0f}-{x1:.0f},{y1:.0f} leaves the 3D view")
    for i, (a, ra) in enumerate(rects):
        for b, rb in rects[i + 1:]:
            if ra[0] < rb[2] and rb[0] < ra[2] and ra[1] < rb[3] and rb[1] < ra[3]:
                problems.append(f"{a}'s and {b}'s bubbles overlap")
    if len(rects) < need.get(shot, 0):
        problems.append(f"{len(rects)} bubble(s), {need[shot]} expected")
    listed = ", ".join(f"{n} {x0:.0f},{y0:.0f}-{x1:.0f},{y1:.0f}" for n, (x0, y0, x1, y1) in rects)
    print(f"screenshot.sh: {shot}: bubbles [{listed or 'none'}]: {'; '.join(problems) or 'inside, apart'}")
    ok = ok and not problems
for shot in need:
    if shot not in report:
        print(f"screenshot.sh: no bubble report for {shot}"); ok = False
sys.exit(0 if ok else 1)
PY
