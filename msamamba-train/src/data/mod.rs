//! Alignment data in: MAF, FASTA, BED, VCF, variant-table and label-table readers, the alignment store, and the
//! projection of a MAF onto a target species' window (`projection`).

pub mod alignment;
pub mod bed;
pub mod fasta;
pub mod import;
pub mod input;
pub mod labels;
pub mod maf;
pub mod projection;
pub mod region;
pub mod source;
pub mod span;
pub mod store;
pub mod variant_table;
pub mod vcf;
pub mod vcf_index;
pub mod vcf_regions;
