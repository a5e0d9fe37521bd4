//! Zero-shot variant scoring with a pre-trained model: the checkpoint and its alignment are
//! opened once, then variants are scored a batch at a time, each on both strands.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::prelude::*;
use msamamba_kernels::KernelBackend;
use msamamba_model::MsaMamba;
use msamamba_model::tokens::{complement, token_of};
use msamamba_model::variant_score::variant_scores;

use super::context::Context;
use super::skip::Skip;
use crate::data::region::Region;
use crate::data::source::AlignmentSource;
use crate::train::pretrain::PretrainConfig;
use crate::train::run_dir::RunDir;
use crate::train::weights::load_backbone;
use crate::windows::row_order::RowOrder;

/// A pre-trained model with the alignment its windows come from.
pub struct VariantScorer<B: KernelBackend> {
    model: MsaMamba<B>,
    source: AlignmentSource,
    order: RowOrder,
    /// What the source covers, looked up for every variant.
    extents: Vec<Region>,
    context: Context,
    window: usize,
    /// The site's index in the forward and the reverse window.
    sites: [usize; 2],
    weights: PathBuf,
    device: B::Device,
    /// Whether the two strands' passes run concurrently: on the CPU only. There one pass's serial
    /// tensor ops overlap the other's (65 -> 110 variants/s on 2 cores); on CUDA the two threads'
    /// launches gained 9% and a 1 M-variant run failed with a launch error (H200, 2026-12-01).
    concurrent: bool,
}

/// Both strands' windows around one site, rows in the model's order, target first.
#[derive(Debug, Clone)]
pub struct SiteWindows {
    /// Forward, then reverse (reverse-complemented) rows.
    rows: [Vec<Vec<u8>>; 2],
    /// The site's index in the forward window.
    site: usize,
}

impl SiteWindows {
    /// The target's token at the site, forward strand.
    pub fn target_token(&self) -> u8 {
        self.rows[0][0][self.site]
    }
}

/// One SNV ready to score.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Its windows.
    pub windows: SiteWindows,
    /// REF token (forward strand).
    pub reference: u8,
    /// ALT token (forward strand).
    pub alternative: u8,
}

/// A variant's score on each strand; the mean is the score reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StrandScores {
    /// logit(alt) - logit(ref) on the forward strand.
    pub forward: f32,
    /// The same on the reverse strand (complemented bases).
    pub reverse: f32,
}

impl StrandScores {
    /// The mean of both strands.
    pub fn mean(&self) -> f32 {
        0.5 * (self.forward + self.reverse)
    }
}

impl<B: KernelBackend> VariantScorer<B> {
    /// Loads the pre-training run `checkpoint` once and opens its alignment with `open` (which
    /// gets the run's config, to take its source and rows); `window` defaults to the run's
    /// training window.
    pub fn load(
        checkpoint: &Path,
        open: impl FnOnce(&PretrainConfig) -> Result<(AlignmentSource, RowOrder)>,
        window: Option<usize>,
        device: &B::Device,
    ) -> Result<Self> {
        let (config, model) = load_backbone::<B>(checkpoint, device)?;
        let (source, order) = open(&config)?;
        let weights = RunDir {
            dir: checkpoint.to_path_buf(),
        }
        .final_model();
        Self::new(
            model,
            Context::of(&config.model),
            source,
            order,
            window.unwrap_or(config.window),
            weights,
            device,
        )
    }

    /// A scorer of `model` (weights from the file `weights`) over `source`, whose rows `order`
    /// puts in the model's order, with `window`-long windows cut as `context` says.
    pub fn new(
        model: MsaMamba<B>,
        context: Context,
        source: AlignmentSource,
        order: RowOrder,
        window: usize,
        weights: PathBuf,
        device: &B::Device,
    ) -> Result<Self> {
        if window < 2 {
            bail!("--window must be at least 2, got {window}");
        }
        Ok(Self {
            model,
            extents: source.extents(),
            source,
            order,
            context,
            window,
            sites: context.sites(window),
            weights,
            concurrent: (device as &dyn std::any::Any).is::<burn::backend::ndarray::NdArrayDevice>(),
            device: device.clone(),
        })
    }

    /// How windows are cut.
    pub fn context(&self) -> Context {
        self.context
    }

    /// Window length L.
    pub fn window(&self) -> usize {
        self.window
    }

    /// The model's weights file.
    pub fn weights(&self) -> &Path {
        &self.weights
    }

    /// The alignment, for messages.
    pub fn source(&self) -> &AlignmentSource {
        &self.source
    }

