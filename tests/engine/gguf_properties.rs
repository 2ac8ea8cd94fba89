//! Property tests on GGUF input (issue 30): headers built field by field with counts, lengths,
//! dimensions and offsets that lie, and real model files with hostile hyper-parameters and
//! tensors. The property: a typed result, never a panic, and the parser never allocates more
//! than a stated bound. CI runs the default number of cases; `PROPTEST_CASES=1000000` runs the
//! long campaign (docs/RELIABILITY.md).

use std::path::Path;

use proptest::prelude::*;

use bevy_llama_dialogue::engine::gguf::{
    GgufFile, GgufWriter, TensorInfo, TensorSpec, TensorType, Value, parse,
};
use bevy_llama_dialogue::engine::llama::Llama;
use bevy_llama_dialogue::engine::model::ModelOptions;
use bevy_llama_dialogue::engine::sampler::SamplingParams;

use crate::common;
use crate::common::alloc::{cases, largest_allocation};

/// The parser's stated bound: whatever the file claims, one allocation holds at most two
/// parsed values (`Value`) per byte of the file, plus 64 KiB.
fn allocation_bound(file_len: usize) -> usize {
    2 * std::mem::size_of::<Value>() * file_len + (64 << 10)
}

/// A count or a length as the file states it: honest (`None`) or a lie.
fn claim() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        4 => Just(None),
        1 => prop::sample::select(vec![1 << 28, u64::MAX, u64::from(u32::MAX) + 1, 1 << 40, 1 << 62])
            .prop_map(Some),
        1 => any::<u64>().prop_map(Some),
        1 => (0u64..64).prop_map(Some),
    ]
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A GGUF string: its stated length, then bytes (UTF-8 or not).
fn string() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        "[a-z._]{0,12}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..12),
    ];
    (claim(), text).prop_map(|(claimed, bytes)| {
        let mut out = Vec::new();
        put_u64(&mut out, claimed.unwrap_or(bytes.len() as u64));
        out.extend(bytes);
        out
    })
}

/// The encoding of one value of type `ty` (the type itself is written by the caller).
fn value_of(ty: u32, depth: u32) -> BoxedStrategy<Vec<u8>> {
    match ty {
        0 | 1 | 7 => prop::collection::vec(any::<u8>(), 1).boxed(),
        2 | 3 => prop::collection::vec(any::<u8>(), 2).boxed(),
        4..=6 => prop::collection::vec(any::<u8>(), 4).boxed(),
        10..=12 => prop::collection::vec(any::<u8>(), 8).boxed(),
        8 => string().boxed(),
        9 if depth > 0 => (value_type(), claim())
            .prop_flat_map(move |(inner, claimed)| {
                prop::collection::vec(value_of(inner, depth - 1), 0..6).prop_map(move |items| {
                    let mut out = Vec::new();
                    put_u32(&mut out, inner);
                    put_u64(&mut out, claimed.unwrap_or(items.len() as u64));
                    out.extend(items.concat());
                    out
                })
            })
            .boxed(),
        // An array too deep for this generator: claim a count of nothing.
        9 => Just([13u32.to_le_bytes().to_vec(), 0u64.to_le_bytes().to_vec()].concat()).boxed(),
        // Unknown types: a few bytes the parser cannot interpret.
        _ => prop::collection::vec(any::<u8>(), 0..8).boxed(),
    }
}

fn value_type() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..13, 1 => 13u32..40, 1 => any::<u32>()]
}

/// One metadata entry: key, type, value.
fn entry() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        4 => string(),
        1 => Just(b"general.alignment".to_vec()).prop_map(|k| {
            let mut out = Vec::new();
            put_u64(&mut out, k.len() as u64);
            out.extend(k);
            out
        }),
    ];
    (key, value_type()).prop_flat_map(|(key, ty)| {
        value_of(ty, 2).prop_map(move |v| {
            let mut out = key.clone();
            put_u32(&mut out, ty);
            out.extend(v);
            out
        })
    })
}

