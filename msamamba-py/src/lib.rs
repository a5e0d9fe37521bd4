//! The `msamamba._msamamba` extension module: a trained run loaded once, its variant scores and
//! embeddings computed by the same library calls as the CLI's `score --variants` and `embed`.
//! The `msamamba` Python package (python/msamamba) wraps it with pandas, arrow and numpy.
//!
//! Long calls release the GIL; their progress reaches Python through a callback, called with the
//! GIL taken back after each batch.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use msamamba_kernels::KernelBackend;
use msamamba_train::backend::{BackendChoice, OnBackend, dispatch};
use msamamba_train::data::maf::Strand;
use msamamba_train::data::region::Region;
use msamamba_train::data::variant_table::{TableFormat, VariantTableReader, VariantTableWriter};
use msamamba_train::infer::{AlignmentChoice, Embedder, VariantScorer, score_table};
use msamamba_train::train::weights::load_backbone;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    _msamamba,
    MsamambaError,
    PyException,
    "What went wrong, in the words the msamamba command line would use."
);

/// An error as a Python exception carrying the CLI's one-line message.
fn to_py(error: anyhow::Error) -> PyErr {
    MsamambaError::new_err(format!("{error:#}"))
}

/// The backend named by `backend`: auto, cpu, cuda or wgpu.
fn backend_of(backend: &str) -> PyResult<BackendChoice> {
    match backend {
        "auto" => Ok(BackendChoice::Auto),
        "cpu" => Ok(BackendChoice::Cpu),
        "cuda" => Ok(BackendChoice::Cuda),
        "wgpu" => Ok(BackendChoice::Wgpu),
        other => Err(MsamambaError::new_err(format!(
            "backend={other:?}: one of \"auto\", \"cpu\", \"cuda\", \"wgpu\""
        ))),
    }
}

/// The alignment given as a path: a store (a directory, or a zip) or a MAF.
fn alignment_of(path: PathBuf, target: Option<String>) -> AlignmentChoice {
    let name = path.to_string_lossy().to_ascii_lowercase();
    let maf = [".maf", ".maf.gz", ".maf.bgz"].iter().any(|s| name.ends_with(s));
    if maf {
        AlignmentChoice {
            maf: Some(path),
            target,
            store: None,
        }
    } else {
        AlignmentChoice {
            maf: None,
            target,
            store: Some(path),
        }
    }
}

/// Calls the Python progress callback, if any, with the rows or regions just done.
fn report(progress: &Option<Py<PyAny>>, done: u64) -> Result<()> {
    if let Some(callback) = progress {
        Python::attach(|py| callback.call1(py, (done,)).map(|_| ())).context("the progress callback")?;
    }
    Ok(())
}

/// A pre-training run, loaded.
#[pyclass(module = "msamamba._msamamba", frozen)]
struct Model {
    run: PathBuf,
    backend: BackendChoice,
    /// The model's rows (species), target first, where the run names them.
    #[pyo3(get)]
    rows: Vec<String>,
    /// The training window, L.
    #[pyo3(get)]
    window: usize,
    /// What inference computes in.
    #[pyo3(get)]
    precision: &'static str,
}

/// Scores a variant table file into a Parquet file.
struct ScoreJob {
    run: PathBuf,
    alignment: AlignmentChoice,
    variants: PathBuf,
    out: PathBuf,
    batch_size: usize,
    progress: Option<Py<PyAny>>,
}

impl OnBackend for ScoreJob {
    type Output = u64;

    fn run<B>(self, devices: Vec<B::Device>, _name: &str) -> Result<u64>
    where
        B: AutodiffBackend + KernelBackend,
        B::InnerBackend: KernelBackend,
    {
        let mut reader = VariantTableReader::open(&self.variants)?;
        let scorer = VariantScorer::<B::InnerBackend>::load(
            &self.run,
            |config| self.alignment.open_for(config),
            None,
            &devices[0],
        )?;
        let file =
            std::fs::File::create(&self.out).with_context(|| format!("{}: cannot create", self.out.display()))?;
        let writer = VariantTableWriter::new(std::io::BufWriter::new(file), TableFormat::Parquet, &reader.schema())?;
        let out_name = self.out.display().to_string();
        let mut done = Ok(());
        let (summary, mut out) = score_table(&scorer, &mut reader, writer, self.batch_size, &out_name, &mut |rows| {
            if done.is_ok() {
                done = report(&self.progress, rows);
            }
        })?;
        done?;
        std::io::Write::flush(&mut out).with_context(|| format!("writing {out_name}"))?;
        Ok(summary.scored)
    }
}

