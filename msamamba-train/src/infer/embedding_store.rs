//! Embeddings written as they come into a zarr (v3) store, through zarrs: one float32 array
//! `regions/<k>` of shape [L, D] per region, k counting from 0 in input order, with the region in
//! its attributes; with pooling, `pooled` [R, D] holds each region's mean over positions in row
//! k. The root's attributes list the regions (name, region, strand), the species and D. Only the
//! region being written is in memory; the store is built beside `--out` and renamed into place
//! when complete.
//!
//! ```python
//! import zarr
//! z = zarr.open("emb.zarr")
//! z.attrs["regions"][0]["region"], z["regions/0"][:].shape, z["pooled"][0]
//! ```

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use zarrs::array::{Array, ArrayBuilder, ArraySubset, data_type};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::GroupBuilder;

use crate::atomic_output::AtomicDir;

/// Rows of `pooled` per chunk: one file per this many regions.
const POOLED_CHUNK_ROWS: u64 = 256;

/// What the store records of each region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionLabel {
    /// `chrom:start-end`, 1-based inclusive.
    pub region: String,
    /// `+` or `-`.
    pub strand: char,
    /// The BED name column, when given.
    pub name: Option<String>,
}

/// A store being written.
pub struct EmbeddingStore {
    dir: AtomicDir,
    storage: Arc<FilesystemStore>,
    width: usize,
    pooled: Option<Array<FilesystemStore>>,
    labels: Vec<Value>,
}

impl EmbeddingStore {
    /// Starts the store at `path` for `regions` embeddings of width `width`, with `pool` a
    /// `pooled` array of their means.
    pub fn create(path: &Path, regions: u64, width: usize, pool: bool) -> Result<Self> {
        let dir = AtomicDir::create(path)?;
        let failed = |e: &dyn std::fmt::Display| anyhow!("writing {}: {e}", path.display());
        let storage = Arc::new(FilesystemStore::new(dir.temporary_path()).map_err(|e| failed(&e))?);
        let pooled = pool
            .then(|| {
                let chunk = POOLED_CHUNK_ROWS.min(regions.max(1));
                let array = ArrayBuilder::new(
                    vec![regions, width as u64],
                    vec![chunk, width as u64],
                    data_type::float32(),
                    0.0f32,
                )
                .build(storage.clone(), "/pooled")
                .map_err(|e| failed(&e))?;
                array.store_metadata().map_err(|e| failed(&e))?;
                Ok::<_, anyhow::Error>(array)
            })
            .transpose()?;
        Ok(Self {
            dir,
            storage,
            width,
            pooled,
            labels: Vec::new(),
        })
    }

