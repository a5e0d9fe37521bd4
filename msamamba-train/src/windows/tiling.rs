//! Windows of L positions cut from an alignment source, by tiling or over a list of regions, and
//! the items a batcher turns into batches.

use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::data::alignment::Alignment;
use crate::data::bed::BedRegion;
use crate::data::maf::Strand;
use crate::data::region::Region;
use crate::data::source::AlignmentSource;
use crate::windows::epoch_loader::EpochItems;
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

/// Evenly spaced windows on one chromosome: starts `start + k * stride` for `k < count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRun {
    /// Chromosome.
    pub chrom: Arc<str>,
    /// First window's 0-based start.
    pub start: u64,
    /// Number of windows.
    pub count: u64,
    /// Distance between starts.
    pub stride: u64,
}

/// Windows of one length, held as runs: tiling a whole genome costs a few bytes per run, not
/// per window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSet {
    len: u64,
    runs: Vec<WindowRun>,
    /// Windows in `runs[..=i]`, for finding window `k` by binary search.
    ends: Vec<u64>,
}

impl WindowSet {
    /// An empty set of windows of `len` positions.
    pub fn new(len: u64) -> Self {
        Self {
            len,
            runs: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// Appends a run (empty runs are dropped).
    pub fn push(&mut self, run: WindowRun) {
        if run.count > 0 {
            self.ends.push(self.count() + run.count);
            self.runs.push(run);
        }
    }

    /// Number of windows.
    pub fn count(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    /// The runs, in order.
    pub fn runs(&self) -> &[WindowRun] {
        &self.runs
    }

    /// Window `k`, in run order.
    pub fn region(&self, k: u64) -> Option<Region> {
        let i = self.ends.partition_point(|&end| end <= k);
        let run = self.runs.get(i)?;
        let start = run.start + (k - (self.ends[i] - run.count)) * run.stride;
        Some(Region {
            chrom: run.chrom.to_string(),
            start,
            end: start + self.len,
        })
    }

    /// Per chromosome (in order of first appearance), the stretch its windows cover.
    pub fn extents(&self) -> Vec<Region> {
        let mut extents: Vec<Region> = Vec::new();
        for run in &self.runs {
            let end = run.start + (run.count - 1) * run.stride + self.len;
            match extents.iter_mut().find(|e| *e.chrom == *run.chrom) {
                Some(e) => (e.start, e.end) = (e.start.min(run.start), e.end.max(end)),
                None => extents.push(Region {
                    chrom: run.chrom.to_string(),
                    start: run.start,
                    end,
                }),
            }
        }
        extents
    }

    /// At most `max` windows spread evenly over the set (all of them when there are fewer).
    pub fn thin(&self, max: u64) -> Self {
        if self.count() <= max {
            return self.clone();
        }
        let mut out = Self::new(self.len);
        for j in 0..max {
            let k = j * self.count() / max;
            let region = self.region(k).expect("k < count");
            out.push(WindowRun {
                chrom: region.chrom.into(),
                start: region.start,
                count: 1,
                stride: 1,
            });
        }
        out
    }
}

/// Tiles every chromosome of an in-memory alignment with windows of `len` every `stride`
/// positions, keeping windows whose target row has at least `min_bases` bases (a window of gaps
/// teaches nothing).
pub fn tile_alignment(alignment: &Alignment, len: usize, stride: usize, min_bases: usize) -> WindowSet {
    let stride = stride.max(1);
    let mut set = WindowSet::new(len as u64);
    for chrom in &alignment.chromosomes {
        let name: Arc<str> = chrom.chrom.as_str().into();
        let target = &chrom.rows[0];
        let mut run: Option<WindowRun> = None;
        let mut offset = 0;
        while offset + len <= target.len() {
            let keep = target[offset..offset + len].iter().filter(|&&t| t != GAP).count() >= min_bases;
            match (&mut run, keep) {
                (Some(run), true) => run.count += 1,
                (None, true) => {
                    run = Some(WindowRun {
                        chrom: name.clone(),
                        start: chrom.start + offset as u64,
                        count: 1,
                        stride: stride as u64,
                    })
                }
                (Some(_), false) => set.push(run.take().expect("matched Some")),
                (None, false) => {}
            }
            offset += stride;
        }
        run.into_iter().for_each(|run| set.push(run));
    }
    set
}

/// Windows of `len` every `stride` positions over each extent, keeping those inside it.
pub fn tile_extents(extents: &[Region], len: u64, stride: u64) -> WindowSet {
    let mut set = WindowSet::new(len);
    for extent in extents {
        if extent.len() >= len {
            set.push(WindowRun {
                chrom: extent.chrom.as_str().into(),
                start: extent.start,
                count: (extent.len() - len) / stride.max(1) + 1,
                stride: stride.max(1),
            });
        }
    }
    set
}

/// Windows over a list of regions: a region at least `len` long is tiled every `stride`
/// positions; a shorter one gets one window centred on it, moved inside its chromosome's extent
/// if needed. A region outside every extent is an error naming its line.
pub fn windows_in_regions(regions: &[BedRegion], extents: &[Region], len: u64, stride: u64) -> Result<WindowSet> {
    let mut set = WindowSet::new(len);
    for BedRegion { region, line, .. } in regions {
        let extent = extents
            .iter()
            .find(|extent| extent.contains(region))
            .with_context(|| format!("line {line}: region {region} is outside the alignment"))?;
        if extent.len() < len {
            bail!("line {line}: region {region}: the alignment covers only {extent}, shorter than the {len}-bp window");
        }
        let (start, count) = if region.len() >= len {
            (region.start, (region.len() - len) / stride.max(1) + 1)
        } else {
            let centred = (region.start + region.len() / 2).saturating_sub(len / 2);
            (centred.clamp(extent.start, extent.end - len), 1)
        };
        set.push(WindowRun {
            chrom: region.chrom.as_str().into(),
            start,
            count,
            stride: stride.max(1),
        });
    }
    Ok(set)
}

/// Splits windows into (train, validation): the last `fraction` of each chromosome's extent is
/// held out; windows straddling the boundary go to neither, so no position is in both. Windows
/// of a chromosome without an extent go to neither.
pub fn hold_out(set: &WindowSet, extents: &[Region], fraction: f64) -> (WindowSet, WindowSet) {
    let (mut train, mut valid) = (WindowSet::new(set.len), WindowSet::new(set.len));
    for run in set.runs() {
        let Some(extent) = extents.iter().find(|e| *e.chrom == *run.chrom) else {
            continue;
        };
        let boundary = extent.start + ((1.0 - fraction) * extent.len() as f64) as u64;
        // Windows k < n_train end at or before the boundary; windows k >= first_valid start at or after it.
        let n_train = match (boundary.checked_sub(run.start + set.len), run.stride) {
            (Some(room), stride) => (room / stride + 1).min(run.count),
            (None, _) => 0,
        };
        let first_valid = boundary.saturating_sub(run.start).div_ceil(run.stride).min(run.count);
        train.push(WindowRun {
            count: n_train,
            ..run.clone()
        });
        valid.push(WindowRun {
            start: run.start + first_valid * run.stride,
            count: run.count - first_valid,
            ..run.clone()
        });
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

/// Windows drawn in a row without a target base before [`WindowDataset::item`] gives up.
const MAX_DRAWS: u64 = 1000;

/// Whether the target row (the MLM's only targets) holds a base.
fn has_target_base(item: &MsaItem) -> bool {
    item.rows.first().is_some_and(|target| target.iter().any(|&t| t != GAP))
}

/// Windows of a source, read when asked for (a store is read chunk by chunk, never whole).
#[derive(Clone)]
pub struct WindowDataset {
    source: Arc<AlignmentSource>,
    windows: WindowSet,
    seed: u64,
}

impl WindowDataset {
    /// `windows` of `source`; item `i` gets seed `mix(seed, i)`.
    pub fn new(source: Arc<AlignmentSource>, windows: WindowSet, seed: u64) -> Self {
        Self { source, windows, seed }
    }

    /// Window `k` as it is; an error names the window and what the source could not read.
    fn read(&self, k: u64, seed: u64) -> Result<MsaItem> {
        let region = self
            .windows
            .region(k)
            .with_context(|| format!("window {k} of {}", self.count()))?;
        let window = self
            .source
            .window(&region, Strand::Forward)
            .with_context(|| format!("reading window {region}"))?;
        Ok(MsaItem {
            rows: window.rows,
            seed,
        })
    }

    /// Every item that has a target base, read now, so that a source that cannot supply one
    /// fails before training.
    pub fn load(&self) -> Result<Vec<MsaItem>> {
        let mut items = Vec::new();
        for k in 0..self.count() {
            let item = self.read(k, mix(self.seed, k))?;
            if has_target_base(&item) {
                items.push(item);
            }
        }
        Ok(items)
    }
}

impl EpochItems for WindowDataset {
    type Item = MsaItem;

    fn count(&self) -> u64 {
        self.windows.count()
    }

    /// Window `k` with `seed`. A window whose target row holds no base has no MLM target (its
    /// loss would be 0 and its accuracy undefined): another window, drawn with `seed`, takes its
    /// place, so that no item is all gaps; a run of `MAX_DRAWS` such windows is an error.
    fn item(&self, k: u64, seed: u64) -> Result<MsaItem> {
        let mut window = k;
        for draw in 0..MAX_DRAWS {
            let item = self.read(window, seed)?;
            if has_target_base(&item) {
                return Ok(item);
            }
            window = mix(seed, draw) % self.count();
        }
        bail!(
            "{}: {MAX_DRAWS} windows drawn at random have no target base (the target is not aligned there); choose windows with --regions",
            self.source.describe()
        )
    }
}
