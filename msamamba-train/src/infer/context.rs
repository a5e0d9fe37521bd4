//! Which bases around a variant the model sees on each strand. A causal (left-to-right) model
//! only uses what lies before the masked site, so its windows end at the site: the forward
//! strand sees the L-1 bases before it, the reverse strand (read right to left) the L-1 bases
//! after it, and no position is computed only to be thrown away. A bidirectional model sees
//! both sides at once, so both strands use the window centred on the site.

use std::fmt;

use msamamba_model::MsaMambaConfig;

use crate::data::maf::Strand;
use crate::data::region::Region;

/// How the window is cut around the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// The site is the last position of each strand's window (unidirectional models).
    Causal,
    /// The site is at the centre, position L/2 on the forward strand (bidirectional models).
    Centred,
}

/// One strand's window: the stretch of the forward strand it covers, and the strand it is read
/// on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The covered stretch, forward-strand coordinates.
    pub region: Region,
    /// The strand it is read on (reverse: reverse-complemented).
    pub strand: Strand,
}

impl Context {
    /// The context `model` can use: causal unless it scans both ways.
    pub fn of(model: &MsaMambaConfig) -> Self {
        if model.bidirectional {
            Self::Centred
        } else {
            Self::Causal
        }
    }

    /// The site's index in the forward and in the reverse window of length `window`, as read.
    pub fn sites(self, window: usize) -> [usize; 2] {
        match self {
            Self::Causal => [window - 1, window - 1],
            // Position L/2 read backwards is position L - 1 - L/2.
            Self::Centred => [window / 2, window - 1 - window / 2],
        }
    }

    /// The forward and reverse windows of length `window` for the 0-based `position` on
    /// `chrom`; `None` when a window would start before the chromosome does.
    pub fn cuts(self, chrom: &str, position: u64, window: usize) -> Option<[Cut; 2]> {
        let len = window as u64;
        let cut = |start: u64, strand| Cut {
            region: Region {
                chrom: chrom.to_string(),
                start,
                end: start + len,
            },
            strand,
        };
        match self {
            Self::Causal => Some([
                cut(position.checked_sub(len - 1)?, Strand::Forward),
                // Reverse-complemented, the window's first base (the site) comes last.
                cut(position, Strand::Reverse),
            ]),
            Self::Centred => {
                let start = position.checked_sub(len / 2)?;
                Some([cut(start, Strand::Forward), cut(start, Strand::Reverse)])
            }
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Causal => "causal: each strand's window ends at the site",
            Self::Centred => "bidirectional: the window is centred on the site",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_causal_cut_ends_at_the_site_on_both_strands() {
        let [forward, reverse] = Context::Causal.cuts("chr1", 100, 8).unwrap();
        // Forward: the 7 bases before the site, then the site.
        assert_eq!((forward.region.start, forward.region.end), (93, 101));
        // Reverse: the site and the 7 bases after it, reversed, so the site is last.
        assert_eq!((reverse.region.start, reverse.region.end), (100, 108));
        assert_eq!(reverse.strand, Strand::Reverse);
        assert_eq!(Context::Causal.sites(8), [7, 7]);
        assert!(Context::Causal.cuts("chr1", 6, 8).is_none());
        assert!(Context::Causal.cuts("chr1", 7, 8).is_some());
    }

    #[test]
    fn a_centred_cut_holds_the_site_at_the_mirrored_centre() {
        let [forward, reverse] = Context::Centred.cuts("chr1", 100, 7).unwrap();
        assert_eq!(forward.region, reverse.region);
        assert_eq!(forward.region.start, 97);
        assert_eq!(Context::Centred.sites(7), [3, 3]);
        let [forward, _] = Context::Centred.cuts("chr1", 100, 8).unwrap();
        assert_eq!(forward.region.start, 96);
        assert_eq!(Context::Centred.sites(8), [4, 3]);
    }

    #[test]
    fn the_model_config_picks_the_context() {
        let model = MsaMambaConfig::new();
        assert_eq!(Context::of(&model), Context::Causal);
        assert_eq!(Context::of(&model.with_bidirectional(true)), Context::Centred);
    }
}
