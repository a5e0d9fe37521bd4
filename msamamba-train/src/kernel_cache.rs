//! Compiled CUDA kernels kept across processes, so that a second run (another shard of a scoring
//! job, a resumed training run) does not spend its first half minute compiling again.
//!
//! cubecl can keep each kernel's PTX in a file cache, keyed by the kernel's name and launch
//! settings only: a PTX compiled by another build of msamamba, or for another card or driver,
//! would be loaded as if it were this one's. So the cache lives in a folder of its own per
//! executable (its size and modification time), GPU model and driver version; a changed binary or
//! card starts a fresh folder.
//!
//! Hand-written: cubecl reads the cache's place from its configuration, which knows nothing of the
//! key above.

use std::path::{Path, PathBuf};

/// Where the cache goes instead of the user's cache folder; `off` turns it off.
pub const KERNEL_CACHE: &str = "MSAMAMBA_KERNEL_CACHE";

/// The cache's folder for this executable and these GPUs, or None when there is no cache folder
/// or the GPUs and driver cannot be named (the key would not be safe).
pub fn folder() -> Option<PathBuf> {
    let root = match std::env::var_os(KERNEL_CACHE) {
        Some(value) if value == "off" => return None,
        Some(value) => PathBuf::from(value),
        None => user_cache()?.join("msamamba").join("kernels"),
    };
    let exe = std::fs::metadata(std::env::current_exe().ok()?).ok()?;
    let modified = exe
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let gpus = nvidia_gpus(Path::new("/proc/driver/nvidia"))?;
    Some(root.join(format!("{}-{modified}-{}/{gpus}", env!("CARGO_PKG_VERSION"), exe.len())))
}

/// `$XDG_CACHE_HOME`, else `$HOME/.cache`.
fn user_cache() -> Option<PathBuf> {
    let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    non_empty("XDG_CACHE_HOME").or_else(|| non_empty("HOME").map(|home| home.join(".cache")))
}

/// The driver's version and the GPU models under `proc` (Linux's `/proc/driver/nvidia`), as one
/// path component: `580.159.04-NVIDIA_H100_80GB_HBM3`.
fn nvidia_gpus(proc: &Path) -> Option<String> {
    let version = std::fs::read_to_string(proc.join("version")).ok()?;
    // "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Thu ..."
    let driver = version
        .lines()
        .find(|l| l.starts_with("NVRM version"))?
        .split_whitespace()
        .find(|word| word.chars().next().is_some_and(|c| c.is_ascii_digit()) && word.contains('.'))?
        .to_string();
    let mut models: Vec<String> = std::fs::read_dir(proc.join("gpus"))
        .ok()?
        .flatten()
        .filter_map(|gpu| {
            let info = std::fs::read_to_string(gpu.path().join("information")).ok()?;
            let model = info.lines().find_map(|l| l.strip_prefix("Model:"))?.trim().to_string();
            Some(model.replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "_"))
        })
        .collect();
    if models.is_empty() {
        return None;
    }
    models.sort();
    models.dedup();
    Some(format!("{driver}-{}", models.join("+")))
}

/// Points cubecl's kernel cache in `config` at [`folder`], unless the configuration (a
/// `cubecl.toml`) already names a place; [`crate::gpu_memory::configure`] sets it before any
/// device is opened.
#[cfg(feature = "cuda")]
pub fn apply(config: &mut cubecl::config::CubeClRuntimeConfig) {
    if config.compilation.cache.is_none() {
        config.compilation.cache = folder().map(cubecl::config::cache::CacheConfig::File);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_names_the_driver_and_every_gpu_model() {
        let proc = tempfile::tempdir().unwrap();
        std::fs::write(
            proc.path().join("version"),
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Thu Oct  2 2025\nGCC version:  gcc 12\n",
        )
        .unwrap();
        assert_eq!(nvidia_gpus(proc.path()), None, "no GPU: no key");
        for (bus, model) in [
            ("0000:01:00.0", "NVIDIA H100 80GB HBM3"),
            ("0000:02:00.0", "Tesla P100-PCIE-16GB"),
        ] {
            let dir = proc.path().join("gpus").join(bus);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("information"), format!("Model: \t\t {model}\nIRQ:   42\n")).unwrap();
        }
        assert_eq!(
            nvidia_gpus(proc.path()).as_deref(),
            Some("580.159.04-NVIDIA_H100_80GB_HBM3+Tesla_P100_PCIE_16GB")
        );
    }
}
