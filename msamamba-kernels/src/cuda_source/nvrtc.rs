//! Compiling recorded sources with NVRTC, NVIDIA's run-time compiler, which needs no GPU.
//!
//! Through cudarc's bindings, loaded at run time: NVRTC 12.x is the last to target compute
//! capability 6.x, and its library comes on its own (the `nvidia-cuda-nvrtc-cu12` wheel), without
//! a CUDA toolkit. cubecl's sources include the CUDA runtime's headers and, for barriers and
//! asynchronous copies, libcu++'s, which come the same way (`nvidia-cuda-runtime-cu12`,
//! `nvidia-cuda-cccl-cu12`). `cargo xtask pascal` installs them all, puts the library on the
//! library path and lists the headers' folders in `MSAMAMBA_CUDA_INCLUDE`.

use std::ffi::{CStr, CString};
use std::path::PathBuf;

use cudarc::nvrtc::{result, sys};

use super::{Capability, CudaSourceDevice, RecordedKernel, recorded};

/// A loaded NVRTC library, and the CUDA headers it compiles against.
#[derive(Debug, Clone)]
pub struct Nvrtc {
    /// Its version, (major, minor).
    pub version: (i32, i32),
    /// The header folders: `cuda_runtime.h`'s and libcu++'s.
    pub include: Vec<PathBuf>,
}

impl Nvrtc {
    /// Loads NVRTC from the library path, with the header folders listed in
    /// `MSAMAMBA_CUDA_INCLUDE`, else the CUDA toolkit's (`CUDA_PATH`, else /usr/local/cuda:
    /// include and include/cccl, as cubecl's CUDA runtime takes them); an error says what was
    /// missing.
    pub fn load() -> Result<Nvrtc, String> {
        let include: Vec<PathBuf> = match std::env::var_os("MSAMAMBA_CUDA_INCLUDE") {
            Some(list) => std::env::split_paths(&list).collect(),
            None => {
                let toolkit =
                    std::env::var_os("CUDA_PATH").map_or_else(|| PathBuf::from("/usr/local/cuda"), PathBuf::from);
                vec![toolkit.join("include"), toolkit.join("include/cccl")]
            }
        };
        if !include.iter().any(|dir| dir.join("cuda_runtime.h").is_file()) {
            return Err(format!(
                "no cuda_runtime.h in {include:?}: set MSAMAMBA_CUDA_INCLUDE (`cargo xtask pascal` installs the headers)"
            ));
        }
        // SAFETY: only tries to open the library by its usual names.
        if !unsafe { sys::is_culib_present() } {
            return Err(
                "no NVRTC library (libnvrtc.so.12) on the library path: `cargo xtask pascal` installs one".into(),
            );
        }
        let (mut major, mut minor) = (0, 0);
        // SAFETY: the library is present; both pointers are valid for the call.
        unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
            .result()
            .map_err(|e| format!("NVRTC's version: {e:?}"))?;
        Ok(Nvrtc {
            version: (major, minor),
            include,
        })
    }

    /// Compiles `source` for `capability`'s real architecture (machine code, as cubecl's CUDA
    /// runtime does: compiling only to PTX would leave inline PTX unchecked). Ok holds NVRTC's
    /// warnings, if any; Err its log.
    pub fn compile(&self, source: &str, capability: Capability) -> Result<String, String> {
        let source = CString::new(source).map_err(|_| "the source holds a NUL byte".to_string())?;
        let program =
            result::create_program(source.as_c_str(), None).map_err(|e| format!("nvrtcCreateProgram: {e:?}"))?;
        let mut options = vec![format!("--gpu-architecture=sm_{}", capability.0)];
        options.extend(
            self.include
                .iter()
                .map(|dir| format!("--include-path={}", dir.display())),
        );
        // SAFETY: `program` was just created and is destroyed once, below.
        let compiled = unsafe { result::compile_program(program, &options) };
        // SAFETY: as above.
        let log = unsafe { result::get_program_log(program) }
            .map(|raw| {
                // SAFETY: NVRTC's log is NUL-terminated.
                unsafe { CStr::from_ptr(raw.as_ptr()) }
                    .to_string_lossy()
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        // SAFETY: as above.
        let _ = unsafe { result::destroy_program(program) };
        match compiled {
            Ok(()) => Ok(log),
            Err(error) if log.is_empty() => Err(format!("{error:?}")),
            Err(_) => Err(log),
        }
    }
}

/// Compiles every kernel `device` has recorded for its capability, on all cores, after checking
/// that cubecl compiled them all: the number of variants, or one entry per kernel that failed
/// (its name, variant and NVRTC's or cubecl's log). Where `MSAMAMBA_CUDA_SOURCE_DIR` names a
/// folder, each source is also written there, as `<entry point>-<n>.cu`, for reading.
pub fn compile_recorded(device: &CudaSourceDevice) -> Result<usize, String> {
    let record = recorded(device);
    let record = record.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = std::env::var_os("MSAMAMBA_CUDA_SOURCE_DIR").map(PathBuf::from) {
        write_sources(&dir, record.kernels.values())
            .map_err(|e| format!("writing sources to {}: {e}", dir.display()))?;
    }
    let entry =
        |name: &str, variant: &str, log: &str| format!("{name}\n  variant: {variant}\n  {}", log.replace('\n', "\n  "));
    let mut failed: Vec<String> = record
        .failures
        .iter()
        .map(|f| entry(f.name, &f.variant, &f.reason))
        .collect();
    let nvrtc = Nvrtc::load()?;
    if nvrtc.version.0 != 12 {
        return Err(format!(
            "NVRTC {}.{}: 12.x is the last to target compute capability 6.x",
            nvrtc.version.0, nvrtc.version.1
        ));
    }
    let kernels: Vec<&RecordedKernel> = record.kernels.values().collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let capability = device.capability;
    std::thread::scope(|scope| {
        let workers: Vec<_> = kernels
            .chunks(kernels.len().div_ceil(threads).max(1))
            .map(|part| {
                let nvrtc = &nvrtc;
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|k| {
                            nvrtc
                                .compile(&k.source, capability)
                                .err()
                                .map(|log| entry(k.name, &k.variant, &log))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for worker in workers {
            failed.extend(worker.join().expect("an NVRTC worker"));
        }
    });
    if failed.is_empty() {
        Ok(kernels.len())
    } else {
        Err(format!(
            "{} of {} kernel variants do not compile for {capability}:\n{}",
            failed.len(),
            kernels.len() + record.failures.len(),
            failed.join("\n")
        ))
    }
}

/// Writes each kernel's source into `dir`, numbered within its entry point.
fn write_sources<'a>(dir: &std::path::Path, kernels: impl Iterator<Item = &'a RecordedKernel>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    for kernel in kernels {
        let n = seen.entry(kernel.entrypoint.as_str()).or_default();
        std::fs::write(dir.join(format!("{}-{n}.cu", kernel.entrypoint)), &kernel.source)?;
        *n += 1;
    }
    Ok(())
}
