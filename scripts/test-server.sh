#!/usr/bin/env bash
# Installs the OpenAI-compatible server that the remote-backend tests start on 127.0.0.1:
# llama.cpp as packaged on PyPI (`llama-cpp-python[server]`, pinned), built from source once
# (CPU only, a few minutes on 2 cores) into a virtual environment that later clones reuse.
#
#   scripts/test-server.sh          # installs if missing, prints the environment's python
#
# The tests read the interpreter from LLAMA_DIALOGUE_TEST_SERVER_PYTHON, else from the default
# place below; they fail (never skip) when it is missing and say to run this script.
set -euo pipefail
version=0.3.36
venv="${LLAMA_DIALOGUE_TEST_SERVER_VENV:-$HOME/.cache/bevy_llama_dialogue/llama-cpp-python-$version}"
python="$venv/bin/python"

if [ -x "$python" ] && "$python" -c "import llama_cpp.server, llama_cpp; assert llama_cpp.__version__ == '$version'" 2>/dev/null; then
    echo "$python"
    exit 0
fi

command -v cmake >/dev/null || {
    echo "test-server.sh: installing cmake" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cmake >&2
}
echo "test-server.sh: building llama-cpp-python $version into $venv (once)" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$python" -m pip install -q --upgrade pip >&2
# Portable CPU build (no -march=native): the same build works on any x86-64 machine; the tests
# compare our client with the server, not speeds. No multimodal library (LLAVA_BUILD=OFF: a
# third of the build; llama-cpp-python loads it only for image chat formats).
CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$python" -m pip install -q --no-binary llama-cpp-python "llama-cpp-python[server]==$version" >&2
"$python" -c "import llama_cpp.server" >&2
echo "$python"
