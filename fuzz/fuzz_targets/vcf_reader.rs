//! Arbitrary bytes as a VCF, through what `score` does with one before the model: noodles' header
//! and records read by our reader, each record's alleles classified, its label read, and the
//! record written back as VCF and TSV with an outcome per ALT. Every input must end in records, a
//! clean end or a typed error naming the line, never a panic or a hang.
#![no_main]

use std::io::{BufRead, Cursor};
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use msamamba_train::data::vcf::VcfReader;
use msamamba_train::infer::{LabelSpec, Outcome, OutputKind, Provenance, ScoreWriter, Skip, snv_base};
use noodles_vcf::variant::RecordBuf;

fuzz_target!(|data: &[u8]| {
    let input: Box<dyn BufRead> = Box::new(Cursor::new(data.to_vec()));
    let Ok(mut reader) = VcfReader::new(PathBuf::from("fuzz.vcf"), input) else {
        return;
    };
    let provenance = Provenance {
        command: "fuzz".into(),
        checkpoint: PathBuf::from("run"),
        weights_sha256: String::new(),
        context: "fuzz".into(),
    };
    let kinds = [OutputKind { vcf: true, bgzip: false }, OutputKind { vcf: false, bgzip: false }];
    let mut writers: Vec<_> = kinds
        .into_iter()
        .filter_map(|kind| ScoreWriter::new(std::io::sink(), kind, reader.header(), &provenance).ok())
        .collect();
    let labels: [LabelSpec; 2] = ["info:CLNSIG".parse().unwrap(), "id:rs".parse().unwrap()];
    let mut record = RecordBuf::default();
    // A reader that reports an error is done; it must not be asked again.
    while let Ok(Some(_)) = reader.read(&mut record) {
        let reference = snv_base(record.reference_bases());
        let outcomes: Vec<Outcome> = record
            .alternate_bases()
            .as_ref()
            .iter()
            .map(|alt| match (reference, snv_base(alt)) {
                (Some(r), Some(a)) if r != a => Outcome::Scored(f32::from(a) - f32::from(r)),
                _ => Outcome::Skipped(Skip::NotSnv),
            })
            .collect();
        for spec in &labels {
            let _ = spec.label(&record);
        }
        for writer in &mut writers {
            let _ = writer.write(&mut record, &outcomes);
        }
    }
});
