//! The few canonical CBOR items a p2panda Node-API header and a `Vec<u8>` body are made of.
//!
//! p2panda decodes headers with strict canonical rules (shortest heads, definite lengths), so a
//! header can be rebuilt byte for byte from its fields. This module writes exactly those items
//! and reads them back strictly; anything else is `None`, and the caller falls back to sending
//! the bytes as they are.

use crate::bytes::Reader;

const UINT: u8 = 0;
const BYTES: u8 = 2;
const ARRAY: u8 = 4;
const FALSE: u8 = 0xf4;
const TRUE: u8 = 0xf5;

/// Appends a head (major type and argument) in its shortest form.
pub(crate) fn put_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let major = major << 5;
    if arg < 24 {
        out.push(major | arg as u8);
    } else if arg <= u64::from(u8::MAX) {
        out.extend_from_slice(&[major | 24, arg as u8]);
    } else if arg <= u64::from(u16::MAX) {
        out.push(major | 25);
        out.extend_from_slice(&(arg as u16).to_be_bytes());
    } else if arg <= u64::from(u32::MAX) {
        out.push(major | 26);
        out.extend_from_slice(&(arg as u32).to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

pub(crate) fn put_uint(out: &mut Vec<u8>, value: u64) {
    put_head(out, UINT, value);
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_head(out, BYTES, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) fn put_array_head(out: &mut Vec<u8>, len: usize) {
    put_head(out, ARRAY, len as u64);
}

pub(crate) fn put_bool(out: &mut Vec<u8>, value: bool) {
    out.push(if value { TRUE } else { FALSE });
}

/// Reads a head; only definite, shortest-form heads are accepted.
fn head(r: &mut Reader) -> Option<(u8, u64)> {
    let first = r.u8()?;
    let (major, info) = (first >> 5, first & 0x1f);
    let arg = match info {
        0..=23 => u64::from(info),
        24 => Some(u64::from(r.u8()?)).filter(|v| *v >= 24)?,
        25 => Some(u64::from(u16::from_be_bytes(r.array()?))).filter(|v| *v > 0xff)?,
        26 => Some(u64::from(u32::from_be_bytes(r.array()?))).filter(|v| *v > 0xffff)?,
        27 => Some(u64::from_be_bytes(r.array()?)).filter(|v| *v > 0xffff_ffff)?,
        _ => return None,
    };
    Some((major, arg))
}

pub(crate) fn uint(r: &mut Reader) -> Option<u64> {
    match head(r)? {
        (UINT, v) => Some(v),
        _ => None,
    }
}

pub(crate) fn array_head(r: &mut Reader) -> Option<u64> {
    match head(r)? {
        (ARRAY, n) => Some(n),
        _ => None,
    }
}

pub(crate) fn fixed_bytes<const N: usize>(r: &mut Reader) -> Option<[u8; N]> {
    match head(r)? {
        (BYTES, n) if n == N as u64 => r.array(),
        _ => None,
    }
}

pub(crate) fn bool(r: &mut Reader) -> Option<bool> {
    match r.u8()? {
        FALSE => Some(false),
        TRUE => Some(true),
        _ => None,
    }
}

/// The raw bytes of a body that is a canonical CBOR array of integers 0..=255, which is how
/// serde writes the `Vec<u8>` payloads LoRes apps publish (about twice the size of the bytes).
pub(crate) fn int_array_body(body: &[u8]) -> Option<Vec<u8>> {
    let mut r = Reader::new(body);
    let len = array_head(&mut r)?;
    // Every element takes at least one byte, so a longer claimed length cannot be real.
    if len > body.len() as u64 {
        return None;
    }
    let mut out = Vec::with_capacity(len as usize);
    for _ in 0..len {
        out.push(u8::try_from(uint(&mut r)?).ok()?);
    }
    r.is_empty().then_some(out)
}

/// The canonical CBOR array-of-integers encoding of `bytes`; the inverse of `int_array_body`.
pub(crate) fn encode_int_array(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 2 + 3);
    put_array_head(&mut out, bytes.len());
    for &b in bytes {
        put_uint(&mut out, u64::from(b));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn heads_are_shortest_form() {
        for (value, len) in [
            (0u64, 1),
            (23, 1),
            (24, 2),
            (255, 2),
            (256, 3),
            (65_536, 5),
            (1 << 32, 9),
        ] {
            let mut out = Vec::new();
            put_uint(&mut out, value);
            assert_eq!(out.len(), len, "value {value}");
            assert_eq!(uint(&mut Reader::new(&out)), Some(value));
        }
    }

    #[test]
    fn non_shortest_heads_are_rejected() {
        assert_eq!(uint(&mut Reader::new(&[0x18, 5])), None);
        assert_eq!(uint(&mut Reader::new(&[0x19, 0, 200])), None);
        assert_eq!(uint(&mut Reader::new(&[0x1f])), None);
    }

    #[test]
    fn serde_vec_u8_encoding_matches() {
        // 0x83 = array(3); 0x01; 0x18 0xc8 = 200; 0x00
        assert_eq!(
            encode_int_array(&[1, 200, 0]),
            vec![0x83, 0x01, 0x18, 0xc8, 0x00]
        );
        assert_eq!(
            int_array_body(&[0x83, 0x01, 0x18, 0xc8, 0x00]),
            Some(vec![1, 200, 0])
        );
        assert_eq!(int_array_body(&[0x80]), Some(vec![]));
        // trailing garbage, a non-byte integer, a non-canonical small int
        assert_eq!(int_array_body(&[0x81, 0x01, 0x00]), None);
        assert_eq!(int_array_body(&[0x81, 0x19, 0x01, 0x00]), None);
        assert_eq!(int_array_body(&[0x81, 0x18, 0x01]), None);
    }

    proptest! {
        #[test]
        fn int_array_round_trips(bytes: Vec<u8>) {
            let body = encode_int_array(&bytes);
            prop_assert_eq!(int_array_body(&body), Some(bytes));
        }

        #[test]
        fn int_array_never_panics(body: Vec<u8>) {
            if let Some(bytes) = int_array_body(&body) {
                prop_assert_eq!(encode_int_array(&bytes), body);
            }
        }
    }
}
