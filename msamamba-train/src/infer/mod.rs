//! Inference as a library: a pre-trained model scores the variants of a VCF streamed through it
//! ([`score_vcf`]), or of a Parquet, CSV or TSV variant table ([`score_table`]), without the
//! command line. [`VariantScorer`] loads a checkpoint and its
//! alignment once and scores batches of SNVs on both strands; [`Context`] says which bases
//! around the site each strand sees (causal checkpoints: the window ends at the site);
//! [`ScoreWriter`] writes the VCF (noodles, plain or bgzipped) or a TSV as the scores come.
//! [`Embedder`] embeds regions one at a time into an [`EmbeddingStore`] (zarr).
//!
//! ```no_run
//! # use std::path::Path;
//! # use burn::backend::NdArray;
//! # use msamamba_train::{data::vcf::VcfReader, infer::*, windows::row_order::RowOrder};
//! # fn main() -> anyhow::Result<()> {
//! let device = Default::default();
//! let scorer = VariantScorer::<NdArray>::load(
//!     Path::new("run"),
//!     |config| {
//!         let source = config.source.open()?;
//!         let order = RowOrder::new(&config.rows, &source.species(), config.model.max_rows)?;
//!         Ok((source, order))
//!     },
//!     None,
//!     &device,
//! )?;
//! let mut reader = VcfReader::open(Path::new("variants.vcf"))?;
//! let provenance = Provenance::new("example".into(), Path::new("run"), scorer.weights(), scorer.context().to_string())?;
//! let kind = OutputKind::of(Path::new("scores.tsv"));
//! let writer = ScoreWriter::new(std::io::stdout(), kind, reader.header(), &provenance)?;
//! let options = ScoreOptions { batch_size: 256, labels: None, out_name: "stdout".into(), sorted: false };
//! let summary = score_vcf(&scorer, &mut reader, writer, &options)?;
//! eprintln!("{} scored", summary.scored);
//! # Ok(())
//! # }
//! ```

mod alignment;
mod chrom_names;
mod context;
mod embedder;
mod embedding_store;
mod labels;
mod score_writer;
mod scorer;
mod skip;
mod stream;
mod table_stream;

pub use alignment::AlignmentChoice;
pub use chrom_names::{ChromNames, Match};
pub use context::{Context, Cut};
pub use embedder::Embedder;
pub use embedding_store::{EmbeddingStore, RegionLabel};
pub use labels::LabelSpec;
pub use score_writer::{OutputKind, Provenance, SCORE_KEY, SKIP_KEY, ScoreWriter, TSV_HEADER};
pub use scorer::{SiteWindows, StrandScores, Variant, VariantScorer, snv_base};
pub use skip::{Outcome, Skip};
pub use stream::{ScoreOptions, ScoreSummary, score_vcf};
pub use table_stream::score_table;
