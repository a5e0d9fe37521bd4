//! Labelled regions -> classifier batches: the window centred on each region, cut from a MAF
//! or an alignment store, read on the region's strand, its rows in the classifier's order.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;

use crate::data::labels::{LabelledRegion, centred_window};
use crate::data::region::Region;
use crate::data::source::AlignmentSource;
use crate::windows::epoch_loader::EpochItems;
use crate::windows::row_order::RowOrder;

/// A batch for the classifier.
#[derive(Debug, Clone)]
pub struct ClassifierBatch<B: Backend> {
    /// Tokens, target row first: [B, M, L] Int.
    pub tokens: Tensor<B, 3, Int>,
    /// Real rows (true) and padding (false): [B, M] Bool.
    pub row_keep: Tensor<B, 2, Bool>,
    /// 0/1 labels: \[B\] Int.
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

    /// The window of one row of the table, read on its strand, its rows in the classifier's
    /// order; a species the source lacks is a row of gaps, as one missing from a block is.
    pub fn item(&self, row: &LabelledRegion) -> Result<ClassifierItem> {
        let window = self.window_of(row)?;
        let rows = self
            .source
            .window(&window, row.strand)
            .with_context(|| format!("{}:{}", self.table.display(), row.line))?
            .rows;
        Ok(ClassifierItem {
            tokens: self.order.arrange(&rows).concat(),
            label: row.label,
        })
    }

    /// Every row of `table`, read now (fine-tuning tables are small; a region that cannot be
    /// read fails here, before training).
    pub fn items(&self, table: &[&LabelledRegion]) -> Result<Vec<ClassifierItem>> {
        table.iter().map(|row| self.item(row)).collect()
    }

    /// What stacks this source's items into batches.
    pub fn batcher(&self) -> ClassifierBatcher {
        ClassifierBatcher {
            rows: self.order.len(),
            len: self.len,
        }
    }

    /// The batch of `rows` of the table.
    ///
    /// # Shapes
    /// -> tokens [B, M, L] Int, row_keep [B, M] Bool, labels \[B\] Int
    pub fn batch<B: Backend>(&self, table: &[&LabelledRegion], device: &B::Device) -> Result<ClassifierBatch<B>> {
        Ok(self.batcher().batch(self.items(table)?, device))
    }
}

/// One labelled window, read: its M rows of L tokens, target first, and its label.
#[derive(Debug, Clone)]
pub struct ClassifierItem {
    /// Tokens [M * L], row-major.
    pub tokens: Vec<u8>,
    /// The region's label.
    pub label: bool,
}

/// Items in memory, for the epoch loader (the seed is unused: nothing of an item is random).
impl EpochItems for Vec<ClassifierItem> {
    type Item = ClassifierItem;

    fn count(&self) -> u64 {
        self.len() as u64
    }

    fn item(&self, k: u64, _seed: u64) -> Result<ClassifierItem> {
        Ok(self[k as usize].clone())
    }
}

/// Stacks [`ClassifierItem`]s of `rows` x `len` tokens into a [`ClassifierBatch`]; every row is
/// real (the classifier's rows are fixed, absent species read as gaps).
#[derive(Debug, Clone)]
pub struct ClassifierBatcher {
    /// Rows M.
    pub rows: usize,
    /// Window length L.
    pub len: usize,
}

impl<B: Backend> Batcher<B, ClassifierItem, ClassifierBatch<B>> for ClassifierBatcher {
    fn batch(&self, items: Vec<ClassifierItem>, device: &B::Device) -> ClassifierBatch<B> {
        let batch = items.len();
        let tokens: Vec<i64> = items
            .iter()
            .flat_map(|item| item.tokens.iter().map(|&t| i64::from(t)))
            .collect();
        let labels: Vec<i64> = items.iter().map(|item| i64::from(item.label)).collect();
        ClassifierBatch {
            tokens: Tensor::from_data(TensorData::new(tokens, [batch, self.rows, self.len]), device),
            row_keep: Tensor::from_data(
                TensorData::new(vec![true; batch * self.rows], [batch, self.rows]),
                device,
            ),
            labels: Tensor::from_data(TensorData::new(labels, [batch]), device),
        }
    }
}