/// One tensor description: name, dimensions, type, offset.
fn tensor() -> impl Strategy<Value = Vec<u8>> {
    let dim = prop_oneof![
        4 => 1u64..96,
        2 => (1u64..8).prop_map(|b| b * 32),
        1 => any::<u64>(),
        1 => Just(0u64),
    ];
    let offset = prop_oneof![3 => (0u64..64).prop_map(|b| b * 32), 1 => any::<u64>()];
    (
        string(),
        prop_oneof![4 => 1u32..5, 1 => 0u32..9, 1 => any::<u32>()],
        prop::collection::vec(dim, 0..6),
        prop_oneof![4 => prop::sample::select(vec![0u32, 1, 2, 3, 8, 12, 14, 30]), 1 => any::<u32>()],
        offset,
    )
        .prop_map(|(name, n_dims, dims, ty, offset)| {
            let mut out = name;
            put_u32(&mut out, n_dims);
            for d in dims.iter().take(n_dims.min(8) as usize) {
                put_u64(&mut out, *d);
            }
            put_u32(&mut out, ty);
            put_u64(&mut out, offset);
            out
        })
}

/// A whole file: header fields, metadata, tensor descriptions and a data section, each count
/// honest or not, then possibly cut short.
fn gguf_file() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![4 => prop::sample::select(vec![2u32, 3]), 1 => any::<u32>()],
        claim(),
        claim(),
        prop::collection::vec(entry(), 0..8),
        prop::collection::vec(tensor(), 0..6),
        0usize..4096,
        prop_oneof![4 => Just(None), 1 => any::<prop::sample::Index>().prop_map(Some)],
    )
        .prop_map(|(version, n_tensors, n_kv, entries, tensors, data, cut)| {
            let mut out = b"GGUF".to_vec();
            put_u32(&mut out, version);
            put_u64(&mut out, n_tensors.unwrap_or(tensors.len() as u64));
            put_u64(&mut out, n_kv.unwrap_or(entries.len() as u64));
            out.extend(entries.concat());
            out.extend(tensors.concat());
            out.resize(out.len().div_ceil(32) * 32 + data, 0x5a);
            if let Some(cut) = cut {
                out.truncate(cut.index(out.len() + 1));
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2048)))]

    /// Any header, honest or lying: a typed result within the allocation bound; when it parses,
    /// every tensor it describes lies in the file, overlaps no other and is found by name.
    #[test]
    fn a_header_gives_a_result_within_the_allocation_bound(file in gguf_file()) {
        let (parsed, largest) = largest_allocation(|| parse(&file));
        prop_assert!(
            largest <= allocation_bound(file.len()),
            "{largest} bytes allocated at once for a {} byte file", file.len()
        );
        if let Ok(header) = parsed {
            let mut spans = Vec::new();
            for t in &header.tensors {
                prop_assert_eq!(header.tensor(&t.name), Some(t));
                if let Some(size) = t.byte_size() {
                    let start = header.data_start + t.offset;
                    prop_assert!(start + size <= file.len() as u64);
                    if size > 0 {
                        spans.push((start, start + size));
                    }
                }
            }
            spans.sort_unstable();
            for w in spans.windows(2) {
                prop_assert!(w[0].1 <= w[1].0, "overlapping tensors accepted: {spans:?}");
            }
        }
    }
}

/// A header claiming 2^28 strings in 1 KB, a vocabulary-sized array of u8 that claims more than
/// it holds, tensors that share bytes, a block count far beyond the tensors present: each a
/// typed error, found before anything is sized by the claim.
#[test]
fn hostile_counts_are_refused_before_allocating() {
    let mut file = b"GGUF".to_vec();
    put_u32(&mut file, 3);
    put_u64(&mut file, 0);
    put_u64(&mut file, 1);
    put_u64(&mut file, 22);
    file.extend_from_slice(b"tokenizer.ggml.tokens\0");
    put_u32(&mut file, 9);
    put_u32(&mut file, 8);
    put_u64(&mut file, 1 << 28);
    file.resize(1024, b'a');
    let (result, largest) = largest_allocation(|| parse(&file));
    let err = result.unwrap_err();
    assert!(err.to_string().contains("268435456 elements"), "{err}");
    assert!(largest < 64 << 10, "{largest} bytes allocated");

    // Two tensors whose data overlap.
    let specs = [
        TensorSpec {
            name: "a".into(),
            dims: vec![64],
            ty: TensorType::F32,
        },
        TensorSpec {
            name: "b".into(),
            dims: vec![64],
            ty: TensorType::F32,
        },
    ];
    let mut w = GgufWriter::write_header(Vec::new(), &[], &specs).unwrap();
    w.write_tensor(&[0; 256]).unwrap();
    w.write_tensor(&[0; 256]).unwrap();
    let mut bytes = w.finish().unwrap();
    let ok = parse(&bytes).unwrap();
    assert_eq!(ok.tensor("b").map(|t| t.offset), Some(256));
    // Point `b` at offset 128: inside `a`.
    let at = bytes
        .windows(9)
        .position(|w| w == b"\x01\0\0\0\0\0\0\0b")
        .unwrap()
        + 9;
    let offset_at = at + 4 + 8 + 4;
    bytes[offset_at..offset_at + 8].copy_from_slice(&128u64.to_le_bytes());
    let err = parse(&bytes).unwrap_err();
    assert!(err.to_string().contains("`a` and `b` overlap"), "{err}");
}

