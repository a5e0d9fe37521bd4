//! Per-position embeddings of the target row: a pre-trained backbone loaded once with its
//! alignment, run over one region at a time.

use std::path::Path;

use anyhow::{Result, anyhow};
use burn::prelude::*;
use msamamba_kernels::KernelBackend;
use msamamba_model::MsaMamba;

use crate::data::maf::Strand;
use crate::data::region::Region;
use crate::data::source::AlignmentSource;
use crate::train::pretrain::PretrainConfig;
use crate::train::weights::load_backbone;
use crate::windows::row_order::RowOrder;

/// A backbone and the alignment it reads regions from.
pub struct Embedder<B: KernelBackend> {
    model: MsaMamba<B>,
    source: AlignmentSource,
    order: RowOrder,
    width: usize,
    device: B::Device,
}

impl<B: KernelBackend> Embedder<B> {
    /// Loads the run `checkpoint` on `device`; `open` gives the alignment and the model's rows
    /// in it, from the run's config.
    pub fn load(
        checkpoint: &Path,
        open: impl FnOnce(&PretrainConfig) -> Result<(AlignmentSource, RowOrder)>,
        device: &B::Device,
    ) -> Result<Self> {
        let (config, model) = load_backbone::<B>(checkpoint, device)?;
        let (source, order) = open(&config)?;
        Ok(Self {
            model,
            source,
            order,
            width: config.model.d_model,
            device: device.clone(),
        })
    }

    /// D, the width of each position's embedding.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The model's rows, target first.
    pub fn species(&self) -> &[String] {
        self.order.species()
    }

    /// The embedding of `region` read on `strand`, position-major: L x D values.
    pub fn embed(&self, region: &Region, strand: Strand) -> Result<Vec<f32>> {
        let window = self.source.window(region, strand)?;
        let (m, len) = (self.order.len(), window.len());
        let tokens: Vec<i64> = self
            .order
            .arrange(&window.rows)
            .iter()
            .flat_map(|r| r.iter().map(|&t| i64::from(t)))
            .collect();
        let hidden = self.model.forward_target(
            Tensor::from_data(TensorData::new(tokens, [1, m, len]), &self.device),
            Tensor::from_data(TensorData::new(vec![true; m], [1, m]), &self.device),
            false,
        ); // [1, L, D]
        let values = hidden
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| anyhow!("embedding {region}: {e:?}"))?;
        msamamba_kernels::device_failure::after_read::<B>(&self.device)?;
        Ok(values)
    }
}
