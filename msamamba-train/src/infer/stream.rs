//! A VCF streamed through the scorer: records are read one at a time, their SNVs scored a batch
//! at a time, and every record written out in input order as soon as its batch is scored, so
//! memory holds one batch whatever the size of the file.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::{Context as _, Result, bail};
use msamamba_kernels::KernelBackend;
use msamamba_model::tokens::char_of;
use noodles_vcf::variant::RecordBuf;

use super::chrom_names::{ChromNames, Match};
use super::labels::LabelSpec;
use super::score_writer::ScoreWriter;
use super::scorer::{Variant, VariantScorer, snv_base};
use super::skip::{Outcome, Skip};
use crate::data::vcf::VcfReader;
use crate::progress;

/// How to score a stream.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Variants per forward pass; also the most records held back waiting for a batch.
    pub batch_size: usize,
    /// Where each record's label is, to collect (score, label) pairs.
    pub labels: Option<LabelSpec>,
    /// The output, for messages.
    pub out_name: String,
    /// Records must come sorted by chromosome and position (an index of the output needs them
    /// so): the first one out of order is an error at its line, before the rest is scored.
    pub sorted: bool,
}

/// What a stream gave.
#[derive(Debug, Default)]
pub struct ScoreSummary {
    /// Records read.
    pub records: u64,
    /// ALTs scored (finite scores only).
    pub scored: u64,
    /// ALTs not scored, by reason.
    pub skipped: BTreeMap<Skip, u64>,
    /// (score, label) of every scored ALT, when labels were asked for.
    pub labelled: Vec<(f32, bool)>,
}

/// A record waiting for its batch: per ALT, its index among the batch's variants or why it has
/// none.
struct Pending {
    record: RecordBuf,
    alleles: Vec<Result<usize, Skip>>,
    label: Option<bool>,
}

/// Scores every record of `reader` with `scorer` and writes each to `writer`, in order; ends
/// the output. A VCF none of whose chromosomes is in the alignment is an error naming it.
pub fn score_vcf<B: KernelBackend, W: Write>(
    scorer: &VariantScorer<B>,
    reader: &mut VcfReader,
    mut writer: ScoreWriter<W>,
    options: &ScoreOptions,
) -> Result<ScoreSummary> {
    let batch_size = options.batch_size.max(1);
    let input = reader.path().to_path_buf();
    let mut chroms = ChromMatcher::new(scorer, &input);
    let mut batch = Batch {
        size: batch_size,
        pending: Vec::new(),
        variants: Vec::new(),
    };
    let mut summary = ScoreSummary::default();
    let progress = progress::counter("records");
    let mut warned = BTreeSet::new();
    let mut order = SortOrder::default();
    loop {
        let mut record = RecordBuf::default();
        let Some(line) = reader.read(&mut record)? else {
            break;
        };
        summary.records += 1;
        progress.inc(1);
        let chrom = record.reference_sequence_name().to_string();
        if options.sorted {
            let position = record.variant_start().map_or(0, usize::from);
            order.check(&chrom, position).map_err(|why| reader.error(line, why))?;
        }
        let found = chroms.find(&chrom);
        let alts: Vec<&str> = record.alternate_bases().as_ref().iter().map(String::as_str).collect();
        let position = record.variant_start().map(usize::from);
        let alleles = classify(
            scorer,
            found.as_deref(),
            position,
            record.reference_bases(),
            &alts,
            &mut batch.variants,
        )?;
        // Only scored records need a label: the others are not ranked.
        let label = match &options.labels {
            Some(spec) if alleles.iter().any(Result::is_ok) => {
                Some(spec.label(&record).map_err(|reason| reader.error(line, reason))?)
            }
            _ => None,
        };
        for allele in &alleles {
            if let Err(skip) = allele
                && warned.insert(*skip)
            {
                let position = record.variant_start().map_or(0, usize::from);
                tracing::warn!(
                    "{chrom}:{position} line {line}: {}; skipped as {skip} (the first; the rest are counted at the end)",
                    describe(
                        *skip,
                        scorer,
                        found.as_deref(),
                        record.variant_start().map(usize::from),
                        record.reference_bases(),
                        &alts
                    )
                );
            }
        }
        batch.pending.push(Pending { record, alleles, label });
        if batch.is_full() {
            batch
                .flush(scorer, &mut writer, &mut summary)
                .with_context(|| format!("writing {}", options.out_name))?;
        }
    }
    batch
        .flush(scorer, &mut writer, &mut summary)
        .and_then(|()| Ok(writer.finish()?))
        .with_context(|| format!("writing {}", options.out_name))?;
    progress.finish_and_clear();
    chroms.check_any(summary.records, scorer)?;
    Ok(summary)
}

