//! Bad GGUF input gives a typed error, never a panic: foreign files, truncation at every header
//! offset and many data offsets, random bytes, byte flips, wrong architecture, unsupported
//! tensor types, missing or mis-shaped tensors, out-of-range vocabulary ids.

use crate::common;

use std::path::{Path, PathBuf};

use bevy_llama_dialogue::engine::config::ConfigError;
use bevy_llama_dialogue::engine::gguf::{
    GgufError, GgufFile, GgufWriter, TensorSpec, TensorType, Value, parse,
};
use bevy_llama_dialogue::engine::llama::{Llama, LoadError};
use bevy_llama_dialogue::engine::model::{LlamaModel, ModelError, ModelOptions};
use bevy_llama_dialogue::engine::synth::{ModelShape, TestModelSpec, write_test_model};
use bevy_llama_dialogue::engine::tokenizer::{Tokenizer, TokenizerError};

fn tiny_model(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.gguf");
    let spec = TestModelSpec {
        shape: ModelShape::by_name("tiny").unwrap(),
        quant: TensorType::Q8_0,
        seed: 1,
    };
    write_test_model(&spec, None, &path, &mut |_, _| {}).unwrap();
    path
}

/// Rewrites `src` into `dst` after `edit` changed its metadata and tensor list.
fn rewrite(
    src: &Path,
    dst: &Path,
    edit: impl FnOnce(&mut Vec<(String, Value)>, &mut Vec<TensorSpec>),
) {
    let g = GgufFile::open(src).unwrap();
    let mut md = g.metadata().to_vec();
    let mut specs: Vec<TensorSpec> = g.tensors().iter().map(TensorSpec::from).collect();
    edit(&mut md, &mut specs);
    let file = std::fs::File::create(dst).unwrap();
    let mut w = GgufWriter::write_header(file, &md, &specs).unwrap();
    for s in &specs {
        let size = bevy_llama_dialogue::engine::gguf::TensorInfo {
            name: s.name.clone(),
            dims: s.dims.clone(),
            ty: s.ty,
            offset: 0,
        }
        .byte_size()
        .unwrap() as usize;
        let bytes = g
            .tensor_bytes(&s.name)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let mut bytes = bytes;
        bytes.resize(size, 0);
        w.write_tensor(&bytes).unwrap();
    }
    w.finish().unwrap();
}

fn set(md: &mut [(String, Value)], key: &str, value: Value) {
    md.iter_mut().find(|(k, _)| k == key).unwrap().1 = value;
}

fn load(path: &Path) -> Result<Llama, LoadError> {
    Llama::load(path, &ModelOptions::default())
}

#[test]
fn not_a_gguf_file() {
    let err = parse(b"PK\x03\x04 this is a zip file").unwrap_err();
    assert!(matches!(err, GgufError::NotGguf { .. }), "{err}");
    assert!(err.to_string().contains("not a GGUF file"));
    // Big-endian GGUF (magic read backwards) is foreign too.
    assert!(matches!(
        parse(b"FUGG\x00\x00\x00\x03").unwrap_err(),
        GgufError::NotGguf { .. }
    ));
    assert!(matches!(
        parse(b"").unwrap_err(),
        GgufError::Truncated { .. }
    ));
}

#[test]
fn unsupported_version() {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&[0; 16]);
    assert!(matches!(
        parse(&bytes).unwrap_err(),
        GgufError::UnsupportedVersion(1)
    ));
}

#[test]
fn missing_model_file_is_not_found() {
    let err = load(Path::new("/nonexistent/model.gguf")).unwrap_err();
    assert!(matches!(err, LoadError::NotFound(_)), "{err}");
}

#[test]
fn truncation_at_every_header_offset_and_many_data_offsets() {
    let dir = common::temp_dir("gguf-trunc");
    let path = tiny_model(&dir);
    let bytes = std::fs::read(&path).unwrap();
    let header = parse(&bytes).unwrap();
    let data_start = header.data_start as usize;
    let mut checked = 0;
    let data_cuts = (0..200).map(|i| data_start + (bytes.len() - data_start) * i / 200);
    for cut in (0..data_start).chain(data_cuts) {
        match parse(&bytes[..cut]) {
            Err(GgufError::Truncated { .. }) => checked += 1,
            other => panic!(
                "cut at {cut} of {}: expected Truncated, got {other:?}",
                bytes.len()
            ),
        }
    }
    // The same through the loader, from files on disk.
    for cut in [3, 20, data_start / 2, data_start + 10, bytes.len() - 1] {
        let cut_path = dir.join(format!("cut-{cut}.gguf"));
        std::fs::write(&cut_path, &bytes[..cut]).unwrap();
        let err = load(&cut_path).unwrap_err();
        assert!(
            matches!(
                err,
                LoadError::Gguf {
                    source: GgufError::Truncated { .. },
                    ..
                }
            ),
            "cut {cut}: {err}"
        );
        assert!(err.to_string().contains("truncated"), "{err}");
    }
    eprintln!("{checked} truncated copies rejected (header of {data_start} bytes)");
    assert!(checked > 1000);
}

