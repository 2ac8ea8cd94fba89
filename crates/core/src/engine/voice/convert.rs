//! CTranslate2's Whisper (`WhisperSpec`) onto the tensor names and config that
//! candle-transformers' Whisper loads (the Hugging Face layout): fused self-attention
//! projections split into query, key and value (the key has no bias), the cross-attention's
//! fused key/value split, layer norms' `gamma`/`beta` as `weight`/`bias`.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::whisper::Config;

use super::ct2::{Ct2Model, Ct2Type, Ct2Var};

/// Why a CTranslate2 model cannot be used as Whisper.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// Not a Whisper model.
    #[error("the model is a {0}, not a WhisperSpec")]
    NotWhisper(String),
    /// A variable Whisper needs is missing or has another shape.
    #[error("`{0}` is missing or malformed")]
    Missing(String),
    /// A tensor could not be built.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

fn tensor(v: &Ct2Var) -> Result<Tensor, candle_core::Error> {
    let shape = v.shape.as_slice();
    let t = match v.dtype {
        Ct2Type::F16 => {
            let h: Vec<half::f16> = v
                .data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]))
                .collect();
            Tensor::from_vec(h, shape, &Device::Cpu)?
        }
        Ct2Type::BF16 => {
            let h: Vec<half::bf16> = v
                .data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]))
                .collect();
            Tensor::from_vec(h, shape, &Device::Cpu)?
        }
        Ct2Type::F32 => {
            let f: Vec<f32> = v
                .data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Tensor::from_vec(f, shape, &Device::Cpu)?
        }
        other => {
            return Err(candle_core::Error::Msg(format!(
                "{other:?} weights (quantized CTranslate2 models) are not supported"
            )));
        }
    };
    t.to_dtype(DType::F32)
}

struct Mapper<'a> {
    m: &'a Ct2Model,
    d: usize,
    out: HashMap<String, Tensor>,
}

impl Mapper<'_> {
    fn get(&self, name: &str) -> Result<Tensor, ConvertError> {
        let v = self
            .m
            .vars
            .get(name)
            .ok_or_else(|| ConvertError::Missing(name.into()))?;
        Ok(tensor(v)?)
    }

    fn linear(&mut self, to: &str, from: &str) -> Result<(), ConvertError> {
        let w = self.get(&format!("{from}/weight"))?;
        let b = self.get(&format!("{from}/bias"))?;
        self.out.insert(format!("{to}.weight"), w);
        self.out.insert(format!("{to}.bias"), b);
        Ok(())
    }

    fn norm(&mut self, to: &str, from: &str) -> Result<(), ConvertError> {
        let g = self.get(&format!("{from}/gamma"))?;
        let b = self.get(&format!("{from}/beta"))?;
        self.out.insert(format!("{to}.weight"), g);
        self.out.insert(format!("{to}.bias"), b);
        Ok(())
    }

    /// A fused projection split by output rows into `to` (a `k_proj` gets no bias).
    fn split(&mut self, to: &[String], from: &str) -> Result<(), ConvertError> {
        let w = self.get(&format!("{from}/weight"))?;
        let b = self.get(&format!("{from}/bias"))?;
        if w.dim(0)? != to.len() * self.d {
            return Err(ConvertError::Missing(format!("{from}/weight")));
        }
        for (i, name) in to.iter().enumerate() {
            self.out
                .insert(format!("{name}.weight"), w.narrow(0, i * self.d, self.d)?);
            if !name.ends_with("k_proj") {
                self.out
                    .insert(format!("{name}.bias"), b.narrow(0, i * self.d, self.d)?);
            }
        }
        Ok(())
    }

    fn block(&mut self, to: &str, from: &str, cross: bool) -> Result<(), ConvertError> {
        let qkv = ["q_proj", "k_proj", "v_proj"].map(|p| format!("{to}.self_attn.{p}"));
        self.split(&qkv, &format!("{from}/self_attention/linear_0"))?;
        self.linear(
            &format!("{to}.self_attn.out_proj"),
            &format!("{from}/self_attention/linear_1"),
        )?;
        self.norm(
            &format!("{to}.self_attn_layer_norm"),
            &format!("{from}/self_attention/layer_norm"),
        )?;
        if cross {
            self.linear(
                &format!("{to}.encoder_attn.q_proj"),
                &format!("{from}/attention/linear_0"),
            )?;
            let kv = ["k_proj", "v_proj"].map(|p| format!("{to}.encoder_attn.{p}"));
            self.split(&kv, &format!("{from}/attention/linear_1"))?;
            self.linear(
                &format!("{to}.encoder_attn.out_proj"),
                &format!("{from}/attention/linear_2"),
            )?;
            self.norm(
                &format!("{to}.encoder_attn_layer_norm"),
                &format!("{from}/attention/layer_norm"),
            )?;
        }
        self.linear(&format!("{to}.fc1"), &format!("{from}/ffn/linear_0"))?;
        self.linear(&format!("{to}.fc2"), &format!("{from}/ffn/linear_1"))?;
        self.norm(
            &format!("{to}.final_layer_norm"),
            &format!("{from}/ffn/layer_norm"),
        )
    }
}

