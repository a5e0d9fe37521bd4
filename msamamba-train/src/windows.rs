//! Windows of L positions cut from an alignment, and the items a batcher turns into batches.

use std::sync::Arc;

use burn::data::dataset::Dataset;

use crate::alignment::Alignment;
use msamamba_model::tokens::GAP;

/// One MSA window before batching: token rows, target first, and the seed of its randomness
/// (strand, masking, row sampling), so a batch is the same however it is scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsaItem {
    /// Token rows, target first, all the same length.
    pub rows: Vec<Vec<u8>>,
    /// Seed of everything random about this item.
    pub seed: u64,
}

/// Where a window starts: chromosome index and offset into its covered span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowStart {
    /// Index into `Alignment::chromosomes`.
    pub chrom: usize,
    /// Offset from the start of that chromosome's span.
    pub offset: usize,
}

/// Tiles every chromosome with windows of `len` every `stride` positions, keeping windows whose
/// target row has at least `min_bases` bases (a window of gaps teaches nothing).
pub fn tile(alignment: &Alignment, len: usize, stride: usize, min_bases: usize) -> Vec<WindowStart> {
    let mut starts = Vec::new();
    for (chrom, window) in alignment.chromosomes.iter().enumerate() {
        let target = &window.rows[0];
        let mut offset = 0;
        while offset + len <= target.len() {
            if target[offset..offset + len].iter().filter(|&&t| t != GAP).count() >= min_bases {
                starts.push(WindowStart { chrom, offset });
            }
            offset += stride.max(1);
        }
    }
    starts
}

/// Splits windows into (train, validation): the last `fraction` of each chromosome's span is
/// held out, with a gap of one window so no position is in both.
pub fn hold_out(
    starts: &[WindowStart],
    alignment: &Alignment,
    len: usize,
    fraction: f64,
) -> (Vec<WindowStart>, Vec<WindowStart>) {
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for &start in starts {
        let span = alignment.chromosomes[start.chrom].rows[0].len();
        let boundary = ((1.0 - fraction) * span as f64) as usize;
        if start.offset >= boundary {
            valid.push(start);
        } else if start.offset + len <= boundary {
            train.push(start);
        }
    }
    (train, valid)
}

/// splitmix64: decorrelates the seeds of neighbouring items.
pub fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A fixed list of windows as a burn dataset (validation, evaluation).
#[derive(Debug, Clone)]
pub struct WindowDataset {
    alignment: Arc<Alignment>,
    starts: Vec<WindowStart>,
    len: usize,
    seed: u64,
}

impl WindowDataset {
    /// Windows of `len` at `starts`; item `i` gets seed `mix(seed, i)`.
    pub fn new(alignment: Arc<Alignment>, starts: Vec<WindowStart>, len: usize, seed: u64) -> Self {
        Self {
            alignment,
            starts,
            len,
            seed,
        }
    }

    /// The item of window `start` with `seed`.
    pub fn item(&self, start: WindowStart, seed: u64) -> MsaItem {
        let window = &self.alignment.chromosomes[start.chrom];
        let rows = window
            .rows
            .iter()
            .map(|r| r[start.offset..start.offset + self.len].to_vec())
            .collect();
        MsaItem { rows, seed }
    }

    /// The window starts, in order.
    pub fn starts(&self) -> &[WindowStart] {
        &self.starts
    }
}

impl Dataset<MsaItem> for WindowDataset {
    fn get(&self, index: usize) -> Option<MsaItem> {
        let start = *self.starts.get(index)?;
        Some(self.item(start, mix(self.seed, index as u64)))
    }

    fn len(&self) -> usize {
        self.starts.len()
    }
}