/// Where a sorted stream is: its chromosomes so far and the last position on the current one.
#[derive(Default)]
struct SortOrder {
    done: BTreeSet<String>,
    current: Option<(String, usize)>,
}

impl SortOrder {
    /// Takes the next record at `chrom`:`position`; why it is out of order, if it is.
    fn check(&mut self, chrom: &str, position: usize) -> Result<(), String> {
        match &mut self.current {
            Some((current, last)) if current == chrom => {
                if position < *last {
                    return Err(format!(
                        "{chrom}:{position} comes after {chrom}:{last}: --index needs records sorted by position (sort with `bcftools sort`)"
                    ));
                }
                *last = position;
            }
            _ => {
                if self.done.contains(chrom) {
                    return Err(format!(
                        "{chrom} again after other chromosomes: --index needs each chromosome's records together (sort with `bcftools sort`)"
                    ));
                }
                if let Some((previous, _)) = self.current.take() {
                    self.done.insert(previous);
                }
                self.current = Some((chrom.to_string(), position));
            }
        }
        Ok(())
    }
}

/// Per ALT of a variant at 1-based `position` (`None`: POS 0) on `chrom` (its name in the
/// alignment, if there), the index of its variant, pushed onto `variants`, or why it is not
/// scored.
pub(super) fn classify<B: KernelBackend>(
    scorer: &VariantScorer<B>,
    chrom: Option<&str>,
    position: Option<usize>,
    reference: &str,
    alts: &[&str],
    variants: &mut Vec<Variant>,
) -> Result<Vec<Result<usize, Skip>>> {
    let reference = snv_base(reference);
    let alts: Vec<Option<u8>> = alts
        .iter()
        .map(|alt| snv_base(alt).filter(|&a| reference.is_some_and(|r| r != a)))
        .collect();
    let (Some(reference), true) = (reference, alts.iter().any(Option::is_some)) else {
        return Ok(vec![Err(Skip::NotSnv); alts.len()]);
    };
    let windows = match (chrom, position) {
        (None, _) => Err(Skip::ChromNotInAlignment),
        // POS 0 (a telomere) has no base to score.
        (Some(_), None) => Err(Skip::OutsideAlignment),
        (Some(chrom), Some(position)) => scorer.windows(chrom, position as u64 - 1)?.and_then(|w| {
            if w.target_token() == reference {
                Ok(w)
            } else {
                Err(Skip::RefMismatch)
            }
        }),
    };
    Ok(alts
        .into_iter()
        .map(|alt| {
            let alternative = alt.ok_or(Skip::NotSnv)?;
            let windows = windows.clone()?;
            variants.push(Variant {
                windows,
                reference,
                alternative,
            });
            Ok(variants.len() - 1)
        })
        .collect())
}

/// What was wrong with a variant (as [`classify`] takes it), for the first warning of each
/// reason.
pub(super) fn describe<B: KernelBackend>(
    skip: Skip,
    scorer: &VariantScorer<B>,
    chrom: Option<&str>,
    position: Option<usize>,
    reference: &str,
    alts: &[&str],
) -> String {
    match skip {
        Skip::NotSnv | Skip::NoAlt => format!("{reference} -> {} is not a single-base substitution", alts.join(",")),
        Skip::ChromNotInAlignment => "the chromosome is not in the alignment".into(),
        Skip::OutsideAlignment => format!(
            "the {}-base window ({}) reaches past what the alignment covers",
            scorer.window(),
            scorer.context()
        ),
        Skip::Nan => "the model's score is NaN or infinite".into(),
        Skip::RefMismatch => {
            let found = chrom
                .zip(position)
                .and_then(|(chrom, position)| scorer.windows(chrom, position as u64 - 1).ok()?.ok())
                .map_or('?', |w| char_of(w.target_token()));
            format!("REF {reference} but the alignment's target has {found}")
        }
    }
}

/// Matches a stream's chromosome names to the alignment's, noting the first that matched only
/// with a `chr` prefix added or removed, and keeping a few that did not match.
pub(super) struct ChromMatcher<'a> {
    names: ChromNames,
    input: &'a std::path::Path,
    matched: bool,
    renamed: bool,
    unmatched: BTreeSet<String>,
}

impl<'a> ChromMatcher<'a> {
    pub(super) fn new<B: KernelBackend>(scorer: &VariantScorer<B>, input: &'a std::path::Path) -> Self {
        ChromMatcher {
            names: ChromNames::new(scorer.chromosomes()),
            input,
            matched: false,
            renamed: false,
            unmatched: BTreeSet::new(),
        }
    }

