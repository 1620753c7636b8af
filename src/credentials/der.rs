//! A minimal DER reader (ITU-T X.690 §8, §10), enough to tell which kind of
//! key a PKCS#8, PKCS#1 or SEC1 structure holds before the crypto library
//! parses it. It borrows its input and copies nothing, so no key material
//! is left behind in buffers of its own.

/// Universal tag of an INTEGER.
pub(super) const INTEGER: u8 = 0x02;
/// Universal tag of an OCTET STRING.
pub(super) const OCTET_STRING: u8 = 0x04;
/// Universal tag of an OBJECT IDENTIFIER.
pub(super) const OID: u8 = 0x06;
/// Universal tag of a constructed SEQUENCE.
pub(super) const SEQUENCE: u8 = 0x30;
/// Context-specific constructed tag `[0]`.
pub(super) const CONTEXT_0: u8 = 0xA0;

/// Reads DER elements one after another from a slice.
pub(super) struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `input`.
    pub(super) fn new(input: &'a [u8]) -> Self {
        Self { input }
    }

    /// Whether all input has been read.
    pub(super) fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    /// The tag of the next element, if any.
    pub(super) fn peek_tag(&self) -> Option<u8> {
        self.input.first().copied()
    }

    /// Reads the next element, which must have `tag`, and returns its contents.
    pub(super) fn read(&mut self, tag: u8) -> Result<&'a [u8], &'static str> {
        let (found, contents) = self.read_any()?;
        if found != tag {
            return Err(unexpected_tag(tag));
        }
        Ok(contents)
    }

    /// Reads the next element of any tag and returns the tag and contents.
    pub(super) fn read_any(&mut self) -> Result<(u8, &'a [u8]), &'static str> {
        let [tag, first_length, rest @ ..] = self.input else {
            return Err("the data ends inside an element");
        };
        if tag & 0x1F == 0x1F {
            return Err("a multi-byte tag appears where none is expected");
        }
        let (length, rest) = read_length(*first_length, rest)?;
        let Some((contents, rest)) = rest.split_at_checked(length) else {
            return Err("an element is longer than the data that holds it");
        };
        self.input = rest;
        Ok((*tag, contents))
    }
}

/// Decodes a definite length (X.690 §8.1.3): the short form, or the long
/// form with up to four length bytes.
fn read_length(first: u8, rest: &[u8]) -> Result<(usize, &[u8]), &'static str> {
    if first < 0x80 {
        return Ok((usize::from(first), rest));
    }
    let count = usize::from(first & 0x7F);
    if count == 0 || count > 4 {
        return Err("an element has an indefinite or oversized length");
    }
    let Some((bytes, rest)) = rest.split_at_checked(count) else {
        return Err("the data ends inside a length");
    };
    let length = bytes
        .iter()
        .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
    Ok((length, rest))
}

fn unexpected_tag(expected: u8) -> &'static str {
    match expected {
        INTEGER => "an INTEGER was expected",
        OCTET_STRING => "an OCTET STRING was expected",
        OID => "an OBJECT IDENTIFIER was expected",
        SEQUENCE => "a SEQUENCE was expected",
        _ => "an unexpected element was found",
    }
}

/// The number of significant bits of a non-negative DER INTEGER's contents.
pub(super) fn integer_bits(contents: &[u8]) -> usize {
    let significant = contents.iter().position(|byte| *byte != 0);
    let Some(start) = significant else {
        return 0;
    };
    let leading = contents[start].leading_zeros() as usize;
    (contents.len() - start) * 8 - leading
}

/// Formats an OBJECT IDENTIFIER's contents in dotted form (X.690 §8.19), for
/// naming an unknown key type in an error.
pub(super) fn oid_to_string(contents: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for byte in contents {
        value = value.saturating_mul(128) | u64::from(byte & 0x7F);
        if byte & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    let Some(first) = arcs.first().copied() else {
        return "<empty object identifier>".to_owned();
    };
    // The first subidentifier packs the first two arcs (X.690 §8.19.4).
    let (top, second) = match first {
        0..40 => (0, first),
        40..80 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut text = format!("{top}.{second}");
    for arc in &arcs[1..] {
        text.push('.');
        text.push_str(&arc.to_string());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut long = vec![OCTET_STRING, 0x81, 200];
        long.extend(std::iter::repeat_n(7u8, 200));
        long.extend([INTEGER, 1, 5]);
        let mut reader = Reader::new(&long);
        assert_eq!(reader.read(OCTET_STRING).map(<[u8]>::len), Ok(200));
        assert_eq!(reader.read(INTEGER), Ok(&[5u8][..]));
        assert!(reader.is_empty());
    }

    #[test]
    fn refuses_truncated_and_wrong_elements() {
        assert!(Reader::new(&[SEQUENCE, 5, 1]).read(SEQUENCE).is_err());
        assert!(Reader::new(&[SEQUENCE]).read(SEQUENCE).is_err());
        assert!(Reader::new(&[SEQUENCE, 0x80]).read(SEQUENCE).is_err());
        assert!(
            Reader::new(&[SEQUENCE, 0x85, 1, 1, 1, 1, 1])
                .read(SEQUENCE)
                .is_err()
        );
        assert_eq!(
            Reader::new(&[INTEGER, 0]).read(SEQUENCE),
            Err("a SEQUENCE was expected")
        );
        assert!(Reader::new(&[0x1F, 0]).read_any().is_err());
    }

    #[test]
    fn counts_integer_bits() {
        assert_eq!(integer_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(integer_bits(&[0x01]), 1);
        assert_eq!(integer_bits(&[0x00]), 0);
        assert_eq!(integer_bits(&[]), 0);
    }

    #[test]
    fn formats_object_identifiers() {
        assert_eq!(
            oid_to_string(&[0x2B, 0x81, 0x04, 0x00, 0x22]),
            "1.3.132.0.34"
        );
        assert_eq!(
            oid_to_string(&[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]),
            "1.2.840.113549.1.1.1"
        );
        assert_eq!(oid_to_string(&[]), "<empty object identifier>");
    }
}
