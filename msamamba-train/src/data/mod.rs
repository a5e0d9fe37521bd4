//! Alignment data: MAF and FASTA readers and the projection of a MAF onto a target species'
//! window (DESIGN.md, "MAF projection").

pub mod bed;
pub mod fasta;
pub mod import;
pub mod input;
pub mod maf;
pub mod region;
pub mod span;
pub mod store;
pub mod window;
