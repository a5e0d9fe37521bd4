//! A training data loader whose epoch `e` is a fixed function of (seed, e): the items are
//! shuffled per epoch, and the backend's random numbers (dropout) reseeded at each epoch's start,
//! so a run resumed at epoch `e` sees the data and draws the masks an uninterrupted run would.
//! Pre-training and fine-tuning both train through it.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::prelude::*;
use burn::train::Interrupter;
use rand::seq::SliceRandom;
use rand::{SeedableRng, rngs::StdRng};

use crate::windows::tiling::mix;

/// Items an [`EpochLoader`] draws from, by index; `seed` is the item's own (for what its batcher
/// randomises, such as MLM masking).
pub trait EpochItems: Send + Sync {
    /// What one index gives.
    type Item;
    /// How many items there are.
    fn count(&self) -> u64;
    /// Item `k`; a failure (an unreadable window) ends the run.
    fn item(&self, k: u64, seed: u64) -> anyhow::Result<Self::Item>;
}

/// A window the source could not read, and the 0-based epoch it stopped.
#[derive(Debug)]
pub struct LoadFailure {
    /// The 0-based epoch whose data ran out.
    pub epoch: usize,
    /// What went wrong.
    pub error: anyhow::Error,
}

/// Yields `batches_per_epoch` batches of `batch_size` windows per epoch, and in the last epoch
/// only what remains of `total_batches`, so that the run takes exactly the steps asked. A window the source
/// cannot read (a corrupt store chunk) ends the epoch, stops training through the interrupter and
/// is kept for the caller: the loader interface has no error path.
pub struct EpochLoader<B: Backend, D: EpochItems, T> {
    dataset: Arc<D>,
    batcher: T,
    batch_size: usize,
    /// Items of this loader's share of an epoch: `range` of the epoch's item list.
    range: std::ops::Range<usize>,
    /// Batches of this loader's share over the whole run.
    total_batches: usize,
    seed: u64,
    next_epoch: Arc<AtomicUsize>,
    device: B::Device,
    interrupter: Interrupter,
    failure: Arc<Mutex<Option<LoadFailure>>>,
}

impl<B: Backend, D: EpochItems, T> EpochLoader<B, D, T> {
    /// A loader whose first `iter()` is epoch `first_epoch` (0 for a fresh run); `total_batches`
    /// counts, as `batches_per_epoch` does, the batches of every device.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dataset: D,
        batcher: T,
        batch_size: usize,
        batches_per_epoch: usize,
        total_batches: usize,
        seed: u64,
        first_epoch: usize,
        device: B::Device,
        interrupter: Interrupter,
    ) -> Self {
        Self {
            dataset: Arc::new(dataset),
            batcher,
            batch_size,
            range: 0..batch_size * batches_per_epoch,
            total_batches,
            seed,
            next_epoch: Arc::new(AtomicUsize::new(first_epoch)),
            device,
            interrupter,
            failure: Arc::new(Mutex::new(None)),
        }
    }

    /// The first window that could not be read, if any; shared by every slice of this loader.
    pub fn failure(&self) -> Arc<Mutex<Option<LoadFailure>>> {
        self.failure.clone()
    }

    /// The window indices of epoch `epoch`: a fresh permutation per pass over the windows.
    fn epoch_items(&self, epoch: usize) -> Vec<(u64, u64)> {
        let n = self.dataset.count();
        let wanted = self.range.end;
        let mut items = Vec::with_capacity(wanted);
        let mut pass = 0u64;
        while items.len() < wanted && n > 0 {
            // One pass holds every window index: this is O(windows) memory per epoch.
            let mut order: Vec<u64> = (0..n).collect();
            let pass_seed = mix(mix(self.seed, epoch as u64), pass);
            order.shuffle(&mut StdRng::seed_from_u64(pass_seed));
            let base = items.len() as u64;
            items.extend(
                order
                    .into_iter()
                    .take(wanted - items.len())
                    .enumerate()
                    .map(|(k, i)| (i, mix(pass_seed, base + k as u64))),
            );
            pass += 1;
        }
        items.drain(..self.range.start.min(items.len()));
        // This share's batches still to take in the run: fewer than an epoch's in the last one.
        let per_epoch = self.range.len() / self.batch_size.max(1);
        let left = self.total_batches.saturating_sub(epoch * per_epoch);
        items.truncate(self.range.len().min(left * self.batch_size));
        items
    }
}

struct EpochIter<'a, B: Backend, D: EpochItems, T, O> {
    loader: &'a EpochLoader<B, D, T>,
    /// The batch type: the batcher makes it for this backend.
    batch: PhantomData<fn() -> O>,
    epoch: usize,
    items: Vec<(u64, u64)>,
    position: usize,
}

impl<B, D, T, O> Iterator for EpochIter<'_, B, D, T, O>
where
    B: Backend,
    D: EpochItems,
    T: Batcher<B, D::Item, O>,
{
    type Item = O;

    fn next(&mut self) -> Option<Self::Item> {
        if self.position >= self.items.len() {
            return None;
        }
        let end = (self.position + self.loader.batch_size).min(self.items.len());
        let dataset = &self.loader.dataset;
        let batch = self.items[self.position..end]
            .iter()
            .map(|&(k, seed)| dataset.item(k, seed))
            .collect::<anyhow::Result<Vec<_>>>();
        self.position = end;
        match batch {
            Ok(batch) => Some(self.loader.batcher.batch(batch, &self.loader.device)),
            Err(error) => {
                let mut failure = self.loader.failure.lock().unwrap_or_else(|e| e.into_inner());
                failure.get_or_insert(LoadFailure {
                    epoch: self.epoch,
                    error,
                });
                self.loader.interrupter.stop(None);
                self.position = self.items.len();
                None
            }
        }
    }
}

