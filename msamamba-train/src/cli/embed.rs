use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use msamamba_kernels::KernelBackend;
use msamamba_train::atomic_output::AtomicOutput;
use msamamba_train::data::bed::read_bed;
use msamamba_train::data::maf::Strand;
use msamamba_train::data::region::Region;
use msamamba_train::finetune::load_backbone;
use safetensors::{Dtype, tensor::TensorView};

use super::backend::{BackendChoice, OnBackend, dispatch};
use super::source_args::SourceArgs;

#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// A pre-training run directory (`msamamba pretrain --out`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Region, samtools style (CHR:START-END, 1-based inclusive); repeat for several.
    #[arg(long = "region")]
    regions: Vec<String>,
    /// BED file of regions (chrom, 0-based start, end, [name, score, strand]).
    #[arg(long)]
    bed: Option<PathBuf>,
    #[command(flatten)]
    source: SourceArgs,
    /// Output safetensors file: one float32 tensor [L, D] per region, named `chrom:start-end`
    /// (1-based, inclusive) with `/-` appended for the minus strand.
    #[arg(long)]
    out: PathBuf,
    /// Backend.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendChoice,
}

/// Regions from --region and --bed, with their strand.
fn regions(args: &EmbedArgs) -> Result<Vec<(Region, Strand)>> {
    let mut all = Vec::new();
    for text in &args.regions {
        all.push((
            text.parse::<Region>().with_context(|| format!("--region {text}"))?,
            Strand::Forward,
        ));
    }
    if let Some(bed) = &args.bed {
        all.extend(read_bed(bed)?.into_iter().map(|r| (r.region, r.strand)));
    }
    if all.is_empty() {
        bail!("no regions: give --region CHR:START-END or --bed FILE");
    }
    // One tensor per region and strand: a repeat would need two tensors of one name.
    let mut seen = std::collections::HashSet::new();
    if let Some((region, strand)) = all
        .iter()
        .find(|(region, strand)| !seen.insert(tensor_name(region, *strand)))
    {
        bail!(
            "region {} is given twice (--region and --bed together, or a repeated line)",
            tensor_name(region, *strand)
        );
    }
    Ok(all)
}

/// The output tensor's name: `chrom:start-end`, `/-` appended for the reverse strand.
fn tensor_name(region: &Region, strand: Strand) -> String {
    match strand {
        Strand::Forward => region.to_string(),
        Strand::Reverse => format!("{region}/-"),
    }
}

pub fn run(args: EmbedArgs) -> Result<()> {
    let backend = args.backend;
    dispatch(backend, args)
}

impl OnBackend for EmbedArgs {
    type Output = ();

    fn run<B>(self, devices: Vec<B::Device>, _name: &str) -> Result<()>
    where
        B: AutodiffBackend + KernelBackend,
        B::InnerBackend: KernelBackend,
    {
        let device = devices[0].clone();
        let regions = regions(&self)?;
        let mut output = AtomicOutput::create(&self.out, &[])?;
        let (config, model) = load_backbone::<B::InnerBackend>(&self.checkpoint, &device)?;
        let (source, order) = self.source.open_for(&config)?;
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (region, strand) in &regions {
            let window = source.window(region, *strand)?;
            let len = window.len();
            let tokens: Vec<i64> = order
                .arrange(&window.rows)
                .iter()
                .flat_map(|r| r.iter().map(|&t| i64::from(t)))
                .collect();
            let m = order.len();
            let hidden = model.forward_target(
                Tensor::from_data(TensorData::new(tokens, [1, m, len]), &device),
                Tensor::from_data(TensorData::new(vec![true; m], [1, m]), &device),
                false,
            ); // [1, L, D]
            let values: Vec<f32> = hidden.into_data().convert::<f32>().to_vec().unwrap_or_default();
            let name = tensor_name(region, *strand);
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            tensors.push((name, vec![len, config.model.d_model], bytes));
        }
        let views = tensors
            .iter()
            .map(|(name, shape, bytes)| Ok((name.clone(), TensorView::new(Dtype::F32, shape.clone(), bytes)?)))
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
        let metadata = HashMap::from([("species".to_string(), order.species().join(","))]);
        let bytes = safetensors::serialize(views, Some(metadata))?;
        output
            .writer()
            .write_all(&bytes)
            .with_context(|| format!("writing {}", self.out.display()))?;
        output.commit()?;
        eprintln!(
            "msamamba: wrote {} embedding(s) of width {} to {}",
            tensors.len(),
            config.model.d_model,
            self.out.display()
        );
        Ok(())
    }
}