#[test]
fn real_model_truncated_everywhere_in_the_header() {
    let path = common::model("stories260K.gguf");
    let bytes = std::fs::read(path).unwrap();
    let start = parse(&bytes).unwrap().data_start as usize;
    for cut in (0..start).step_by(7).chain([start, bytes.len() - 1]) {
        assert!(
            matches!(parse(&bytes[..cut]), Err(GgufError::Truncated { .. })),
            "cut {cut}"
        );
    }
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Lcg(99);
    for i in 0..3000 {
        let len = (rng.next() % 400) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if i % 2 == 0 && len >= 24 {
            // A valid magic and version, so the random part reaches the counts and lengths.
            bytes[..4].copy_from_slice(b"GGUF");
            bytes[4..8].copy_from_slice(&3u32.to_le_bytes());
            if i % 4 == 0 {
                bytes[8..24].fill(0);
                bytes[16] = (rng.next() % 4) as u8;
            }
        }
        let _ = parse(&bytes);
    }
}

#[test]
fn byte_flips_in_a_real_header_never_panic() {
    let dir = common::temp_dir("gguf-flip");
    let path = tiny_model(&dir);
    let bytes = std::fs::read(&path).unwrap();
    let start = parse(&bytes).unwrap().data_start as usize;
    let mut rng = Lcg(5);
    let flipped = dir.join("flipped.gguf");
    let mut loaded = 0;
    for _ in 0..400 {
        let mut b = bytes.clone();
        for _ in 0..3 {
            let at = (rng.next() as usize) % start;
            b[at] ^= 1 << (rng.next() % 8);
        }
        if parse(&b).is_ok() {
            std::fs::write(&flipped, &b).unwrap();
            // Loading may fail (bad metadata) but must not panic; if it loads it must run.
            if let Ok(mut llama) = load(&flipped) {
                let _ = llama.model.forward_last(&[1, 2, 3]);
                loaded += 1;
            }
        }
    }
    eprintln!("{loaded} of 400 flipped files still loaded and ran");
}

#[test]
fn wrong_architecture() {
    let dir = common::temp_dir("gguf-arch");
    let src = tiny_model(&dir);
    let dst = dir.join("gpt2.gguf");
    rewrite(&src, &dst, |md, _| {
        set(md, "general.architecture", Value::String("gpt2".into()))
    });
    let err = load(&dst).unwrap_err();
    assert!(
        matches!(err, LoadError::Model { source: ModelError::Config(ConfigError::WrongArchitecture(ref a)), .. } if a == "gpt2"),
        "{err}"
    );
}

#[test]
fn unsupported_tensor_type_is_named() {
    let dir = common::temp_dir("gguf-type");
    let src = tiny_model(&dir);
    let mut bytes = std::fs::read(&src).unwrap();
    // Patch the type field of blk.0.attn_q.weight (name, n_dims, 2 dims, then the type) to IQ2_XXS.
    let name = b"blk.0.attn_q.weight";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len() + 4 + 16;
    assert_eq!(
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()),
        TensorType::Q8_0.0
    );
    bytes[at..at + 4].copy_from_slice(&16u32.to_le_bytes());
    let dst = dir.join("iq2.gguf");
    std::fs::write(&dst, bytes).unwrap();
    let err = load(&dst).unwrap_err();
    assert!(
        matches!(&err, LoadError::Model { source: ModelError::Gguf(GgufError::UnsupportedTensorType { name, type_name }), .. } if name == "blk.0.attn_q.weight" && type_name == "IQ2_XXS"),
        "{err}"
    );
    assert!(err.to_string().contains("IQ2_XXS"));
}