/// An edit a damaged or crafted model file might carry.
#[derive(Debug, Clone)]
enum Edit {
    /// Set the metadata entry at this index (modulo their number) to a hostile value.
    SetKey(prop::sample::Index, Value),
    /// Set the metadata entry of this key.
    SetNamed(&'static str, Value),
    /// Remove the metadata entry at this index.
    RemoveKey(prop::sample::Index),
    /// Remove the tensor at this index.
    RemoveTensor(prop::sample::Index),
    /// Give the tensor at this index other dimensions (its bytes follow).
    Reshape(prop::sample::Index, Vec<u64>),
    /// Give the tensor at this index another type (its bytes follow).
    Retype(prop::sample::Index, TensorType),
    /// Keep only the first entries of every array in the metadata.
    ShortenArrays(u8),
}

fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            0u32,
            1,
            2,
            3,
            7,
            31,
            64,
            1 << 24,
            (1 << 24) + 1,
            u32::MAX
        ])
        .prop_map(Value::U32),
        prop::sample::select(vec![1u64 << 40, u64::MAX]).prop_map(Value::U64),
        prop::sample::select(vec![-1i32, i32::MIN]).prop_map(Value::I32),
        prop::sample::select(vec![f32::NAN, f32::INFINITY, -1.0, 0.0, 1e-30, 1e30])
            .prop_map(Value::F32),
        Just(Value::String("gpt2".into())),
        Just(Value::String("llama".into())),
        Just(Value::String("qwen3".into())),
        Just(Value::Bool(true)),
        Just(Value::Array(Vec::new())),
        Just(Value::Array(vec![Value::I32(-5), Value::I32(1 << 30)])),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    let index = any::<prop::sample::Index>();
    prop_oneof![
        4 => (index.clone(), hostile_value()).prop_map(|(i, v)| Edit::SetKey(i, v)),
        1 => index.clone().prop_map(Edit::RemoveKey),
        1 => index.clone().prop_map(Edit::RemoveTensor),
        1 => (
            index.clone(),
            prop::collection::vec(prop::sample::select(vec![1u64, 2, 32, 64, 128, 256, 512]), 1..4)
        )
            .prop_map(|(i, d)| Edit::Reshape(i, d)),
        1 => (
            index,
            prop::sample::select(vec![
                TensorType::F32, TensorType::F16, TensorType::Q4_0, TensorType::Q8_0, TensorType(99)
            ])
        )
            .prop_map(|(i, t)| Edit::Retype(i, t)),
        1 => (0u8..4).prop_map(Edit::ShortenArrays),
    ]
}

/// The bytes of `g` after `edits`; `None` when an edit makes a tensor whose size cannot be
/// known (the parser test covers those).
fn rebuilt(g: &GgufFile, edits: &[Edit]) -> Option<Vec<u8>> {
    let mut md = g.metadata().to_vec();
    let mut specs: Vec<TensorSpec> = g.tensors().iter().map(TensorSpec::from).collect();
    for e in edits {
        match e {
            Edit::SetKey(i, v) if !md.is_empty() => {
                let n = i.index(md.len());
                md[n].1 = v.clone();
            }
            Edit::SetNamed(key, v) => {
                for (k, value) in &mut md {
                    if k == key {
                        *value = v.clone();
                    }
                }
            }
            Edit::RemoveKey(i) if !md.is_empty() => {
                md.remove(i.index(md.len()));
            }
            Edit::RemoveTensor(i) if !specs.is_empty() => {
                specs.remove(i.index(specs.len()));
            }
            Edit::Reshape(i, dims) if !specs.is_empty() => {
                let n = i.index(specs.len());
                specs[n].dims = dims.clone();
            }
            Edit::Retype(i, ty) if !specs.is_empty() => {
                let n = i.index(specs.len());
                specs[n].ty = *ty;
            }
            Edit::ShortenArrays(keep) => {
                for (_, v) in &mut md {
                    if let Value::Array(items) = v {
                        items.truncate(usize::from(*keep));
                    }
                }
            }
            _ => {}
        }
    }
    let mut w = GgufWriter::write_header(Vec::new(), &md, &specs).ok()?;
    for s in &specs {
        let info = TensorInfo {
            name: s.name.clone(),
            dims: s.dims.clone(),
            ty: s.ty,
            offset: 0,
        };
        let size = info.byte_size()? as usize;
        let mut bytes = g
            .tensor_bytes(&s.name)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        bytes.resize(size, 0x3c);
        w.write_tensor(&bytes).ok()?;
    }
    w.finish().ok()
}

