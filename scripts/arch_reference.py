"""llama.cpp's logits on the random-weight architecture test models, for
tests/models/arch_reference.json.

The models are written by our own `make-test-model` (deterministic: shape, F32, seed 1, the
synthetic SentencePiece vocabulary); their sha256 is recorded so the test knows it compares the
same bytes. Run with the llama-cpp-python 0.3.36 that scripts/test-server.sh builds (llama.cpp
as vendored there, CPU, 2 threads):

    for s in tiny-llama3 tiny-qwen2 tiny-qwen3; do
        llama-dialogue make-test-model --shape $s --quant f32 --out /tmp/arch/$s.gguf
    done
    "$(bash scripts/test-server.sh)" scripts/arch_reference.py /tmp/arch/tiny-*.gguf \
        tests/models/stories260K.gguf tests/models/llama-2-tiny-random.gguf \
        > tests/models/arch_reference.json

For each file it records, along one fixed token sequence evaluated as one batch (teacher
forced, as `llama-perplexity --kl-divergence` does), llama.cpp's 32 most likely tokens and their
log-probabilities at every position.
"""
import hashlib
import json
import math
import os
import sys

import numpy as np
from llama_cpp import Llama

N = 256  # positions: the issue asks for at least 256

out = {"llama_cpp": "llama-cpp-python 0.3.36 (vendored llama.cpp), CPU, 2 threads", "models": {}}
for path in sys.argv[1:]:
    llm = Llama(model_path=path, n_ctx=512, n_threads=2, n_batch=512, logits_all=True,
                verbose=False, seed=0)
    n_vocab = llm.n_vocab()
    # A fixed pseudo-random sequence of ordinary tokens (ids past the byte tokens), BOS first.
    state, seq = 12345, [llm.token_bos()]
    while len(seq) < N + 1:
        state = (state * 1103515245 + 12345) % (1 << 31)
        seq.append(300 + state % (n_vocab - 300))
    llm.reset()
    llm.eval(seq)
    positions = []
    for i in range(len(seq) - 1):
        logits = np.array(llm.scores[i], dtype=np.float64)
        m = logits.max()
        logz = m + math.log(np.exp(logits - m).sum())
        top = np.argsort(-logits)[:32]
        positions.append({"ids": [int(t) for t in top],
                          "logprobs": [round(float(logits[t] - logz), 6) for t in top]})
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    out["models"][os.path.basename(path)] = {"sha256": sha, "sequence": seq,
                                             "positions": positions}
    del llm
json.dump(out, sys.stdout)