/// The tensors (Hugging Face names, F32) and config of a CTranslate2 Whisper model.
pub fn whisper_from_ct2(m: &Ct2Model) -> Result<(HashMap<String, Tensor>, Config), ConvertError> {
    if m.spec != "WhisperSpec" {
        return Err(ConvertError::NotWhisper(m.spec.clone()));
    }
    let shape = |n: &str| {
        m.vars
            .get(n)
            .map(|v| v.shape.clone())
            .filter(|s| s.len() >= 2)
            .ok_or_else(|| ConvertError::Missing(n.into()))
    };
    let heads = |n: &str| {
        m.vars
            .get(n)
            .and_then(Ct2Var::as_usize)
            .ok_or_else(|| ConvertError::Missing(n.into()))
    };
    let layers = |side: &str| {
        (0..)
            .take_while(|i| {
                m.vars
                    .contains_key(&format!("{side}/layer_{i}/ffn/linear_0/weight"))
            })
            .count()
    };
    let embed = shape("decoder/embeddings/weight")?;
    let config = Config {
        num_mel_bins: shape("encoder/conv1/weight")?[1],
        max_source_positions: shape("encoder/position_encodings/encodings")?[0],
        d_model: embed[1],
        encoder_attention_heads: heads("encoder/num_heads")?,
        encoder_layers: layers("encoder"),
        vocab_size: embed[0],
        max_target_positions: shape("decoder/position_encodings/encodings")?[0],
        decoder_attention_heads: heads("decoder/num_heads")?,
        decoder_layers: layers("decoder"),
        suppress_tokens: Vec::new(),
    };
    let mut map = Mapper {
        m,
        d: config.d_model,
        out: HashMap::new(),
    };
    map.linear("model.encoder.conv1", "encoder/conv1")?;
    map.linear("model.encoder.conv2", "encoder/conv2")?;
    map.norm("model.encoder.layer_norm", "encoder/layer_norm")?;
    for i in 0..config.encoder_layers {
        map.block(
            &format!("model.encoder.layers.{i}"),
            &format!("encoder/layer_{i}"),
            false,
        )?;
    }
    let tokens = map.get("decoder/embeddings/weight")?;
    map.out
        .insert("model.decoder.embed_tokens.weight".into(), tokens);
    let positions = map.get("decoder/position_encodings/encodings")?;
    map.out
        .insert("model.decoder.embed_positions.weight".into(), positions);
    map.norm("model.decoder.layer_norm", "decoder/layer_norm")?;
    for i in 0..config.decoder_layers {
        map.block(
            &format!("model.decoder.layers.{i}"),
            &format!("decoder/layer_{i}"),
            true,
        )?;
    }
    Ok((map.out, config))
}
