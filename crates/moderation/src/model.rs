//! The learned part: features of a message and the logistic-regression model
//! over them, with its compact file format.
//!
//! Features, hashed into `2^BITS` buckets (FNV-1a):
//! - character 1–4-grams of the folded text (spaces collapsed, runs of one
//!   character cut at two, so `ㅋㅋㅋㅋㅋ` and `ㅋㅋ` are the same; allow-listed
//!   words left out, ASCII letters all `a`), weighted `1/√n`;
//! - 2–3-grams of the Hangul stream's jamo (so `씨빨`/`시발`/`십알` share
//!   features), weighted the same way;
//! - each lexicon hit: its entry and its (category, severity), weight 1.
//!
//! File (`data/weights.bin`, little endian): `QTMW`, version 1, `BITS`, two zero
//! bytes; bias, scale, thresholds `flag lex hard strict_flag hit_flag
//! mild` as f32; then
//! `2^BITS` weights as i16 (weight = i16 × scale).

use crate::fold::Folded;
use crate::lexicon::{Hit, Lexicon};
use crate::symbols::Sym;
use crate::Thresholds;

/// log2 of the number of buckets.
pub const BITS: u32 = 18;
const MASK: u32 = (1 << BITS) - 1;
const CHAR_N: usize = 4;
const JAMO_N: usize = 3;

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

fn fnv(h: u32, x: u32) -> u32 {
    let mut h = h;
    for b in x.to_le_bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Reusable buffers for [`features`].
#[derive(Debug, Default)]
pub struct FeatureScratch {
    chars: Vec<char>,
}

/// The features of one message, as `(bucket, value)` (buckets may repeat).
/// Characters inside `allowed` (char ranges of allow-list words) are left out
/// (`시발점` tells the model nothing about `시발`), and every ASCII letter is one
/// class `a`: the data are Korean, so the model must not learn English
/// spellings from a handful of lines (the English lexicon covers English).
pub fn features(
    folded: &[Folded],
    hangul: &[Sym],
    hits: &[Hit],
    allowed: &[std::ops::Range<u32>],
    lex: &Lexicon,
    scratch: &mut FeatureScratch,
    out: &mut Vec<(u32, f32)>,
) {
    out.clear();
    let chars = &mut scratch.chars;
    chars.clear();
    chars.push(' ');
    let is_allowed = |origin: u32| allowed.iter().any(|r| r.contains(&origin));
    for f in folded {
        let c = if is_allowed(f.origin) {
            ' '
        } else if f.ch.is_ascii_alphabetic() {
            'a'
        } else {
            f.ch
        };
        let n = chars.len();
        if c == ' ' && chars[n - 1] == ' ' {
            continue;
        }
        if n >= 2 && chars[n - 1] == c && chars[n - 2] == c {
            continue;
        }
        chars.push(c);
    }
    if chars.last() != Some(&' ') {
        chars.push(' ');
    }
    let start = out.len();
    for i in 0..chars.len() {
        let mut h = fnv(FNV_OFFSET, 0xC4A2);
        for n in 1..=CHAR_N {
            if i + n > chars.len() {
                break;
            }
            h = fnv(h, chars[i + n - 1] as u32);
            if n == 1 && chars[i] == ' ' {
                continue;
            }
            out.push((fnv(h, n as u32) & MASK, 0.0));
        }
    }
    for i in 0..hangul.len() {
        let mut h = fnv(FNV_OFFSET, 0x7A30);
        for n in 1..=JAMO_N {
            if i + n > hangul.len() || is_allowed(hangul[i + n - 1].origin) {
                break;
            }
            h = fnv(h, hangul[i + n - 1].ch as u32);
            if n >= 2 {
                out.push((fnv(h, n as u32) & MASK, 0.0));
            }
        }
    }
    let v = 1.0 / ((out.len() - start).max(1) as f32).sqrt();
    for f in &mut out[start..] {
        f.1 = v;
    }
    for hit in hits {
        let e = lex.entries[hit.entry as usize];
        let cat = e.category.map_or(99, |c| c as u32);
        out.push((fnv(fnv(FNV_OFFSET, 0x1E71), hit.entry) & MASK, 1.0));
        out.push((
            fnv(fnv(fnv(FNV_OFFSET, 0x1E72), cat), e.severity as u32) & MASK,
            1.0,
        ));
    }
}

/// A logistic-regression model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Intercept.
    pub bias: f32,
    /// One weight per bucket (`2^BITS`, or empty for an untrained model).
    pub weights: Vec<f32>,
    /// The thresholds chosen with it.
    pub thresholds: Thresholds,
}

/// Why a weights file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub &'static str);

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "weights file: {}", self.0)
    }
}

impl std::error::Error for FormatError {}

const HEADER: usize = 8 + 8 * 4;

impl Model {
    /// The probability that `features` are abusive.
    pub fn score(&self, features: &[(u32, f32)]) -> f32 {
        let mut z = self.bias;
        if !self.weights.is_empty() {
            for &(i, v) in features {
                z += self.weights[i as usize] * v;
            }
        }
        sigmoid(z)
    }

    /// The file form (weights quantized to i16).
    pub fn encode(&self) -> Vec<u8> {
        let n = if self.weights.is_empty() {
            0
        } else {
            1usize << BITS
        };
        let max = self.weights.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        let scale = if max > 0.0 { max / 32767.0 } else { 1.0 };
        let mut out = Vec::with_capacity(HEADER + 2 * n);
        out.extend_from_slice(b"QTMW");
        out.push(1);
        out.push(if n == 0 { 0 } else { BITS as u8 });
        out.extend_from_slice(&[0, 0]);
        let t = self.thresholds;
        for x in [
            self.bias,
            scale,
            t.flag,
            t.lex,
            t.hard,
            t.strict_flag,
            t.hit_flag,
            t.mild,
        ] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for w in &self.weights {
            out.extend_from_slice(&((w / scale).round() as i16).to_le_bytes());
        }
        out
    }

    /// Reads the file form.
    pub fn decode(bytes: &[u8]) -> Result<Model, FormatError> {
        if bytes.len() < HEADER || &bytes[..4] != b"QTMW" || bytes[4] != 1 {
            return Err(FormatError("not a version 1 QTMW file"));
        }
        let bits = bytes[5] as u32;
        let n = match bits {
            0 => 0,
            BITS => 1usize << BITS,
            _ => return Err(FormatError("bucket count differs from this build")),
        };
        if bytes.len() != HEADER + 2 * n {
            return Err(FormatError("wrong length"));
        }
        let f = |i: usize| {
            let at = 8 + 4 * i;
            f32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let scale = f(1);
        let weights = bytes[HEADER..]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 * scale)
            .collect();
        Ok(Model {
            bias: f(0),
            weights,
            thresholds: Thresholds {
                flag: f(2),
                lex: f(3),
                hard: f(4),
                strict_flag: f(5),
                hit_flag: f(6),
                mild: f(7),
            },
        })
    }
}

/// The logistic function.
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_round_trip() {
        let mut weights = vec![0.0; 1 << BITS];
        weights[7] = 1.5;
        weights[9] = -0.25;
        let m = Model {
            bias: -0.5,
            weights,
            thresholds: Thresholds::default(),
        };
        let d = Model::decode(&m.encode()).unwrap();
        assert_eq!(d.bias, m.bias);
        assert_eq!(d.thresholds, m.thresholds);
        assert!((d.weights[7] - 1.5).abs() < 1e-3 && (d.weights[9] + 0.25).abs() < 1e-3);
        assert!(Model::decode(b"nope").is_err());
    }
}
