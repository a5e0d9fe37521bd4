//! Labelled regions -> classifier batches: the window centred on each region, cut from a MAF
//! or an alignment store, read on the region's strand, its rows in the classifier's order.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::prelude::*;

use crate::data::region::Region;
use crate::labelled_regions::{LabelledRegion, centred_window};
use crate::row_order::RowOrder;
use crate::source::AlignmentSource;

/// A batch for the classifier.
#[derive(Debug, Clone)]
pub struct ClassifierBatch<B: Backend> {
    /// Tokens, target row first: [B, M, L] Int.
    pub tokens: Tensor<B, 3, Int>,
    /// Real rows (true) and padding (false): [B, M] Bool.
    pub row_keep: Tensor<B, 2, Bool>,
    /// 0/1 labels: [B] Int.
    pub labels: Tensor<B, 1, Int>,
}

/// Windows of `len` positions centred on labelled regions, with M rows each.
pub struct LabelledWindows {
    /// The alignment.
    pub source: AlignmentSource,
    /// The label table, for messages.
    pub table: PathBuf,
    /// Window length L.
    pub len: usize,
    /// The classifier's M rows in the source's windows.
    pub order: RowOrder,
}

impl LabelledWindows {
    /// The window of one row of the table, checked to lie inside the alignment.
    pub fn window_of(&self, row: &LabelledRegion) -> Result<Region> {
        let outside = || {
            format!(
                "{}:{}: the {}-bp window centred on {},{},{} is outside the alignment {}",
                self.table.display(),
                row.line,
                self.len,
                row.region.chrom,
                row.region.start,
                row.region.end,
                self.source.describe()
            )
        };
        let window = centred_window(&row.region, self.len).with_context(outside)?;
        if !self.source.covers(&window) {
            bail!(outside());
        }
        Ok(window)
    }

    /// Checks that every row's window lies inside the alignment.
    pub fn check(&self, table: &[LabelledRegion]) -> Result<()> {
        table.iter().try_for_each(|row| self.window_of(row).map(drop))
    }

    /// The batch of `rows` of the table.
    ///
    /// # Shapes
    /// -> tokens [B, M, L] Int, row_keep [B, M] Bool, labels [B] Int
    pub fn batch<B: Backend>(&self, table: &[&LabelledRegion], device: &B::Device) -> Result<ClassifierBatch<B>> {
        let (batch, m, len) = (table.len(), self.order.len(), self.len);
        let mut tokens = Vec::with_capacity(batch * m * len);
        let mut keep = Vec::with_capacity(batch * m);
        for row in table {
            let window = self.window_of(row)?;
            let rows = self
                .source
                .window(&window, row.strand)
                .with_context(|| format!("{}:{}", self.table.display(), row.line))?
                .rows;
            for tokens_of_row in self.order.arrange(&rows) {
                tokens.extend(tokens_of_row.iter().map(|&t| i64::from(t)));
            }
            // A species the source lacks is a row of gaps, as one missing from a block is.
            keep.extend(std::iter::repeat_n(true, m));
        }
        let labels: Vec<i64> = table.iter().map(|row| i64::from(row.label)).collect();
        Ok(ClassifierBatch {
            tokens: Tensor::from_data(TensorData::new(tokens, [batch, m, len]), device),
            row_keep: Tensor::from_data(TensorData::new(keep, [batch, m]), device),
            labels: Tensor::from_data(TensorData::new(labels, [batch]), device),
        })
    }
}