/// Embeds regions: per region its L x D values, row-major.
struct EmbedJob {
    run: PathBuf,
    alignment: AlignmentChoice,
    regions: Vec<(Region, Strand)>,
    progress: Option<Py<PyAny>>,
}

impl OnBackend for EmbedJob {
    type Output = (usize, Vec<Vec<f32>>);

    fn run<B>(self, devices: Vec<B::Device>, _name: &str) -> Result<Self::Output>
    where
        B: AutodiffBackend + KernelBackend,
        B::InnerBackend: KernelBackend,
    {
        let embedder =
            Embedder::<B::InnerBackend>::load(&self.run, |config| self.alignment.open_for(config), &devices[0])?;
        let mut all = Vec::with_capacity(self.regions.len());
        for (region, strand) in &self.regions {
            all.push(embedder.embed(region, *strand)?);
            report(&self.progress, 1)?;
        }
        Ok((embedder.width(), all))
    }
}

#[pymethods]
impl Model {
    /// Scores the variant table `variants` (Parquet, CSV or TSV: chrom, pos, ref, alt and any
    /// other columns) on `alignment` (a MAF, or a store) into the Parquet file `out`, as
    /// `msamamba score --variants` does; returns how many were scored.
    #[pyo3(signature = (variants, alignment, out, *, target=None, batch_size=256, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn score_file(
        &self,
        py: Python<'_>,
        variants: PathBuf,
        alignment: PathBuf,
        out: PathBuf,
        target: Option<String>,
        batch_size: usize,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<u64> {
        let job = ScoreJob {
            run: self.run.clone(),
            alignment: alignment_of(alignment, target),
            variants,
            out,
            batch_size: batch_size.max(1),
            progress,
        };
        let backend = self.backend;
        py.detach(|| dispatch(backend, job)).map_err(to_py)
    }

    /// Embeds each of `regions` (samtools style, CHR:START-END, 1-based inclusive; a trailing
    /// `/-` reads the reverse strand) on `alignment`: the embedding width D and, per region, its
    /// L x D values, row-major.
    #[pyo3(signature = (regions, alignment, *, target=None, progress=None))]
    fn embed_regions(
        &self,
        py: Python<'_>,
        regions: Vec<String>,
        alignment: PathBuf,
        target: Option<String>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(usize, Vec<Vec<f32>>)> {
        let regions = regions
            .iter()
            .map(|text| {
                let (text, strand) = match text.strip_suffix("/-") {
                    Some(forward) => (forward, Strand::Reverse),
                    None => (text.as_str(), Strand::Forward),
                };
                let region = text.parse::<Region>().with_context(|| format!("region {text:?}"))?;
                Ok((region, strand))
            })
            .collect::<Result<Vec<_>>>()
            .map_err(to_py)?;
        let job = EmbedJob {
            run: self.run.clone(),
            alignment: alignment_of(alignment, target),
            regions,
            progress,
        };
        let backend = self.backend;
        py.detach(|| dispatch(backend, job)).map_err(to_py)
    }

    fn __repr__(&self) -> String {
        format!(
            "Model(run={:?}, rows={}, window={}, precision={:?})",
            self.run,
            self.rows.len(),
            self.window,
            self.precision
        )
    }
}

/// Loads the pre-training run `run_dir` for `backend` ("auto", "cpu", "cuda" or "wgpu"; a GPU
/// backend must be built into the wheel).
#[pyfunction]
#[pyo3(signature = (run_dir, backend="auto"))]
fn load(run_dir: PathBuf, backend: &str) -> PyResult<Model> {
    let backend = backend_of(backend)?;
    // The run is read once here, so that a wrong path fails at load, not at the first score.
    let (config, _) = load_backbone::<burn::backend::NdArray>(&run_dir, &Default::default()).map_err(to_py)?;
    let rows = if config.rows.is_empty() {
        config.source.species.clone().unwrap_or_default()
    } else {
        config.rows.clone()
    };
    Ok(Model {
        run: run_dir,
        backend,
        rows,
        window: config.window,
        precision: "fp32",
    })
}

#[pymodule]
fn _msamamba(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_class::<Model>()?;
    m.add("MsamambaError", m.py().get_type::<MsamambaError>())?;
    Ok(())
}