    /// The alignment's chromosomes.
    pub fn chromosomes(&self) -> Vec<String> {
        self.extents.iter().map(|extent| extent.chrom.clone()).collect()
    }

    /// Both strands' windows around the 0-based `position` of the alignment's chromosome
    /// `chrom`; [`Skip::OutsideAlignment`] when either reaches past what the alignment covers.
    /// Errors are the source's (a damaged store).
    pub fn windows(&self, chrom: &str, position: u64) -> Result<Result<SiteWindows, Skip>> {
        let Some(cuts) = self.context.cuts(chrom, position, self.window) else {
            return Ok(Err(Skip::OutsideAlignment));
        };
        if !cuts
            .iter()
            .all(|cut| self.extents.iter().any(|extent| extent.contains(&cut.region)))
        {
            return Ok(Err(Skip::OutsideAlignment));
        }
        let [forward, reverse] = cuts.map(|cut| {
            self.source
                .window(&cut.region, cut.strand)
                .map(|window| self.order.arrange(&window.rows))
        });
        Ok(Ok(SiteWindows {
            rows: [forward?, reverse?],
            site: self.sites[0],
        }))
    }

    /// Scores `variants` in one forward pass per strand, the two passes concurrent on the CPU
    /// (both passes' activations are then held at once) and one after the other elsewhere.
    pub fn score(&self, variants: &[Variant]) -> Result<Vec<StrandScores>> {
        if variants.is_empty() {
            return Ok(Vec::new());
        }
        let strand = |strand| self.score_strand(variants, strand);
        let (forward, reverse) = if self.concurrent {
            rayon::join(|| strand(0), || strand(1))
        } else {
            (strand(0), strand(1))
        };
        let (forward, reverse) = (forward?, reverse?);
        Ok(forward
            .into_iter()
            .zip(reverse)
            .map(|(forward, reverse)| StrandScores { forward, reverse })
            .collect())
    }

    /// Scores on one strand (0 forward, 1 reverse, whose bases are complemented).
    fn score_strand(&self, variants: &[Variant], strand: usize) -> Result<Vec<f32>> {
        let (batch, rows, len) = (variants.len(), self.order.len(), self.window);
        let base = |token: u8| i64::from(if strand == 1 { complement(token) } else { token });
        let tokens: Vec<i64> = variants
            .iter()
            .flat_map(|v| v.windows.rows[strand].iter().flatten().map(|&t| i64::from(t)))
            .collect();
        let reference: Vec<i64> = variants.iter().map(|v| base(v.reference)).collect();
        let alternative: Vec<i64> = variants.iter().map(|v| base(v.alternative)).collect();
        let scores = variant_scores(
            &self.model,
            Tensor::from_data(TensorData::new(tokens, [batch, rows, len]), &self.device),
            Tensor::from_data(TensorData::new(vec![true; batch * rows], [batch, rows]), &self.device),
            self.sites[strand],
            Tensor::from_data(TensorData::new(reference, [batch]), &self.device),
            Tensor::from_data(TensorData::new(alternative, [batch]), &self.device),
        );
        let scores = scores
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("reading the scores back: {e:?}"))?;
        msamamba_kernels::device_failure::after_read::<B>(&self.device)?;
        Ok(scores)
    }
}

