use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::tanh;
use msamamba_kernels::KernelBackend;

use crate::msa_mamba::{MsaMamba, MsaMambaConfig};

/// Classification head for fine-tuning: pool the last position of the target row
/// (linear + tanh), dropout, then a linear layer to one logit for BCE.
#[derive(Config, Debug)]
pub struct PoolerHeadConfig {
    /// Model width D.
    #[config(default = 128)]
    pub d_model: usize,
    /// Dropout between the pooler and the classifier.
    #[config(default = 0.25)]
    pub dropout: f64,
}

/// See [`PoolerHeadConfig`].
#[derive(Module, Debug)]
pub struct PoolerHead<B: Backend> {
    /// D -> D, followed by tanh.
    pub pooler: Linear<B>,
    /// Dropout on the pooled vector.
    pub dropout: Dropout,
    /// D -> 1 logit.
    pub classifier: Linear<B>,
}

impl PoolerHeadConfig {
    /// Initialises the head.
    pub fn init<B: Backend>(&self, device: &B::Device) -> PoolerHead<B> {
        PoolerHead {
            pooler: LinearConfig::new(self.d_model, self.d_model).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            classifier: LinearConfig::new(self.d_model, 1).init(device),
        }
    }
}

impl<B: Backend> PoolerHead<B> {
    /// # Shapes
    /// hidden: [B, L, D] (target row) -> logits: \[B\]
    pub fn forward(&self, hidden: Tensor<B, 3>) -> Tensor<B, 1> {
        let [batch, len, dim] = hidden.dims();
        let last = hidden.narrow(1, len - 1, 1).reshape([batch, dim]); // [B, D]
        let pooled = tanh(self.pooler.forward(last));
        self.classifier.forward(self.dropout.forward(pooled)).reshape([batch])
    }
}

/// MSAMamba with the pooler head: a binary classifier of MSA windows.
#[derive(Config, Debug)]
pub struct MsaMambaClassifierConfig {
    /// The backbone.
    pub model: MsaMambaConfig,
    /// Dropout between the pooler and the classifier.
    #[config(default = 0.25)]
    pub dropout: f64,
}

/// See [`MsaMambaClassifierConfig`].
#[derive(Module, Debug)]
pub struct MsaMambaClassifier<B: Backend> {
    /// The pre-trained backbone.
    pub backbone: MsaMamba<B>,
    /// The classification head.
    pub head: PoolerHead<B>,
}

impl MsaMambaClassifierConfig {
    /// Initialises a classifier around a fresh backbone.
    pub fn init<B: Backend>(&self, device: &B::Device) -> MsaMambaClassifier<B> {
        self.with_backbone(self.model.init(device), device)
    }

    /// Wraps a (pre-trained) backbone with a fresh head.
    pub fn with_backbone<B: Backend>(&self, backbone: MsaMamba<B>, device: &B::Device) -> MsaMambaClassifier<B> {
        MsaMambaClassifier {
            backbone,
            head: PoolerHeadConfig::new()
                .with_d_model(self.model.d_model)
                .with_dropout(self.dropout)
                .init(device),
        }
    }
}

impl<B: KernelBackend> MsaMambaClassifier<B> {
    /// # Shapes
    /// tokens: [B, M, L] Int, row_keep: [B, M] Bool -> logits: \[B\]
    pub fn forward(&self, tokens: Tensor<B, 3, Int>, row_keep: Tensor<B, 2, Bool>) -> Tensor<B, 1> {
        self.head.forward(self.backbone.forward_target(tokens, row_keep, false))
    }

    /// Binary cross-entropy of the logits against 0/1 labels: \[B\] Int -> scalar.
    pub fn loss(&self, logits: Tensor<B, 1>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
        BinaryCrossEntropyLossConfig::new()
            .with_logits(true)
            .init(&logits.device())
            .forward(logits, labels)
    }
}
