//! SNVs from VCF files, and errors that name the line.

mod common;

use common::{gzip, scratch_dir};
use msamamba_train::vcf::read_snvs;

const HEADER: &str = "##fileformat=VCFv4.2\n##contig=<ID=chr10>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";

#[test]
fn snvs_are_split_per_alt_and_other_records_are_counted_as_skipped() {
    let body = "chr10\t7\trs1\tc\tG,t\t.\tPASS\tDMG=1\n\
                chr10\t9\t.\tAT\tA\t.\t.\t.\n\
                chr10\t12\tv3\tG\t<DEL>\t.\t.\t.\n\
                chr10\t15\tv4\tA\tA\t.\t.\t.\n\
                chr10\t16\t.\tA\tC\t.\t.\t.\n";
    let dir = scratch_dir("vcf-snvs");
    let path = dir.join("v.vcf");
    std::fs::write(&path, format!("{HEADER}{body}")).unwrap();
    let variants = read_snvs(&path).unwrap();
    let got: Vec<_> = variants
        .snvs
        .iter()
        .map(|s| {
            (
                s.chrom.as_str(),
                s.pos,
                s.reference,
                s.alternative,
                s.line,
                s.id.as_str(),
                s.info.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("chr10", 7, b'C', b'G', 4, "rs1", "DMG=1"),
            ("chr10", 7, b'C', b'T', 4, "rs1", "DMG=1"),
            ("chr10", 16, b'A', b'C', 8, ".", "."),
        ]
    );
    // The indel, the symbolic allele and ALT == REF are not substitutions.
    assert_eq!(variants.skipped, 3);
    assert_eq!(variants.header.contigs().len(), 1);
    let gz = dir.join("v.vcf.gz");
    std::fs::write(&gz, gzip(format!("{HEADER}{body}").as_bytes())).unwrap();
    assert_eq!(read_snvs(&gz).unwrap().snvs, variants.snvs);
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
        let err = read_snvs(&path).err().unwrap_or_else(|| panic!("{name} was accepted"));
        assert_eq!(err.line, line, "{name}: {err}");
        assert!(
            err.to_string().starts_with(&format!("{}:{line}: ", path.display())),
            "{err}"
        );
    }
    let err = read_snvs(&dir.join("absent.vcf")).err().unwrap();
    assert_eq!(err.line, 0);
}