    /// `chrom`'s name in the alignment, if there.
    pub(super) fn find(&mut self, chrom: &str) -> Option<String> {
        let found = match self.names.find(chrom) {
            Match::Same(name) => Some(name.to_string()),
            Match::Renamed(name) => {
                if !self.renamed {
                    tracing::info!(
                        "note: {} writes chromosomes as `{chrom}`, the alignment as `{name}`; `chr` prefixes are matched both ways",
                        self.input.display()
                    );
                    self.renamed = true;
                }
                Some(name.to_string())
            }
            Match::Missing => None,
        };
        self.matched |= found.is_some();
        if found.is_none() && self.unmatched.len() < 5 {
            self.unmatched.insert(chrom.to_string());
        }
        found
    }

    /// An error when `records` were read and none of their chromosomes is in the alignment.
    pub(super) fn check_any<B: KernelBackend>(&self, records: u64, scorer: &VariantScorer<B>) -> Result<()> {
        if records > 0 && !self.matched {
            bail!(
                "{}: none of its chromosomes ({}) is in the alignment {} (which has {})",
                self.input.display(),
                self.unmatched.iter().cloned().collect::<Vec<_>>().join(", "),
                scorer.source().describe(),
                self.names
                    .known()
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    }
}

/// A score as written: a NaN or an infinity is no score, but the reason `nan`.
pub(super) fn finite(score: f32) -> Outcome {
    if score.is_finite() {
        Outcome::Scored(score)
    } else {
        Outcome::Skipped(Skip::Nan)
    }
}

/// Records waiting to be written, and the variants to score first.
struct Batch {
    /// Variants per forward pass, and the most records held back.
    size: usize,
    pending: Vec<Pending>,
    variants: Vec<Variant>,
}

impl Batch {
    /// Whether a forward pass is full, or enough records wait (most may have nothing to score).
    fn is_full(&self) -> bool {
        self.variants.len() >= self.size || self.pending.len() >= self.size
    }

    /// Scores the variants and writes the records.
    fn flush<B: KernelBackend, W: Write>(
        &mut self,
        scorer: &VariantScorer<B>,
        writer: &mut ScoreWriter<W>,
        summary: &mut ScoreSummary,
    ) -> Result<()> {
        let mut scores = Vec::with_capacity(self.variants.len());
        // A multi-allelic record may carry the batch past its size: passes stay within it.
        for chunk in self.variants.chunks(self.size) {
            scores.extend(scorer.score(chunk)?);
        }
        self.variants.clear();
        for mut waiting in self.pending.drain(..) {
            let outcomes: Vec<Outcome> = waiting
                .alleles
                .iter()
                .map(|allele| match allele {
                    Ok(index) => finite(scores[*index].mean()),
                    Err(skip) => Outcome::Skipped(*skip),
                })
                .collect();
            if !summary.skipped.contains_key(&Skip::Nan) && outcomes.contains(&Outcome::Skipped(Skip::Nan)) {
                let record = &waiting.record;
                tracing::warn!(
                    "{}:{}: the model's score is NaN or infinite (its weights may have diverged); written as `.` with reason nan (the first; the rest are counted at the end)",
                    record.reference_sequence_name(),
                    record.variant_start().map_or(0, usize::from)
                );
            }
            if waiting.alleles.is_empty() {
                *summary.skipped.entry(Skip::NoAlt).or_default() += 1;
            }
            tally(summary, &outcomes, waiting.label);
            writer.write(&mut waiting.record, &outcomes)?;
        }
        Ok(())
    }
}

/// Counts `outcomes` (one record's or row's) into `summary`, with their label where known.
pub(super) fn tally(summary: &mut ScoreSummary, outcomes: &[Outcome], label: Option<bool>) {
    for outcome in outcomes {
        match outcome {
            Outcome::Scored(score) => {
                summary.scored += 1;
                if let Some(label) = label {
                    summary.labelled.push((*score, label));
                }
            }
            Outcome::Skipped(skip) => *summary.skipped.entry(*skip).or_default() += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::io::{self, BufReader, Read};
    use std::rc::Rc;

    use msamamba_model::tokens::complement;

    use super::*;
    use crate::infer::score_writer::{OutputKind, Provenance};
    use crate::infer::scorer::tests::{Cpu, model, random_rows, scorer};

    /// A VCF made on demand, one line per read, counting the records handed out.
    struct Generated {
        reference: Vec<u8>,
        next: usize,
        produced: Rc<Cell<usize>>,
    }

    impl Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let line = match self.next {
                0 => "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n".to_string(),
                k if k <= 40 => {
                    self.produced.set(self.produced.get() + 1);
                    // Odd records are deletions: records with nothing to score wait too.
                    let position = 10 + k;
                    let base = char_of(self.reference[position - 1]);
                    match k % 2 {
                        0 => format!(
                            "chr1\t{position}\tv{k}\t{base}\t{}\t.\t.\t.\n",
                            char_of(complement(self.reference[position - 1]))
                        ),
                        _ => format!("chr1\t{position}\tv{k}\t{base}A\t{base}\t.\t.\t.\n"),
                    }
                }
                _ => return Ok(0),
            };
            self.next += 1;
            buf[..line.len()].copy_from_slice(line.as_bytes());
            Ok(line.len())
        }
    }

    /// Counts the rows written, and the most records read but not yet written at any write.
    struct Watching {
        produced: Rc<Cell<usize>>,
        rows: usize,
        most_waiting: Rc<Cell<usize>>,
        text: Rc<std::cell::RefCell<String>>,
    }

    impl Write for Watching {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let waiting = self.produced.get().saturating_sub(self.rows);
            self.most_waiting.set(self.most_waiting.get().max(waiting));
            self.rows += buf.iter().filter(|&&b| b == b'\n').count();
            self.text.borrow_mut().push_str(&String::from_utf8_lossy(buf));
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Scores the 40 generated records on `rows` (20 SNVs, 20 deletions) with `scorer`, 4 per
    /// batch, into a TSV: the summary, the text, and the most records that waited at a write.
    fn score_generated(scorer: &VariantScorer<Cpu>, rows: &[Vec<u8>]) -> (ScoreSummary, String, usize) {
        let produced = Rc::new(Cell::new(0));
        let generated = Generated {
            reference: rows[0].clone(),
            next: 0,
            produced: produced.clone(),
        };
        let mut reader = VcfReader::new(
            "generated.vcf".into(),
            Box::new(BufReader::with_capacity(256, generated)),
        )
        .unwrap();
        let (most_waiting, text) = (Rc::new(Cell::new(0)), Rc::default());
        let out = Watching {
            produced: produced.clone(),
            // The TSV's header line is no record.
            rows: 0,
            most_waiting: most_waiting.clone(),
            text: Rc::clone(&text),
        };
        let provenance = Provenance {
            command: String::new(),
            checkpoint: "run".into(),
            weights_sha256: String::new(),
            context: String::new(),
        };
        let kind = OutputKind {
            vcf: false,
            bgzip: false,
        };
        let writer = ScoreWriter::new(out, kind, reader.header(), &provenance).unwrap();
        let options = ScoreOptions {
            batch_size: 4,
            labels: None,
            out_name: "memory".into(),
            sorted: false,
        };
        let summary = score_vcf(scorer, &mut reader, writer, &options).unwrap();
        let text = text.borrow().clone();
        (summary, text, most_waiting.get())
    }

    #[test]
    fn records_are_written_a_batch_after_they_are_read_not_at_the_end() {
        let rows = random_rows(3, 3, 60);
        let scorer = scorer(&model(false), &rows, 8);
        let (summary, text, most_waiting) = score_generated(&scorer, &rows);
        assert_eq!((summary.records, summary.scored), (40, 20));
        assert_eq!(summary.skipped.get(&Skip::NotSnv), Some(&20));
        // At most one batch of records (4) waits, and the one being read; the header line
        // counts as written, hence the slack of one more.
        assert!(most_waiting <= 6, "{most_waiting} records waited");
        let ids: Vec<&str> = text.lines().skip(1).map(|l| l.split('\t').nth(2).unwrap()).collect();
        let expected: Vec<String> = (1..=40).map(|k| format!("v{k}")).collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn nan_scores_are_written_as_no_score_with_reason_nan_and_not_counted_as_scored() {
        let rows = random_rows(3, 3, 60);
        let (mut model, context) = model(false);
        // Weights that diverged: every logit, so every score, is NaN.
        model.lm_head.weight = model.lm_head.weight.map(|w| w.mul_scalar(f32::NAN));
        let scorer = scorer(&(model, context), &rows, 8);
        let (summary, text, _) = score_generated(&scorer, &rows);
        assert_eq!((summary.records, summary.scored), (40, 0));
        assert_eq!(summary.skipped.get(&Skip::Nan), Some(&20));
        let snvs: Vec<&str> = text.lines().skip(1).filter(|l| !l.ends_with("not_snv")).collect();
        assert_eq!(snvs.len(), 20, "{text}");
        for line in snvs {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields[5..], ["", "nan"], "{line}");
        }
    }

    #[test]
    fn the_first_record_out_of_order_is_refused_with_what_it_follows() {
        let mut order = SortOrder::default();
        for (chrom, position) in [("chr1", 5), ("chr1", 5), ("chr1", 9), ("chr2", 1)] {
            assert_eq!(order.check(chrom, position), Ok(()), "{chrom}:{position}");
        }
        let back = order.check("chr2", 0).unwrap_err();
        assert!(back.contains("chr2:0 comes after chr2:1"), "{back}");
        let again = order.check("chr1", 20).unwrap_err();
        assert!(again.contains("chr1 again after other chromosomes"), "{again}");
    }
}