impl<B, D, T, O> DataLoaderIterator<O> for EpochIter<'_, B, D, T, O>
where
    B: Backend,
    D: EpochItems,
    T: Batcher<B, D::Item, O>,
{
    fn progress(&self) -> Progress {
        Progress {
            items_processed: self.position,
            items_total: self.items.len(),
        }
    }
}

impl<B, D, T, O> DataLoader<B, O> for EpochLoader<B, D, T>
where
    B: Backend,
    D: EpochItems + 'static,
    T: Batcher<B, D::Item, O> + Clone + 'static,
    O: 'static,
{
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<O> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        B::seed(&self.device, mix(self.seed ^ 0xd409, epoch as u64));
        Box::new(EpochIter {
            loader: self,
            epoch,
            items: self.epoch_items(epoch),
            position: 0,
            batch: PhantomData,
        })
    }

    fn num_items(&self) -> usize {
        self.range.len()
    }

    fn to_device(&self, device: &B::Device) -> Arc<dyn DataLoader<B, O>> {
        Arc::new(Self {
            device: device.clone(),
            ..self.copy()
        })
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<B, O>> {
        let (from, to) = (self.range.start + start, (self.range.start + end).min(self.range.end));
        // A share of the run's batches in proportion to its share of an epoch.
        let total_batches = self.total_batches * (to - from) / self.range.len().max(1);
        Arc::new(Self {
            range: from..to,
            total_batches,
            ..self.copy()
        })
    }
}

impl<B: Backend, D: EpochItems, T: Clone> EpochLoader<B, D, T> {
    /// A copy sharing the dataset and the failure slot, with an epoch counter of its own at this
    /// one's value: each device's slice walks the epochs itself, so with any number of devices
    /// every slice of epoch `e` is a share of the same permutation, the one a resumed run redraws.
    fn copy(&self) -> Self {
        Self {
            dataset: self.dataset.clone(),
            batcher: self.batcher.clone(),
            batch_size: self.batch_size,
            range: self.range.clone(),
            total_batches: self.total_batches,
            seed: self.seed,
            next_epoch: Arc::new(AtomicUsize::new(self.next_epoch.load(Ordering::SeqCst))),
            device: self.device.clone(),
            interrupter: self.interrupter.clone(),
            failure: self.failure.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::data::dataloader::split::split_dataloader;

    use super::*;
    use crate::data::source::AlignmentSource;
    use crate::windows::mlm_batch::{MsaBatch, MsaBatcher, MsaBatcherConfig};
    use crate::windows::tiling::{WindowDataset, WindowRun, WindowSet};

    type B = NdArray;

    /// A two-species alignment of 64 target bases, tiled into 8 windows of 8.
    fn dataset() -> WindowDataset {
        let dir = std::env::temp_dir().join(format!("msamamba-loader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let maf = dir.join("two.maf");
        let seq = |salt: usize| {
            (0..64)
                .map(|i| b"ACGT"[(i * 7 + salt * 3 + i / 5) % 4] as char)
                .collect::<String>()
        };
        let text = format!(
            "##maf version=1\na score=1\ns hg.chr1 0 64 + 64 {}\ns mm.chr1 0 64 + 64 {}\n\n",
            seq(0),
            seq(1)
        );
        std::fs::write(&maf, text).expect("write the MAF");
        let source = AlignmentSource::open(Some(&maf), Some("hg"), None, None).expect("open the MAF");
        let mut windows = WindowSet::new(8);
        windows.push(WindowRun {
            chrom: "chr1".into(),
            start: 0,
            count: 8,
            stride: 8,
        });
        WindowDataset::new(Arc::new(source), windows, 7)
    }

    /// A loader of 4 batches of 1 per epoch over 3 epochs, starting at `first_epoch`.
    fn loader(first_epoch: usize) -> Arc<dyn DataLoader<B, MsaBatch<B>>> {
        let batcher = MsaBatcher::new(MsaBatcherConfig::new(2));
        let loader = EpochLoader::<B, _, _>::new(
            dataset(),
            batcher,
            1,
            4,
            12,
            11,
            first_epoch,
            Default::default(),
            Interrupter::new(),
        );
        Arc::new(loader)
    }

    /// The tokens of each batch of one pass of `loader`.
    fn epoch(loader: &Arc<dyn DataLoader<B, MsaBatch<B>>>) -> Vec<Vec<i64>> {
        loader
            .iter()
            .map(|batch| batch.tokens.into_data().convert::<i64>().to_vec().expect("tokens"))
            .collect()
    }

    #[test]
    fn every_device_count_sees_the_same_epochs_fresh_or_resumed() {
        let whole = loader(0);
        let single: Vec<_> = (0..3).map(|_| epoch(&whole)).collect();
        assert_ne!(single[0], single[1], "epochs are reshuffled");
        let devices = [Default::default(), Default::default()];
        for first in [0, 1] {
            let slices = split_dataloader(loader(first), &devices);
            for (e, want) in single.iter().enumerate().skip(first) {
                // Each device takes its share of epoch e, in order: together, epoch e.
                let got: Vec<_> = slices.iter().flat_map(epoch).collect();
                assert_eq!(&got, want, "epoch {e} on two devices (run started at epoch {first})");
            }
        }
    }
}
