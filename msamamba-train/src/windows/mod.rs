//! Alignment windows -> batches: windows tiled over an alignment or a region list with the
//! held-out split, the rows of a model in a source, MLM and classifier batches, and the loader
//! that walks them epoch by epoch.

pub mod classifier_batch;
pub mod epoch_loader;
pub mod mlm_batch;
pub mod row_order;
pub mod tiling;
