//! Windows by tiling and over region lists, the held-out split, and BED region files.

mod common;

use common::{fixture, scratch_dir};
use msamamba_train::data::alignment::Alignment;
use msamamba_train::data::bed::read_bed;
use msamamba_train::data::maf::Strand;
use msamamba_train::data::region::Region;
use msamamba_train::windows::tiling::{WindowSet, hold_out, tile_alignment, tile_extents, windows_in_regions};

fn all(set: &WindowSet) -> Vec<(String, u64, u64)> {
    (0..set.count())
        .map(|k| set.region(k).unwrap())
        .map(|r| (r.chrom, r.start, r.end))
        .collect()
}

fn region(chrom: &str, start: u64, end: u64) -> Region {
    Region {
        chrom: chrom.into(),
        start,
        end,
    }
}

#[test]
fn tiling_keeps_exactly_the_windows_with_enough_target_bases() {
    // Projected onto rat, the mouse-anchored alignment has gaps: the tiling splits into runs.
    let alignment = Alignment::from_maf(&fixture("ucsc_mm9_chr10_big.maf"), "rn4", None, None).unwrap();
    let set = tile_alignment(&alignment, 64, 16, 48);
    let expected: Vec<_> = alignment
        .chromosomes
        .iter()
        .flat_map(|chrom| {
            let target = &chrom.rows[0];
            (0..target.len().saturating_sub(63))
                .step_by(16)
                .filter(|&o| target[o..o + 64].iter().filter(|&&t| t != 0).count() >= 48)
                .map(|o| (chrom.chrom.clone(), chrom.start + o as u64, chrom.start + o as u64 + 64))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(expected.len() > 100, "{}", expected.len());
    assert_eq!(all(&set), expected);
    assert!(set.runs().len() > alignment.chromosomes.len(), "{}", set.runs().len());
    assert_eq!(set.region(set.count()), None);
}

#[test]
fn held_out_windows_never_share_a_position_with_training_windows() {
    let extents = [region("c1", 100, 1100), region("c2", 0, 500)];
    let set = tile_extents(&extents, 50, 7);
    assert_eq!(set.extents(), [region("c1", 100, 1095), region("c2", 0, 498)]);
    let (train, valid) = hold_out(&set, &extents, 0.25);
    // Boundaries: c1 at 100 + 750 = 850, c2 at 375.
    let boundary = |chrom: &str| if chrom == "c1" { 850 } else { 375 };
    let windows = all(&set);
    let expected_train: Vec<_> = windows.iter().filter(|w| w.2 <= boundary(&w.0)).cloned().collect();
    let expected_valid: Vec<_> = windows.iter().filter(|w| w.1 >= boundary(&w.0)).cloned().collect();
    assert_eq!(all(&train), expected_train);
    assert_eq!(all(&valid), expected_valid);
    assert!(!expected_train.is_empty() && !expected_valid.is_empty());
    assert!(
        train.count() + valid.count() < set.count(),
        "straddling windows go to neither"
    );
}

#[test]
fn region_lists_are_tiled_or_centred_and_checked_against_the_alignment() {
    let dir = scratch_dir("bed-windows");
    let bed = dir.join("regions.bed");
    std::fs::write(
        &bed,
        "track name=test\n# chosen windows\nc1\t100\t300\tpromoter\n\nc1 1075 1085\nc2\t0\t10\n",
    )
    .unwrap();
    let regions = read_bed(&bed).unwrap();
    assert_eq!(regions.iter().map(|r| r.line).collect::<Vec<_>>(), [3, 5, 6]);
    let extents = [region("c1", 100, 1100), region("c2", 0, 500)];
    let set = windows_in_regions(&regions, &extents, 50, 40).unwrap();
    assert_eq!(
        all(&set),
        [
            // 100..300 tiled every 40 bp.
            ("c1".into(), 100, 150),
            ("c1".into(), 140, 190),
            ("c1".into(), 180, 230),
            ("c1".into(), 220, 270),
            // Centred on 1080 would end past 1100: moved inside.
            ("c1".into(), 1050, 1100),
            // Centred on 5 would start before 0.
            ("c2".into(), 0, 50),
        ]
    );
    std::fs::write(&bed, "c1\t100\t300\nc3\t0\t100\n").unwrap();
    let err = windows_in_regions(&read_bed(&bed).unwrap(), &extents, 50, 40).unwrap_err();
    assert!(err.to_string().contains("line 2: region c3:1-100 is outside"), "{err}");
}

#[test]
fn bed_errors_name_file_and_line() {
    let dir = scratch_dir("bed-errors");
    let cases = [
        ("c1\t0\t10\nc1\tten\t20\n", 2, "start `ten`"),
        ("c1\t30\t20\n", 1, "not before end"),
        ("# header\nc1\t5\n", 2, "no end column"),
        ("# nothing\n", 0, "no regions"),
        (
            "c1\t0\t10\tr1\t0\t+\nc1\t10\t20\tr2\t0\tx\n",
            2,
            "strand `x` is not +, - or .",
        ),
    ];
    for (i, (text, line, reason)) in cases.into_iter().enumerate() {
        let path = dir.join(format!("{i}.bed"));
        std::fs::write(&path, text).unwrap();
        let err = read_bed(&path).unwrap_err();
        assert_eq!(err.line, line, "{err}");
        // A whole-file error (line 0) names the file alone.
        let at = if line > 0 { format!(":{line}") } else { String::new() };
        assert!(
            err.to_string().starts_with(&format!("{}{at}: ", path.display())),
            "{err}"
        );
        assert!(err.to_string().contains(reason), "{err}");
    }
    assert_eq!(read_bed(&dir.join("absent.bed")).unwrap_err().line, 0);
}

#[test]
fn bed_strands_read_as_written_and_dot_or_none_as_forward() {
    let dir = scratch_dir("bed-strands");
    let path = dir.join("strands.bed");
    std::fs::write(
        &path,
        "c1\t0\t10\ta\t0\t-\nc1\t0\t10\tb\t0\t+\nc1\t0\t10\tc\t0\t.\nc1\t0\t10\n",
    )
    .unwrap();
    let strands: Vec<_> = read_bed(&path).unwrap().into_iter().map(|r| r.strand).collect();
    assert_eq!(
        strands,
        [Strand::Reverse, Strand::Forward, Strand::Forward, Strand::Forward]
    );
}

#[test]
fn thinning_spreads_windows_evenly() {
    let set = tile_extents(&[region("c1", 0, 1000)], 10, 10);
    assert_eq!(set.count(), 100);
    let thin = set.thin(10);
    assert_eq!(
        all(&thin),
        (0..10)
            .map(|k| ("c1".to_string(), k * 100, k * 100 + 10))
            .collect::<Vec<_>>()
    );
    assert_eq!(set.thin(1000), set);
}
