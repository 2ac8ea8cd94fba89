//! The engine's integration tests: GGUF files, tokenizers against llama.cpp's vectors, the
//! forward pass against llama.cpp and candle, kernels, sampling, constraints, the worker, the
//! backends (a real server on 127.0.0.1) and voice. One binary, one module per behaviour.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/cross_check.rs"]
#[allow(dead_code)]
mod cross_check;

/// Measures allocations for the property tests (`common::alloc`); forwards to the system's.
#[global_allocator]
static ALLOCATOR: common::alloc::Tracking = common::alloc::Tracking;

mod backends;
mod constrained;
mod generate_loop;
mod gguf_bad_input;
mod gguf_properties;
mod model_architectures;
mod model_batch;
mod model_quant_types;
mod model_smollm2;
mod model_stories260k;
mod model_tiny_random;
mod prefix_cache;
#[cfg(feature = "remote")]
mod remote_limits;
#[cfg(feature = "remote")]
mod remote_server;
mod safety_decoding;
mod tokenizer_bpe;
mod tokenizer_hard_cases;
mod tokenizer_reference;
mod tokenizer_untrusted;
#[cfg(feature = "voice")]
mod voice;
mod worker;
mod worker_batch;
