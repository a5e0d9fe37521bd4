//! A variant table (Parquet, CSV or TSV) streamed through the scorer as a VCF is
//! ([`super::score_vcf`]): a batch of rows read, their SNVs scored, the rows written with their
//! scores before the next batch is read.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::{Context as _, Result};
use msamamba_kernels::KernelBackend;

use super::scorer::VariantScorer;
use super::skip::{Outcome, Skip};
use super::stream::{ChromMatcher, ScoreSummary, classify, describe, finite, tally};
use crate::data::variant_table::{VariantTableReader, VariantTableWriter};
use crate::progress;

/// Scores every row of `reader` with `scorer`, `batch_size` variants per forward pass, and
/// writes each to `writer` in order, telling `on_rows` how many rows each batch wrote; ends the
/// output and hands back its stream. A table none of whose chromosomes is in the alignment is an
/// error naming it.
pub fn score_table<B: KernelBackend, W: Write + Send>(
    scorer: &VariantScorer<B>,
    reader: &mut VariantTableReader,
    mut writer: VariantTableWriter<W>,
    batch_size: usize,
    out_name: &str,
    on_rows: &mut dyn FnMut(u64),
) -> Result<(ScoreSummary, W)> {
    let input = reader.path().to_path_buf();
    let mut chroms = ChromMatcher::new(scorer, &input);
    let mut summary = ScoreSummary::default();
    let mut warned = BTreeSet::new();
    let progress = progress::counter("rows");
    while let Some(batch) = reader.next_batch()? {
        let mut variants = Vec::new();
        let mut alleles = Vec::with_capacity(batch.variants.len());
        for (i, row) in batch.variants.iter().enumerate() {
            let found = chroms.find(&row.chrom);
            let position = Some(row.pos as usize);
            let alts = [row.alt.as_str()];
            let allele = classify(scorer, found.as_deref(), position, &row.reference, &alts, &mut variants)?.remove(0);
            if let Err(skip) = allele
                && warned.insert(skip)
            {
                tracing::warn!(
                    "{}:{} row {}: {}; skipped as {skip} (the first; the rest are counted at the end)",
                    row.chrom,
                    row.pos,
                    summary.records + i as u64 + 1,
                    describe(skip, scorer, found.as_deref(), position, &row.reference, &alts)
                );
            }
            alleles.push(allele);
        }
        let mut scores = Vec::with_capacity(variants.len());
        for chunk in variants.chunks(batch_size.max(1)) {
            scores.extend(scorer.score(chunk)?);
        }
        let outcomes: Vec<Outcome> = alleles
            .iter()
            .map(|allele| match allele {
                Ok(index) => finite(scores[*index].mean()),
                Err(skip) => Outcome::Skipped(*skip),
            })
            .collect();
        if !summary.skipped.contains_key(&Skip::Nan) && outcomes.contains(&Outcome::Skipped(Skip::Nan)) {
            tracing::warn!(
                "{}: the model's score is NaN or infinite (its weights may have diverged); written empty with reason nan (the first; the rest are counted at the end)",
                input.display()
            );
        }
        tally(&mut summary, &outcomes, None);
        summary.records += outcomes.len() as u64;
        progress.inc(outcomes.len() as u64);
        let (score, reason): (Vec<Option<f32>>, Vec<Option<&str>>) = outcomes
            .iter()
            .map(|outcome| match outcome {
                Outcome::Scored(score) => (Some(*score), None),
                Outcome::Skipped(skip) => (None, Some(skip.code())),
            })
            .unzip();
        writer
            .write(&batch.rows, score, reason)
            .with_context(|| format!("writing {out_name}"))?;
        on_rows(outcomes.len() as u64);
    }
    progress.finish_and_clear();
    chroms.check_any(summary.records, scorer)?;
    let out = writer.finish().with_context(|| format!("writing {out_name}"))?;
    Ok((summary, out))
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::data::variant_table::{BATCH_ROWS, TableFormat};
    use crate::infer::scorer::tests::{model, random_rows, scorer};

    /// Counts the bytes written through it.
    struct Counting(Arc<AtomicUsize>);

    impl Write for Counting {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.fetch_add(buf.len(), Ordering::SeqCst);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_batch_of_rows_is_written_before_the_next_is_read() {
        let dir = tempfile::tempdir().unwrap();
        // Rows on a chromosome the alignment lacks: every row is read and written, none scored
        // (the model is not what is under test), so three full batches go fast.
        let rows = 3 * BATCH_ROWS + 5;
        let mut text = String::from("chrom\tpos\tref\talt\n");
        for k in 0..rows {
            text.push_str(&format!("chr9\t{}\tA\tG\n", k + 1));
        }
        let path = dir.path().join("v.tsv");
        std::fs::write(&path, text).unwrap();
        let alignment = random_rows(5, 3, 60);
        let scorer = scorer(&model(false), &alignment, 8);
        let mut reader = VariantTableReader::open(&path).unwrap();
        let written = Arc::new(AtomicUsize::new(0));
        let writer = VariantTableWriter::new(Counting(written.clone()), TableFormat::Tsv, &reader.schema()).unwrap();
        let mut seen = Vec::new();
        let result = score_table(&scorer, &mut reader, writer, 4, "memory", &mut |n| {
            seen.push((n, written.load(Ordering::SeqCst)))
        });
        // None of its chromosomes is in the alignment: an error, after every row was written.
        let error = result.err().unwrap().to_string();
        assert!(error.contains("none of its chromosomes (chr9)"), "{error}");
        let batches: Vec<u64> = seen.iter().map(|&(n, _)| n).collect();
        assert_eq!(batches, [BATCH_ROWS as u64, BATCH_ROWS as u64, BATCH_ROWS as u64, 5]);
        // Each batch's rows were out before the next batch was read.
        assert!(seen.windows(2).all(|w| w[0].1 > 0 && w[1].1 > w[0].1), "{seen:?}");
    }
}