/// The token of a VCF allele that is one base A, C, G or T (any case), else `None`.
pub fn snv_base(allele: &str) -> Option<u8> {
    match allele.as_bytes() {
        [byte] if matches!(byte.to_ascii_uppercase(), b'A' | b'C' | b'G' | b'T') => Some(token_of(*byte)),
        _ => None,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use burn::backend::NdArray;
    use msamamba_model::MsaMambaConfig;
    use msamamba_model::tokens::{A, C, G, T};

    use super::*;
    use crate::data::alignment::Alignment;
    use crate::data::maf::Strand;
    use crate::data::projection::MsaWindow;

    pub(in crate::infer) type Cpu = NdArray;

    /// An in-memory alignment of chromosome `chr1`: 3 rows of `len` pseudo-random bases.
    pub(in crate::infer) fn alignment(rows: &[Vec<u8>]) -> AlignmentSource {
        let species: Vec<String> = (0..rows.len()).map(|r| format!("sp{r}")).collect();
        AlignmentSource::Maf {
            path: "memory.maf".into(),
            alignment: Alignment {
                chromosomes: vec![MsaWindow {
                    species,
                    rows: rows.to_vec(),
                    chrom: "chr1".into(),
                    start: 0,
                    end: rows[0].len() as u64,
                    strand: Strand::Forward,
                }],
            },
        }
    }

    pub(in crate::infer) fn random_rows(seed: u64, rows: usize, len: usize) -> Vec<Vec<u8>> {
        let mut state = seed;
        (0..rows)
            .map(|_| {
                (0..len)
                    .map(|_| {
                        // xorshift: fresh, non-constant bases without a dependency.
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        [A, C, G, T][(state % 4) as usize]
                    })
                    .collect()
            })
            .collect()
    }

    /// A small random model, and its context. burn initialises parameters lazily, so clones of
    /// a fresh model would draw different weights: the weights are drawn once, through a record.
    pub(in crate::infer) fn model(bidirectional: bool) -> (MsaMamba<Cpu>, Context) {
        let config = MsaMambaConfig::new()
            .with_d_model(16)
            .with_n_layers(2)
            .with_n_heads(2)
            .with_max_rows(4)
            .with_bidirectional(bidirectional);
        let device = Default::default();
        let record = config.init::<Cpu>(&device).into_record();
        (config.init::<Cpu>(&device).load_record(record), Context::of(&config))
    }

    pub(in crate::infer) fn scorer(
        (model, context): &(MsaMamba<Cpu>, Context),
        rows: &[Vec<u8>],
        window: usize,
    ) -> VariantScorer<Cpu> {
        let source = alignment(rows);
        let order = RowOrder::new(&[], &source.species(), 4).unwrap();
        VariantScorer::new(
            model.clone(),
            *context,
            source,
            order,
            window,
            "model.mpk".into(),
            &Default::default(),
        )
        .unwrap()
    }

    /// Scores an SNV at `position` (the REF is the alignment's base there).
    fn strand_scores(scorer: &VariantScorer<Cpu>, position: u64) -> StrandScores {
        let windows = scorer.windows("chr1", position).unwrap().unwrap();
        let reference = windows.target_token();
        let variant = Variant {
            windows,
            reference,
            alternative: complement(reference),
        };
        scorer.score(&[variant]).unwrap()[0]
    }

    #[test]
    fn a_causal_forward_score_ignores_the_bases_after_the_site() {
        let (position, window) = (40u64, 16);
        let rows = random_rows(7, 3, 80);
        let mut changed = rows.clone();
        for row in &mut changed {
            for base in &mut row[position as usize + 1..] {
                *base = complement(*base);
            }
        }
        let causal = model(false);
        let (before, after) = (
            strand_scores(&scorer(&causal, &rows, window), position),
            strand_scores(&scorer(&causal, &changed, window), position),
        );
        assert!(
            (before.forward - after.forward).abs() <= 1e-6 * before.forward.abs().max(1.0),
            "{before:?} vs {after:?}"
        );
        // The reverse strand reads exactly those bases, so it must see the change.
        assert!((before.reverse - after.reverse).abs() > 1e-5, "{before:?} vs {after:?}");

        // A bidirectional model's centred window holds them on the forward strand too.
        let bidirectional = model(true);
        let (before, after) = (
            strand_scores(&scorer(&bidirectional, &rows, window), position),
            strand_scores(&scorer(&bidirectional, &changed, window), position),
        );
        assert!((before.forward - after.forward).abs() > 1e-5, "{before:?} vs {after:?}");
    }

    #[test]
    fn causal_windows_end_at_the_site_and_read_the_other_strand_backwards() {
        let rows = random_rows(11, 3, 60);
        let scorer = scorer(&model(false), &rows, 8);
        let windows = scorer.windows("chr1", 20).unwrap().unwrap();
        assert_eq!(windows.rows[0][1], rows[1][13..21]);
        let mut reverse = rows[2][20..28].to_vec();
        msamamba_model::tokens::reverse_complement(&mut reverse);
        assert_eq!(windows.rows[1][2], reverse);
        assert_eq!(windows.target_token(), rows[0][20]);
        assert_eq!(windows.rows[1][0][7], complement(rows[0][20]));
        // Seven bases before the first position, or past the last: not in the alignment.
        assert_eq!(scorer.windows("chr1", 6).unwrap().unwrap_err(), Skip::OutsideAlignment);
        assert_eq!(scorer.windows("chr1", 53).unwrap().unwrap_err(), Skip::OutsideAlignment);
        assert!(scorer.windows("chr1", 52).unwrap().is_ok());
    }

    #[test]
    fn alleles_other_than_one_base_are_not_snvs() {
        assert_eq!(snv_base("g"), Some(G));
        assert_eq!(snv_base("T"), Some(T));
        for allele in ["", "N", "AT", "<DEL>", "*", "."] {
            assert_eq!(snv_base(allele), None, "{allele}");
        }
    }
}
