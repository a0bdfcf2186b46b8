//! Object keys as file names and URL path segments (the same encoding as
//! vectord's store client, so both read one directory the same way).

/// The longest encoded key (file name) a directory can hold on common file
/// systems (`NAME_MAX`); longer keys are refused up front.
pub const MAX_ENCODED_KEY_BYTES: usize = 255;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Percent-encodes every byte except `A-Z a-z 0-9 - . _ ~` (uppercase hex).
pub fn encode_key_segment(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for &b in key.as_bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

fn upper_hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Strict inverse of [`encode_key_segment`]; `None` for any other name
/// (temporary files, foreign files).
pub fn decode_key_segment(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = upper_hex_value(*bytes.get(i + 1)?)?;
            let lo = upper_hex_value(*bytes.get(i + 2)?)?;
            let v = (hi << 4) | lo;
            if is_unreserved(v) {
                return None;
            }
            out.push(v);
            i += 3;
        } else if is_unreserved(b) {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// Lenient percent-decoding of what clients send (either hex case, other
/// bytes kept); `None` on a bad escape or invalid UTF-8.
pub fn decode_key_segment_lenient(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Why a key cannot be stored, or None.
pub fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() || key == "." || key == ".." {
        return Some(format!(
            "invalid key {key:?}: keys must be non-empty and not \".\" or \"..\""
        ));
    }
    let n = encode_key_segment(key).len();
    if n > MAX_ENCODED_KEY_BYTES {
        return Some(format!(
            "key too long: {n} bytes percent-encoded, at most {MAX_ENCODED_KEY_BYTES}"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for k in ["a/b c", "é", "%", "../x"] {
            assert_eq!(
                decode_key_segment(&encode_key_segment(k)).as_deref(),
                Some(k)
            );
        }
        assert_eq!(decode_key_segment("%2f"), None);
        assert_eq!(decode_key_segment_lenient("%2f").as_deref(), Some("/"));
    }

    #[test]
    fn long_keys_are_refused() {
        assert!(key_problem(&"a".repeat(255)).is_none());
        assert!(key_problem(&"a".repeat(256)).is_some());
        assert!(key_problem(&"é".repeat(43)).is_some());
        assert!(key_problem("..").is_some());
    }
}