fn tiny_model(dir: &Path) -> GgufFile {
    use bevy_llama_dialogue::engine::synth::{ModelShape, TestModelSpec, write_test_model};
    let path = dir.join("tiny.gguf");
    let spec = TestModelSpec {
        shape: ModelShape::by_name("tiny").unwrap(),
        quant: TensorType::Q8_0,
        seed: 3,
    };
    write_test_model(&spec, None, &path, &mut |_, _| {}).unwrap();
    GgufFile::open(&path).unwrap()
}

/// A real model file with hostile hyper-parameters, vocabularies and tensors: loading gives a
/// typed error or a model, and a model that loads generates (or fails) without a panic.
#[test]
fn a_damaged_model_file_loads_to_a_result() {
    let dir = common::temp_dir("gguf-properties");
    let original = tiny_model(&dir);
    let path = dir.join("edited.gguf");
    let config = ProptestConfig {
        cases: cases(96),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let outcomes = std::cell::RefCell::new(std::collections::BTreeMap::<String, usize>::new());
    runner
        .run(&prop::collection::vec(edit(), 1..4), |edits| {
            let Some(bytes) = rebuilt(&original, &edits) else {
                return Ok(());
            };
            std::fs::write(&path, &bytes).unwrap();
            let outcome = match Llama::load(&path, &ModelOptions::default()) {
                Err(e) => {
                    let source = std::error::Error::source(&e).map(|s| format!("{s:?}"));
                    let kind: String = source
                        .unwrap_or_else(|| format!("{e:?}"))
                        .chars()
                        .take_while(|c| !matches!(c, '"' | ','))
                        .collect();
                    format!("error: {}", kind.trim_end_matches([' ', '(', '{']))
                }
                Ok(mut llama) => {
                    let params = SamplingParams {
                        max_tokens: 3,
                        ..SamplingParams::greedy()
                    };
                    match llama.complete("Once upon", &params, &mut |_| {
                        std::ops::ControlFlow::Continue(())
                    }) {
                        Ok(_) => "generated".to_owned(),
                        Err(e) => format!("generation error: {e}"),
                    }
                }
            };
            *outcomes.borrow_mut().entry(outcome).or_default() += 1;
            Ok(())
        })
        .unwrap();
    // The edits reached both sides: some files still load, most are refused.
    let outcomes = outcomes.into_inner();
    eprintln!("outcomes: {outcomes:#?}");
    assert!(
        outcomes.keys().any(|k| k.starts_with("error")),
        "{outcomes:?}"
    );
}

/// A block count of 2^24 in a two-block file: refused by name before anything is sized by it
/// (it once reserved room for 16 million blocks, 9.4 GB in one allocation, before finding the
/// third block missing).
#[test]
fn a_block_count_beyond_the_tensors_is_refused() {
    let dir = common::temp_dir("gguf-blocks");
    let original = tiny_model(&dir);
    for count in [1u32 << 24, 3, 1] {
        let edit = Edit::SetNamed("llama.block_count", Value::U32(count));
        let bytes = rebuilt(&original, &[edit]).unwrap();
        let path = dir.join("blocks.gguf");
        std::fs::write(&path, bytes).unwrap();
        let (result, largest) = largest_allocation(|| Llama::load(&path, &ModelOptions::default()));
        assert!(largest < 64 << 20, "{count}: {largest} bytes at once");
        let err = result
            .err()
            .map(|e| std::error::Error::source(&e).map(ToString::to_string));
        let err = err.flatten().unwrap_or_default();
        assert!(
            err.contains(&format!("{count} blocks, but the file holds tensors for 2")),
            "{count}: {err}"
        );
    }
}
