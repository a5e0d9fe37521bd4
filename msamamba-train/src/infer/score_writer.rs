//! Scores written as they come: the input VCF with two INFO fields added (plain or bgzipped,
//! through noodles), or a TSV with one row per ALT.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::num::NonZero;
use std::path::{Path, PathBuf};

use noodles_bgzf as bgzf;
use noodles_vcf::{
    self as vcf,
    header::record::value::{
        Map,
        map::{
            Info,
            info::{Number, Type},
        },
    },
    variant::{
        RecordBuf,
        io::Write as _,
        record_buf::info::field::{Value, value::Array},
    },
};
use sha2::{Digest, Sha256};

use super::skip::{Outcome, Skip};

/// The INFO key of the scores.
pub const SCORE_KEY: &str = "MSAMAMBA";
/// The INFO key of the reasons an ALT has no score.
pub const SKIP_KEY: &str = "MSAMAMBA_SKIP";
/// The TSV's header line.
pub const TSV_HEADER: &str = "#chrom\tpos\tid\tref\talt\tscore\treason";

/// The output's format, from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputKind {
    /// VCF (else TSV).
    pub vcf: bool,
    /// bgzip-compressed.
    pub bgzip: bool,
}

impl OutputKind {
    /// `.vcf`, `.vcf.gz` or `.vcf.bgz`: VCF; anything else TSV. A `.gz` or `.bgz` ending is
    /// bgzipped, which gzip tools read as well and tabix can index.
    pub fn of(path: &Path) -> Self {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let bgzip = name.ends_with(".gz") || name.ends_with(".bgz");
        let stem = name.trim_end_matches(".gz").trim_end_matches(".bgz");
        Self {
            vcf: stem.ends_with(".vcf"),
            bgzip,
        }
    }
}

/// Where the scores came from, written into a VCF's header.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// The command line.
    pub command: String,
    /// The checkpoint (run directory).
    pub checkpoint: PathBuf,
    /// SHA-256 of the model's weights file, hex.
    pub weights_sha256: String,
    /// How the windows were cut, for the score's description.
    pub context: String,
}

impl Provenance {
    /// The provenance of scores from `checkpoint`, whose weights are in `weights`.
    pub fn new(command: String, checkpoint: &Path, weights: &Path, context: String) -> io::Result<Self> {
        Ok(Self {
            command,
            checkpoint: checkpoint.to_path_buf(),
            weights_sha256: sha256_of(weights)?,
            context,
        })
    }
}

/// The SHA-256 of a file, hex, read in pieces (weights may be large).
fn sha256_of(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut BufReader::new(File::open(path)?), &mut hasher)?;
    Ok(hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect())
}

/// A writer that must be ended explicitly: bgzip compressed on worker threads.
trait Finish: Write {
    /// Writes what is buffered and bgzip's end-of-file block, and waits for the workers.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

impl<W: Write + Send + 'static> Finish for bgzf::io::MultithreadedWriter<W> {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        bgzf::io::MultithreadedWriter::finish(&mut self)?.flush()
    }
}

/// Plain or bgzipped bytes.
enum Sink<W: Write> {
    Plain(W),
    Bgzf(bgzf::io::Writer<W>),
    Threaded(Box<dyn Finish>),
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(w) => w.write(buf),
            Self::Bgzf(w) => w.write(buf),
            Self::Threaded(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(w) => w.flush(),
            Self::Bgzf(w) => w.flush(),
            Self::Threaded(w) => w.flush(),
        }
    }
}

impl<W: Write> Sink<W> {
    /// Writes what is buffered (and bgzip's end-of-file block).
    fn finish(self) -> io::Result<()> {
        match self {
            Self::Plain(mut w) => w.flush(),
            Self::Bgzf(w) => w.finish()?.flush(),
            Self::Threaded(w) => w.finish(),
        }
    }
}

/// Writes one input record at a time with its outcomes.
pub struct ScoreWriter<W: Write> {
    sink: Sink<W>,
    /// The output's header when it is a VCF (`None`: a TSV).
    vcf_header: Option<vcf::Header>,
}

impl<W: Write> ScoreWriter<W> {
    /// Starts the output in `inner` and writes its header: for a VCF, the input's `header` with
    /// the two INFO fields and the provenance lines added.
    pub fn new(inner: W, kind: OutputKind, header: &vcf::Header, provenance: &Provenance) -> io::Result<Self> {
        let sink = if kind.bgzip {
            Sink::Bgzf(bgzf::io::Writer::new(inner))
        } else {
            Sink::Plain(inner)
        };
        Self::start(sink, kind, header, provenance)
    }

    /// As [`ScoreWriter::new`], bgzip compressing on `workers` threads (one: on this thread).
    pub fn with_workers(
        inner: W,
        workers: NonZero<usize>,
        kind: OutputKind,
        header: &vcf::Header,
        provenance: &Provenance,
    ) -> io::Result<Self>
    where
        W: Send + 'static,
    {
        if kind.bgzip && workers.get() > 1 {
            let writer = bgzf::io::MultithreadedWriter::with_worker_count(workers, inner);
            Self::start(Sink::Threaded(Box::new(writer)), kind, header, provenance)
        } else {
            Self::new(inner, kind, header, provenance)
        }
    }

