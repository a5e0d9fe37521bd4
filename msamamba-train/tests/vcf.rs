//! VCF records streamed one at a time, and errors that name the file and line.

mod common;

use common::{gzip, scratch_dir};
use msamamba_train::data::vcf::{VcfError, VcfReader};
use noodles_vcf::variant::RecordBuf;

const HEADER: &str = "##fileformat=VCFv4.2\n##contig=<ID=chr10>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";

/// Every record of `path`, as `line chrom:pos ALTs INFO-keys`.
fn records(path: &std::path::Path) -> Vec<String> {
    let mut reader = VcfReader::open(path).unwrap();
    let mut record = RecordBuf::default();
    let mut out = Vec::new();
    while let Some(line) = reader.read(&mut record).unwrap() {
        out.push(format!(
            "{line} {}:{} {} {}",
            record.reference_sequence_name(),
            record.variant_start().map_or(0, usize::from),
            record.alternate_bases().as_ref().join(","),
            record.info().keys().cloned().collect::<Vec<_>>().join(","),
        ));
    }
    out
}

#[test]
fn records_are_read_one_at_a_time_with_their_lines_from_plain_and_gzip_files() {
    let body = "chr10\t7\trs1\tc\tG,t\t.\tPASS\tDMG=1\n\
                chr10\t9\t.\tAT\tA\t.\t.\t.\n\
                chr10\t12\tv3\tG\t<DEL>\t.\t.\t.\n";
    let dir = scratch_dir("vcf-records");
    let path = dir.join("v.vcf");
    std::fs::write(&path, format!("{HEADER}{body}")).unwrap();
    let got = records(&path);
    assert_eq!(got, ["4 chr10:7 G,t DMG", "5 chr10:9 A ", "6 chr10:12 <DEL> "]);
    assert_eq!(VcfReader::open(&path).unwrap().header().contigs().len(), 1);
    let gz = dir.join("v.vcf.gz");
    std::fs::write(&gz, gzip(format!("{HEADER}{body}").as_bytes())).unwrap();
    assert_eq!(records(&gz), got);
}

/// Reads every record of `path`; the first error.
fn read_all(path: &std::path::Path) -> Result<(), VcfError> {
    let mut reader = VcfReader::open(path)?;
    let mut record = RecordBuf::default();
    while reader.read(&mut record)?.is_some() {}
    Ok(())
}

#[test]
fn malformed_records_and_headers_name_file_and_line() {
    let dir = scratch_dir("vcf-errors");
    let cases = [
        (
            "pos.vcf",
            format!("{HEADER}chr10\t7\t.\tC\tG\t.\t.\t.\nchr10\tseven\t.\tC\tG\t.\t.\t.\n"),
            5,
        ),
        ("fields.vcf", format!("{HEADER}chr10\t7\t.\tC\n"), 4),
        ("noheader.vcf", "chr10\t7\t.\tC\tG\t.\t.\t.\n".to_string(), 1),
    ];
    for (name, text, line) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let err = read_all(&path).err().unwrap_or_else(|| panic!("{name} was accepted"));
        assert_eq!(err.line, line, "{name}: {err}");
        assert!(
            err.to_string().starts_with(&format!("{}:{line}: ", path.display())),
            "{err}"
        );
    }
    let err = read_all(&dir.join("absent.vcf")).err().unwrap();
    assert_eq!(err.line, 0);
}