    /// Writes the next region's embedding, `values` position-major (L x D). Refuses values that
    /// are NaN or infinite (weights that diverged): such an embedding is never written, and the
    /// store, left incomplete, is never put in place.
    pub fn add(&mut self, label: RegionLabel, values: &[f32]) -> Result<()> {
        let k = self.labels.len() as u64;
        let non_finite = values.iter().filter(|v| !v.is_finite()).count();
        if non_finite > 0 {
            bail!(
                "embedding {k} ({} {}): {non_finite} of its {} values are NaN or infinite (the model's weights may have diverged; try an earlier checkpoint); nothing was written",
                label.region,
                label.strand,
                values.len()
            );
        }
        let (width, len) = (self.width, values.len() / self.width.max(1));
        let failed = |e: &dyn std::fmt::Display| anyhow!("writing embedding {k} ({}): {e}", label.region);
        let mut builder = ArrayBuilder::new(
            vec![len as u64, width as u64],
            vec![len as u64, width as u64],
            data_type::float32(),
            0.0f32,
        );
        builder.attributes(
            json!({"region": label.region, "strand": label.strand.to_string(), "name": label.name})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let array = builder
            .build(self.storage.clone(), &format!("/regions/{k}"))
            .map_err(|e| failed(&e))?;
        array.store_metadata().map_err(|e| failed(&e))?;
        array.store_chunk(&[0, 0], values).map_err(|e| failed(&e))?;
        if let Some(pooled) = &self.pooled {
            let mut mean = vec![0.0f64; width];
            for row in values.chunks(width) {
                mean.iter_mut().zip(row).for_each(|(m, &v)| *m += f64::from(v));
            }
            let mean: Vec<f32> = mean.iter().map(|m| (m / len.max(1) as f64) as f32).collect();
            let row = ArraySubset::new_with_ranges(&[k..k + 1, 0..width as u64]);
            pooled.store_array_subset(&row, mean).map_err(|e| failed(&e))?;
        }
        self.labels
            .push(json!({"array": format!("regions/{k}"), "region": label.region, "strand": label.strand.to_string(), "name": label.name}));
        Ok(())
    }

    /// Writes the root's attributes (the regions, `species`, D and `checkpoint`) and puts the
    /// store in place.
    pub fn commit(self, species: &[String], checkpoint: &Path) -> Result<()> {
        let mut group = GroupBuilder::new();
        group.attributes(
            json!({
                "regions": self.labels,
                "species": species,
                "d_model": self.width,
                "pooled": self.pooled.is_some().then_some("mean over positions"),
                "checkpoint": checkpoint.display().to_string(),
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        );
        group
            .build(self.storage.clone(), "/")
            .context("the store's root")?
            .store_metadata()
            .context("the store's root")?;
        self.dir.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zarrs::array::Array;
    use zarrs::group::Group;

    #[test]
    fn regions_read_back_with_their_labels_and_means() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("emb.zarr");
        let mut store = EmbeddingStore::create(&path, 2, 3, true).unwrap();
        let first: Vec<f32> = vec![1.0, 2.0, 3.0, 3.0, 6.0, -3.0]; // 2 positions x 3
        let second: Vec<f32> = vec![0.5, 0.25, -1.0]; // 1 position
        let label = |region: &str, strand, name: Option<&str>| RegionLabel {
            region: region.into(),
            strand,
            name: name.map(String::from),
        };
        store.add(label("chr1:1-2", '+', Some("a")), &first).unwrap();
        assert!(!path.exists(), "the store is in place before it is complete");
        store.add(label("chr1:5-5", '-', None), &second).unwrap();
        store.commit(&["mm9".into(), "rn4".into()], Path::new("run")).unwrap();

        let storage = Arc::new(FilesystemStore::new(&path).unwrap());
        let array = Array::open(storage.clone(), "/regions/0").unwrap();
        assert_eq!(array.shape(), [2, 3]);
        assert_eq!(
            array.retrieve_array_subset::<Vec<f32>>(&array.subset_all()).unwrap(),
            first
        );
        assert_eq!(array.attributes()["region"], "chr1:1-2");
        let pooled = Array::open(storage.clone(), "/pooled").unwrap();
        let means = pooled.retrieve_array_subset::<Vec<f32>>(&pooled.subset_all()).unwrap();
        assert_eq!(means, [2.0, 4.0, 0.0, 0.5, 0.25, -1.0]);
        let root = Group::open(storage, "/").unwrap();
        let attributes = root.attributes();
        assert_eq!(attributes["species"], json!(["mm9", "rn4"]));
        assert_eq!(attributes["regions"][1]["strand"], "-");
        assert_eq!(attributes["regions"][0]["name"], "a");
    }

    #[test]
    fn a_non_finite_embedding_is_refused_naming_its_region_and_no_store_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("emb.zarr");
        let mut store = EmbeddingStore::create(&path, 1, 2, true).unwrap();
        let label = RegionLabel {
            region: "chr1:1-2".into(),
            strand: '+',
            name: None,
        };
        let err = store.add(label, &[0.5, f32::NAN, 1.0, f32::INFINITY]).unwrap_err();
        assert!(err.to_string().contains("chr1:1-2"), "{err}");
        assert!(err.to_string().contains("NaN or infinite"), "{err}");
        drop(store);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn an_existing_output_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = EmbeddingStore::create(dir.path(), 1, 3, false).err().unwrap();
        assert!(err.to_string().contains("exists"), "{err}");
    }
}