    /// Writes the header to `sink`.
    fn start(mut sink: Sink<W>, kind: OutputKind, header: &vcf::Header, provenance: &Provenance) -> io::Result<Self> {
        let vcf_header = if kind.vcf {
            let header = scored_header(header, provenance)?;
            vcf::io::Writer::new(&mut sink).write_header(&header)?;
            Some(header)
        } else {
            writeln!(sink, "{TSV_HEADER}")?;
            None
        };
        Ok(Self { sink, vcf_header })
    }

    /// Writes `record` with `outcomes`, one per ALT in order.
    pub fn write(&mut self, record: &mut RecordBuf, outcomes: &[Outcome]) -> io::Result<()> {
        let sink = &mut self.sink;
        match &self.vcf_header {
            Some(header) => {
                let has_alts = !record.alternate_bases().as_ref().is_empty();
                let info = record.info_mut().as_mut();
                // A record scored before gets this run's values only.
                info.shift_remove(SCORE_KEY);
                info.shift_remove(SKIP_KEY);
                let scores: Vec<Option<f32>> = outcomes
                    .iter()
                    .map(|o| if let Outcome::Scored(s) = o { Some(*s) } else { None })
                    .collect();
                let reasons: Vec<Option<String>> = outcomes
                    .iter()
                    .map(|o| {
                        if let Outcome::Skipped(skip) = o {
                            Some(skip.to_string())
                        } else {
                            None
                        }
                    })
                    .collect();
                // Number=A: nothing for a record without ALT; a field all missing is left out.
                if scores.iter().any(Option::is_some) {
                    info.insert(SCORE_KEY.into(), Some(Value::Array(Array::Float(scores))));
                }
                if has_alts && reasons.iter().any(Option::is_some) {
                    info.insert(SKIP_KEY.into(), Some(Value::Array(Array::String(reasons))));
                }
                // noodles' writer holds no state between records: one per record costs nothing.
                vcf::io::Writer::new(sink).write_variant_record(header, &*record)
            }
            None => {
                let ids: Vec<&str> = record.ids().as_ref().iter().map(String::as_str).collect();
                let ids = if ids.is_empty() { ".".to_string() } else { ids.join(";") };
                let position = record.variant_start().map_or(0, usize::from);
                let prefix = format!(
                    "{}\t{position}\t{ids}\t{}",
                    record.reference_sequence_name(),
                    record.reference_bases()
                );
                let alts = record.alternate_bases().as_ref();
                if alts.is_empty() {
                    return writeln!(sink, "{prefix}\t.\t\t{}", Skip::NoAlt);
                }
                for (alt, outcome) in alts.iter().zip(outcomes) {
                    match outcome {
                        Outcome::Scored(score) => writeln!(sink, "{prefix}\t{alt}\t{score}\t")?,
                        Outcome::Skipped(skip) => writeln!(sink, "{prefix}\t{alt}\t\t{skip}")?,
                    }
                }
                Ok(())
            }
        }
    }

    /// Ends the output (bgzip's end-of-file block) and flushes it.
    pub fn finish(self) -> io::Result<()> {
        self.sink.finish()
    }
}

