//! The alphabet of GPN-MSA: `- A C G T` plus the mask token.

/// Gap, N, or any other non-ACGT byte.
pub const GAP: u8 = 0;
/// Adenine.
pub const A: u8 = 1;
/// Cytosine.
pub const C: u8 = 2;
/// Guanine.
pub const G: u8 = 3;
/// Thymine.
pub const T: u8 = 4;
/// The MLM mask token.
pub const MASK: u8 = 5;
/// Number of token ids.
pub const VOCAB_SIZE: usize = 6;
/// Target value of positions that carry no MLM loss.
pub const IGNORE_TARGET: i64 = -100;

/// Token of a sequence byte; lower case (soft-masked) reads as upper case.
pub fn token_of(byte: u8) -> u8 {
    match byte.to_ascii_uppercase() {
        b'A' => A,
        b'C' => C,
        b'G' => G,
        b'T' => T,
        _ => GAP,
    }
}

/// Character of a token: `-ACGT`, `#` for the mask.
pub fn char_of(token: u8) -> char {
    match token {
        A => 'A',
        C => 'C',
        G => 'G',
        T => 'T',
        MASK => '#',
        _ => '-',
    }
}

/// Watson-Crick complement; gap and mask stay.
pub fn complement(token: u8) -> u8 {
    match token {
        A => T,
        C => G,
        G => C,
        T => A,
        other => other,
    }
}

/// Reverse complement in place: the same window read on the other strand.
pub fn reverse_complement(tokens: &mut [u8]) {
    tokens.reverse();
    tokens.iter_mut().for_each(|t| *t = complement(*t));
}
