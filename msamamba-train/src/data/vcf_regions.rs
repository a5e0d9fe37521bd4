//! The records of a bgzipped, indexed VCF whose POS lies in given regions, so that a genome can
//! be scored in shards, one job per slice. For each region the index names the compressed chunks
//! that may hold its records and only those are read. A record belongs to the region holding its
//! POS, not to every region it overlaps, so adjacent shards never share a record; overlapping
//! regions are merged so no record is read twice.
//!
//! noodles' own `IndexedReader::query` borrows its reader for the life of the query; walking the
//! chunks here keeps reader and position in one owned value that `VcfReader` can hold.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::Path;

use noodles_bgzf as bgzf;
use noodles_core::{Position, Region};
use noodles_csi::BinningIndex;
use noodles_vcf::{self as vcf, variant::RecordBuf};

/// One region: its index of reference sequence in the index, and its 1-based inclusive bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Span {
    reference: usize,
    start: Position,
    end: Position,
}

/// Records of the regions, read in the index's chromosome order and by position.
pub struct RegionRecords {
    reader: vcf::io::Reader<bgzf::io::Reader<File>>,
    index: vcf::Index,
    spans: VecDeque<Span>,
    /// The span whose chunks are being read, and what is left of them.
    current: Option<Span>,
    chunks: VecDeque<(bgzf::VirtualPosition, bgzf::VirtualPosition)>,
    /// The end of the chunk being read.
    chunk_end: Option<bgzf::VirtualPosition>,
}

impl RegionRecords {
    /// Opens the bgzipped VCF `path` with its `index` for `regions`, and reads its header.
    /// Regions on a chromosome the index does not know are returned apart, since they hold no
    /// record (the caller says so).
    pub fn open(path: &Path, index: vcf::Index, regions: &[Region]) -> io::Result<(Self, vcf::Header, Vec<Region>)> {
        let mut reader = File::open(path).map(bgzf::io::Reader::new).map(vcf::io::Reader::new)?;
        let header = reader.read_header()?;
        let names = index
            .header()
            .map(|h| h.reference_sequence_names().clone())
            .unwrap_or_default();
        let mut spans = Vec::new();
        let mut unknown = Vec::new();
        for region in regions {
            match names.get_index_of(region.name()) {
                Some(reference) => {
                    let interval = region.interval();
                    spans.push(Span {
                        reference,
                        start: interval.start().unwrap_or(Position::MIN),
                        end: interval.end().unwrap_or(Position::MAX),
                    })
                }
                None => unknown.push(region.clone()),
            }
        }
        Ok((
            Self {
                reader,
                index,
                spans: merged(spans),
                current: None,
                chunks: VecDeque::new(),
                chunk_end: None,
            },
            header,
            unknown,
        ))
    }

    /// Reads the next record of the regions into `record`; false when none is left.
    pub fn read(&mut self, header: &vcf::Header, record: &mut RecordBuf) -> io::Result<bool> {
        loop {
            if let (Some(end), Some(span)) = (self.chunk_end, self.current) {
                if self.reader.get_ref().virtual_position() < end && self.reader.read_record_buf(header, record)? > 0 {
                    if self.holds(span, record) {
                        return Ok(true);
                    }
                    continue;
                }
                self.chunk_end = None;
            }
            if let Some((start, end)) = self.chunks.pop_front() {
                self.reader.get_mut().seek(start)?;
                self.chunk_end = Some(end);
                continue;
            }
            let Some(span) = self.spans.pop_front() else {
                return Ok(false);
            };
            // A whole chromosome has no end: the index refuses an end past its own bins.
            let interval = if span.end == Position::MAX {
                (span.start..).into()
            } else {
                (span.start..=span.end).into()
            };
            let chunks = self.index.query(span.reference, interval)?;
            self.chunks = chunks.iter().map(|c| (c.start(), c.end())).collect();
            self.current = Some(span);
        }
    }

    /// Whether `record` is on `span`'s chromosome with its POS inside it.
    fn holds(&self, span: Span, record: &RecordBuf) -> bool {
        let names = self.index.header().map(|h| h.reference_sequence_names());
        let same_chrom = names
            .and_then(|n| n.get_index_of(record.reference_sequence_name().as_bytes()))
            .is_some_and(|reference| reference == span.reference);
        same_chrom
            && record
                .variant_start()
                .is_some_and(|pos| span.start <= pos && pos <= span.end)
    }
}

/// The spans sorted, overlapping or touching ones merged into one.
fn merged(mut spans: Vec<Span>) -> VecDeque<Span> {
    spans.sort();
    let mut out: VecDeque<Span> = VecDeque::new();
    for span in spans {
        match out.back_mut() {
            Some(last)
                if last.reference == span.reference
                    && usize::from(span.start) <= usize::from(last.end).saturating_add(1) =>
            {
                last.end = last.end.max(span.end);
            }
            _ => out.push_back(span),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_and_touching_regions_merge_and_others_stay_apart() {
        let span = |reference, start: usize, end: usize| Span {
            reference,
            start: Position::new(start).unwrap(),
            end: Position::new(end).unwrap(),
        };
        let spans = vec![
            span(1, 5, 9),
            span(0, 50, 60),
            span(0, 10, 20),
            span(0, 21, 30),
            span(0, 15, 25),
            span(1, 11, 12),
        ];
        assert_eq!(
            Vec::from(merged(spans)),
            [span(0, 10, 30), span(0, 50, 60), span(1, 5, 9), span(1, 11, 12)]
        );
    }
}