/// The input's header with the score fields and provenance lines added.
fn scored_header(input: &vcf::Header, provenance: &Provenance) -> io::Result<vcf::Header> {
    let mut header = input.clone();
    header.infos_mut().insert(
        SCORE_KEY.into(),
        Map::<Info>::new(
            Number::AlternateBases,
            Type::Float,
            format!(
                "MSAMamba zero-shot score, logit(alt) - logit(ref) at the masked site, mean of both strands ({})",
                provenance.context
            ),
        ),
    );
    header.infos_mut().insert(
        SKIP_KEY.into(),
        Map::<Info>::new(
            Number::AlternateBases,
            Type::String,
            "Why an ALT has no MSAMAMBA score: not_snv, chrom_not_in_alignment, outside_alignment, ref_mismatch or nan",
        ),
    );
    // Header lines are one line each: a newline in an argument would break the file.
    let one_line = |text: &str| text.replace(['\n', '\r'], " ");
    let lines = [
        ("msamamba_version", env!("CARGO_PKG_VERSION").to_string()),
        ("msamamba_command", one_line(&provenance.command)),
        (
            "msamamba_checkpoint",
            one_line(&provenance.checkpoint.display().to_string()),
        ),
        ("msamamba_checkpoint_sha256", provenance.weights_sha256.clone()),
    ];
    for (key, value) in lines {
        let key = key
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{key}: {e}")))?;
        header
            .insert(key, vcf::header::record::Value::from(value))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_pick_the_format_and_compression() {
        let kind = |name: &str| OutputKind::of(Path::new(name));
        assert_eq!(
            kind("out/x.vcf"),
            OutputKind {
                vcf: true,
                bgzip: false
            }
        );
        assert_eq!(kind("x.VCF.gz"), OutputKind { vcf: true, bgzip: true });
        assert_eq!(kind("x.vcf.bgz"), OutputKind { vcf: true, bgzip: true });
        assert_eq!(
            kind("x.tsv"),
            OutputKind {
                vcf: false,
                bgzip: false
            }
        );
        assert_eq!(
            kind("x.tsv.gz"),
            OutputKind {
                vcf: false,
                bgzip: true
            }
        );
    }

    fn input() -> (vcf::Header, RecordBuf) {
        let text = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\n\
                    chr1\t5\trs1\tA\tG,AT,C\t30\tPASS\tX=y\tGT\t0/1\n";
        let mut reader = vcf::io::Reader::new(text.as_bytes());
        let header = reader.read_header().unwrap();
        let mut record = RecordBuf::default();
        reader.read_record_buf(&header, &mut record).unwrap();
        (header, record)
    }

    fn provenance() -> Provenance {
        Provenance {
            command: "msamamba score\n--vcf x".into(),
            checkpoint: "run".into(),
            weights_sha256: "ab12".into(),
            context: "causal".into(),
        }
    }

    fn written(kind: OutputKind) -> Vec<u8> {
        let (header, mut record) = input();
        let mut bytes = Vec::new();
        let mut writer = ScoreWriter::new(&mut bytes, kind, &header, &provenance()).unwrap();
        let outcomes = [
            Outcome::Scored(-1.5),
            Outcome::Skipped(Skip::NotSnv),
            Outcome::Scored(0.25),
        ];
        writer.write(&mut record, &outcomes).unwrap();
        writer.finish().unwrap();
        bytes
    }

    #[test]
    fn vcf_records_keep_their_columns_and_get_values_per_alt() {
        let text = String::from_utf8(written(OutputKind {
            vcf: true,
            bgzip: false,
        }))
        .unwrap();
        assert!(text.contains("##msamamba_command=msamamba score --vcf x\n"), "{text}");
        assert!(
            text.contains("##msamamba_checkpoint=run\n##msamamba_checkpoint_sha256=ab12\n"),
            "{text}"
        );
        assert!(text.contains("##INFO=<ID=MSAMAMBA,Number=A,Type=Float,"), "{text}");
        let record = text.lines().last().unwrap();
        assert_eq!(
            record,
            "chr1\t5\trs1\tA\tG,AT,C\t30\tPASS\tX=y;MSAMAMBA=-1.5,.,0.25;MSAMAMBA_SKIP=.,not_snv,.\tGT\t0/1"
        );
    }

    #[test]
    fn bgzipped_vcf_reads_back_through_bgzf() {
        let bytes = written(OutputKind { vcf: true, bgzip: true });
        let mut text = String::new();
        io::Read::read_to_string(&mut bgzf::io::Reader::new(&bytes[..]), &mut text).unwrap();
        assert!(
            text.ends_with("MSAMAMBA=-1.5,.,0.25;MSAMAMBA_SKIP=.,not_snv,.\tGT\t0/1\n"),
            "{text}"
        );
        // The 28-byte BGZF end-of-file block closes the file.
        assert!(bytes.ends_with(&[0x1b, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    }

    #[test]
    fn bgzip_on_worker_threads_writes_the_same_text() {
        let (header, mut record) = input();
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kind = OutputKind { vcf: true, bgzip: true };
        let workers = NonZero::new(3).unwrap();
        let mut writer =
            ScoreWriter::with_workers(Shared(buffer.clone()), workers, kind, &header, &provenance()).unwrap();
        writer
            .write(
                &mut record,
                &[
                    Outcome::Scored(-1.5),
                    Outcome::Skipped(Skip::NotSnv),
                    Outcome::Scored(0.25),
                ],
            )
            .unwrap();
        writer.finish().unwrap();
        let threaded = buffer.lock().unwrap().clone();
        let inflate = |bytes: &[u8]| {
            let mut text = String::new();
            io::Read::read_to_string(&mut bgzf::io::Reader::new(bytes), &mut text).unwrap();
            text
        };
        assert_eq!(inflate(&threaded), inflate(&written(kind)));
        assert!(threaded.ends_with(&[0x1b, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    }

    /// A byte buffer the test keeps a handle on while the writer owns the other.
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn tsv_has_one_row_per_alt_with_a_reason_when_unscored() {
        let text = String::from_utf8(written(OutputKind {
            vcf: false,
            bgzip: false,
        }))
        .unwrap();
        assert_eq!(
            text,
            format!(
                "{TSV_HEADER}\nchr1\t5\trs1\tA\tG\t-1.5\t\nchr1\t5\trs1\tA\tAT\t\tnot_snv\nchr1\t5\trs1\tA\tC\t0.25\t\n"
            )
        );
    }
}