#[test]
fn missing_tensor() {
    let dir = common::temp_dir("gguf-missing");
    let src = tiny_model(&dir);
    let dst = dir.join("missing.gguf");
    rewrite(&src, &dst, |_, specs| {
        specs.retain(|s| s.name != "blk.1.ffn_up.weight")
    });
    let err = load(&dst).unwrap_err();
    assert!(
        matches!(&err, LoadError::Model { source: ModelError::Gguf(GgufError::MissingTensor(n)), .. } if n == "blk.1.ffn_up.weight"),
        "{err}"
    );
}

#[test]
fn mis_shaped_tensor() {
    let dir = common::temp_dir("gguf-shape");
    let src = tiny_model(&dir);
    let dst = dir.join("shape.gguf");
    // 4 kv heads instead of 2: attn_k should then be 256 x 256, the file has 128 x 256.
    rewrite(&src, &dst, |md, _| {
        set(md, "llama.attention.head_count_kv", Value::U32(4))
    });
    let err = load(&dst).unwrap_err();
    assert!(
        matches!(&err, LoadError::Model { source: ModelError::TensorShape { name, expected, found }, .. }
            if name == "blk.0.attn_k.weight" && expected == &[256, 256] && found == &[128, 256]),
        "{err}"
    );
}

#[test]
fn missing_and_invalid_hyper_parameters() {
    let dir = common::temp_dir("gguf-hparams");
    let src = tiny_model(&dir);
    let dst = dir.join("hp.gguf");
    rewrite(&src, &dst, |md, _| {
        md.retain(|(k, _)| k != "llama.block_count")
    });
    let err = load(&dst).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Model {
                source: ModelError::Config(ConfigError::Missing(ref key)),
                ..
            } if key == "llama.block_count"
        ),
        "{err}"
    );
    rewrite(&src, &dst, |md, _| {
        set(md, "llama.attention.head_count", Value::U32(3))
    });
    let err = load(&dst).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Model {
                source: ModelError::Config(ConfigError::Invalid { .. }),
                ..
            }
        ),
        "{err}"
    );
    rewrite(&src, &dst, |md, _| {
        set(md, "llama.context_length", Value::String("big".into()))
    });
    let err = load(&dst).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Model {
                source: ModelError::Config(ConfigError::Metadata(GgufError::WrongValueType { .. })),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn vocabulary_with_out_of_range_ids() {
    let dir = common::temp_dir("gguf-vocab");
    let src = tiny_model(&dir);
    let dst = dir.join("vocab.gguf");
    rewrite(&src, &dst, |md, _| {
        set(md, "tokenizer.ggml.eos_token_id", Value::U32(99_999))
    });
    let err = load(&dst).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Tokenizer {
                source: TokenizerError::IdOutOfRange { id: 99_999, .. },
                ..
            }
        ),
        "{err}"
    );
    rewrite(&src, &dst, |md, _| {
        let types = md
            .iter_mut()
            .find(|(k, _)| k == "tokenizer.ggml.token_type")
            .unwrap();
        if let Value::Array(v) = &mut types.1 {
            v.pop();
        }
    });
    let err = Tokenizer::from_gguf(&GgufFile::open(&dst).unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            TokenizerError::LengthMismatch {
                len: 511,
                vocab: 512,
                ..
            }
        ),
        "{err}"
    );
    rewrite(&src, &dst, |md, _| {
        set(md, "tokenizer.ggml.model", Value::String("rwkv".into()))
    });
    let err = load(&dst).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Tokenizer {
                source: TokenizerError::UnsupportedModel(_),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn tokenizer_larger_than_the_model_is_rejected() {
    let vocab = common::model("ggml-vocab-llama-spm.gguf");
    let dir = common::temp_dir("gguf-vocab-size");
    let src = tiny_model(&dir);
    let dst = dir.join("bigvocab.gguf");
    let big = GgufFile::open(vocab).unwrap();
    rewrite(&src, &dst, |md, _| {
        md.retain(|(k, _)| !k.starts_with("tokenizer."));
        md.extend(
            big.metadata()
                .iter()
                .filter(|(k, _)| k.starts_with("tokenizer."))
                .cloned(),
        );
    });
    let err = load(&dst).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::VocabMismatch {
                tokenizer: 32000,
                model: 512,
                ..
            }
        ),
        "{err}"
    );
    // The model alone loads: the mismatch is caught where tokenizer and model meet.
    assert!(LlamaModel::load(&GgufFile::open(&dst).unwrap(), &ModelOptions::default()).is_ok());
}
