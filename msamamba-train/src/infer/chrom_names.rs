//! A VCF's chromosome names matched to an alignment's: UCSC writes `chr10`, Ensembl and GPN-MSA's
//! stores `10`, and a mismatch would otherwise skip every variant.

use std::collections::HashMap;

/// The alignment's chromosome for each VCF name seen, decided once per name.
#[derive(Debug)]
pub struct ChromNames {
    /// The alignment's chromosomes.
    known: Vec<String>,
    /// Each VCF name seen, and the alignment's name for it (`None`: not in the alignment).
    seen: HashMap<String, Option<String>>,
}

/// How a VCF chromosome name was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match<'a> {
    /// As written.
    Same(&'a str),
    /// With the `chr` prefix added or removed.
    Renamed(&'a str),
    /// Not in the alignment.
    Missing,
}

impl ChromNames {
    /// Matches names against `known`, the alignment's chromosomes.
    pub fn new(known: Vec<String>) -> Self {
        Self {
            known,
            seen: HashMap::new(),
        }
    }

    /// The alignment's chromosomes.
    pub fn known(&self) -> &[String] {
        &self.known
    }

    /// The alignment's name for the VCF's `chrom`: itself, else with `chr` removed or added.
    pub fn find(&mut self, chrom: &str) -> Match<'_> {
        if !self.seen.contains_key(chrom) {
            let has = |name: &str| self.known.iter().any(|k| k == name);
            let found = match chrom.strip_prefix("chr") {
                _ if has(chrom) => Some(chrom.to_string()),
                Some(bare) if has(bare) => Some(bare.to_string()),
                None if has(&format!("chr{chrom}")) => Some(format!("chr{chrom}")),
                _ => None,
            };
            self.seen.insert(chrom.to_string(), found);
        }
        match self.seen.get(chrom).and_then(Option::as_deref) {
            Some(name) if name == chrom => Match::Same(name),
            Some(name) => Match::Renamed(name),
            None => Match::Missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chr_prefixes_match_both_ways_and_exact_names_win() {
        let mut names = ChromNames::new(vec!["10".into(), "chrX".into(), "chr2".into(), "2".into()]);
        assert_eq!(names.find("chr10"), Match::Renamed("10"));
        assert_eq!(names.find("X"), Match::Renamed("chrX"));
        assert_eq!(names.find("10"), Match::Same("10"));
        // Both spellings exist: each VCF name keeps its own.
        assert_eq!(names.find("chr2"), Match::Same("chr2"));
        assert_eq!(names.find("2"), Match::Same("2"));
        assert_eq!(names.find("chrY"), Match::Missing);
        assert_eq!(names.find("chr"), Match::Missing);
    }
}
