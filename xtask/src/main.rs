//! `cargo xtask ...`: the one entry point for CI, benchmarks and fixture generation.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(about = "msamamba developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// What CI runs: formatting, the whole test suite on CPU, clippy (warnings are errors, the
    /// CUDA backend built in), the API docs (warnings are errors), and the kernels' and model's
    /// tests on WGPU (software Vulkan where no GPU is present) with those of `pascal`, and the
    /// Python wheel's (`python`). Installs what the tests need (bcftools, lavapipe, NVRTC,
    /// a venv) where it is missing and we may.
    Ci,
    /// Proves the CUDA kernels compile for Pascal without a GPU: runs every kernel variant the
    /// tests launch, and the model's training step, on a runtime that records the CUDA source
    /// cubecl writes for a compute capability 6.0 card (msamamba-kernels' `cuda_source`), and
    /// compiles each with NVRTC 12 to sm_60 machine code; fails listing each kernel and variant that
    /// does not compile. Installs NVRTC 12.9 with the CUDA runtime's and libcu++'s headers from
    /// their Python wheels into a cache folder where missing; `MSAMAMBA_CUDA_SOURCE_DIR=DIR`
    /// also writes each source there. CI runs these tests with the WGPU tests (the feature
    /// `cuda-source` of msamamba-kernels and msamamba-model).
    Pascal,
    /// Builds the Python wheel (msamamba-py, with maturin, the dev profile) into
    /// target/wheels, installs it in a venv (target/python) with pytest, pandas and pyarrow,
    /// and runs its tests against the `msamamba` binary of the same build.
    Python,
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        bench: Bench,
    },
    /// Rewrites the fixtures that independent writers made, so that tests never check the
    /// project's readers against its own writers: the GPN-MSA zarr store (Python `zarr<3`, see
    /// data/zarr/make_fixture.py) and the BGZF / faidx files (htslib's `bgzip` and `samtools`).
    Fixtures,
}

#[derive(Subcommand)]
enum Bench {
    /// The selective-scan kernels on the benchmark shapes: forward and backward times, GB/s.
    Scan {
        /// The GPU backend to time.
        #[arg(long, value_enum, default_value_t = GpuBackend::Cuda)]
        backend: GpuBackend,
        /// Passed on to the benchmark: [--runs N] [--small] [--only K]... [--shape b,d,n,l]...
        /// [--channels-last] [--block C] [--chunk P] [--bwd-shared BYTES] [--split-below N]
        /// [--split-cubes N] [--no-plane] [--lane-channels C] [--lane-items K].
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The model's matmuls (each projection's forward and both gradients) under cubek's
    /// strategies, burn's default among them: ms and TFLOP/s per strategy, as JSON lines.
    Matmul {
        /// The GPU backend to time.
        #[arg(long, value_enum, default_value_t = GpuBackend::Cuda)]
        backend: GpuBackend,
        /// Passed on to the benchmark: [--tokens T] [--rows R] [--runs N].
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Data loading: MAF parse MB/s, store and batch windows/s on the bundled 4.5 MB file.
    Data,
    /// Variant scoring: variants/s and peak resident memory streaming synthetic VCFs of each size
    /// (default 100 k and 1 M SNVs) through `score`, as JSON lines and a table.
    Score {
        /// The backend to score on.
        #[arg(long, value_enum, default_value_t = BenchBackend::Cpu)]
        backend: BenchBackend,
        /// Passed on to the benchmark: [--variants N[,N...]] [--batch-size B] [--window L]
        /// [--d-model D] [--n-layers N] [--maf M | --store S].
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// One MLM training step of the real model on synthetic MSAs: forward, backward and
    /// optimizer times, peak memory, and a per-module breakdown, as JSON lines and a table.
    /// The GPU backends run with burn's kernel fusion, as `pretrain` does in a fusion build.
    Train {
        /// The backend to time.
        #[arg(long, value_enum, default_value_t = BenchBackend::Cuda)]
        backend: BenchBackend,
        /// Passed on to the benchmark: --batch B --rows M --len L[,L...] [--row-keep P]
        /// [--bidirectional] [--d-model D] [--n-layers N] [--d-state N] [--runs R] [--warmup W]
        /// [--no-breakdown].
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The PyTorch + mamba_ssm reference that the speed targets are ratios against
    /// (bench/reference/reference.py, see its README): a training step of the same model, or
    /// mamba_ssm's scan alone, as JSON lines. Its kernel is compiled on first use from `--csrc`, a
    /// copy of state-spaces/mamba's csrc/selective_scan kept out of the repository, into the
    /// git-ignored bench-ref/.
    Reference {
        /// Passed on to the harness: --csrc DIR [--build-dir DIR] [--out F] then
        /// scan [--dtype fp32|bf16] [--shape B,D,N,L]...,
        /// model [--model msamamba|rowtx] [--batch B] [--rows M] [--lens L[,L...]] [--row-keep P]
        /// [--dtype fp32|bf16] [--tf32] [--compile] [--d D] [--layers N] [--reps R] [--warmup W],
        /// or check [--device cpu|cuda].
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum GpuBackend {
    Cuda,
    Wgpu,
}

impl GpuBackend {
    fn name(self) -> &'static str {
        match self {
            GpuBackend::Cuda => "cuda",
            GpuBackend::Wgpu => "wgpu",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum BenchBackend {
    Cuda,
    Wgpu,
    Cpu,
}

impl BenchBackend {
    /// The backend's name and the features that build it.
    fn name_and_features(self) -> (&'static str, &'static str) {
        match self {
            BenchBackend::Cuda => ("cuda", "cuda,fusion"),
            BenchBackend::Wgpu => ("wgpu", "wgpu,fusion"),
            BenchBackend::Cpu => ("cpu", "cpu"),
        }
    }
}

/// Runs `program` with `args`, failing when it fails.
fn run(program: &str, args: &[&str]) -> Result<()> {
    eprintln!("+ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("{program} {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs `program` with `args`, its standard output into `out`.
fn run_into(program: &str, args: &[&str], out: &Path) -> Result<()> {
    eprintln!("+ {program} {} > {}", args.join(" "), out.display());
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let status = Command::new(program)
        .args(args)
        .stdout(Stdio::from(file))
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("{program} {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The fixtures of `cargo xtask fixtures`, written in the repository's data/ folder.
fn fixtures() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::set_current_dir(&root).with_context(|| format!("entering {}", root.display()))?;
    run("python3", &["data/zarr/make_fixture.py"])?;
    let maf = "data/maf/ucsc_mm9_chr10.maf";
    run_into("bgzip", &["-c", maf], Path::new("data/maf/ucsc_mm9_chr10.maf.bgz"))?;
    let fasta = "data/maf/hg17_chr22_14.5M-15.5M.phast.fa";
    let packed = format!("{fasta}.gz");
    let index = format!("{packed}.gzi");
    // -i -I: the .gzi block index that samtools needs to read a bgzip FASTA at random.
    run_into("bgzip", &["-c", "-i", "-I", &index, fasta], Path::new(&packed))?;
    run("samtools", &["faidx", &packed])
}

/// Runs msamamba-train's benchmark binary `bin` on `backend` (built with its features), passing
/// `args` on.
fn msamamba_bench(bin: &str, backend: BenchBackend, args: &[String]) -> Result<()> {
    let (name, features) = backend.name_and_features();
    let mut all = vec![
        "run",
        "--release",
        "-p",
        "msamamba-train",
        "--features",
        features,
        "--bin",
        bin,
        "--",
        "--backend",
        name,
    ];
    all.extend(args.iter().map(String::as_str));
    cargo(&all)
}

/// The cargo that runs this xtask.
fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs cargo with `args`, failing when it fails.
fn cargo(args: &[&str]) -> Result<()> {
    run(&cargo_program(), args)
}

/// Runs `command`, failing when it fails.
fn run_command(command: &mut Command) -> Result<()> {
    eprintln!("+ {command:?}");
    let status = command.status().with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

/// NVRTC 12.9 with the CUDA runtime's and libcu++'s headers, from their Python wheels: the last
/// NVRTC to target compute capability 6.x, and no CUDA toolkit needed.
struct Nvrtc {
    /// The folder of libnvrtc.so.12.
    lib: PathBuf,
    /// The header folders: cuda_runtime.h's and libcu++'s.
    include: [PathBuf; 2],
}

impl Nvrtc {
    /// Lets `command` find them (see msamamba-kernels' `cuda_source::nvrtc`).
    fn apply<'a>(&self, command: &'a mut Command) -> &'a mut Command {
        let mut path = std::ffi::OsString::from(&self.lib);
        if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
            path.push(":");
            path.push(old);
        }
        // Folders of the user's cache: no ':' in them, which would split the list.
        let include = std::env::join_paths(&self.include).unwrap_or_default();
        command
            .env("LD_LIBRARY_PATH", path)
            .env("MSAMAMBA_CUDA_INCLUDE", include)
    }
}

/// Installs the NVRTC and CUDA runtime wheels with pip into the user's cache folder
/// (`$XDG_CACHE_HOME` or ~/.cache, msamamba/nvrtc-12.9) unless they are there.
fn ensure_nvrtc() -> Result<Nvrtc> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .context("no cache folder for NVRTC: set XDG_CACHE_HOME or HOME")?
        .join("msamamba/nvrtc-12.9");
    let nvrtc = Nvrtc {
        lib: cache.join("nvidia/cuda_nvrtc/lib"),
        include: [
            cache.join("nvidia/cuda_runtime/include"),
            cache.join("nvidia/cuda_cccl/include"),
        ],
    };
    let installed = nvrtc.lib.join("libnvrtc.so.12").is_file()
        && nvrtc.include[0].join("cuda_runtime.h").is_file()
        && nvrtc.include[1].join("cuda/barrier").is_file();
    if installed {
        return Ok(nvrtc);
    }
    let target = cache.to_string_lossy();
    let pip = |extra: &[&str]| {
        let mut args = vec![
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--upgrade",
        ];
        args.extend(extra);
        args.extend(["--target", &target]);
        args.extend([
            "nvidia-cuda-nvrtc-cu12==12.9.*",
            "nvidia-cuda-runtime-cu12==12.9.*",
            "nvidia-cuda-cccl-cu12==12.9.*",
        ]);
        run("python3", &args)
    };
    let has_pip = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ensure_package(has_pip, "python3-pip", "no pip (python3 -m pip) to install NVRTC with")?;
    // A Debian python marks its site-packages as the system's; a --target folder of our own is
    // not, but some pip versions refuse it all the same unless told.
    pip(&[]).or_else(|_| pip(&["--break-system-packages"]))?;
    Ok(nvrtc)
}

/// Makes sure a Vulkan driver is installed for the WGPU tests: lavapipe (Mesa's software Vulkan)
/// from mesa-vulkan-drivers when no driver manifest is present.
fn ensure_vulkan() -> Result<()> {
    let manifests = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"];
    let present = manifests.iter().any(|dir| {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
            .unwrap_or(false)
    });
    ensure_package(
        present,
        "mesa-vulkan-drivers",
        "no Vulkan driver found (lavapipe) to run the WGPU tests",
    )
}

/// Makes sure bcftools is installed: the CLI tests read `score`'s VCF output back with it.
fn ensure_bcftools() -> Result<()> {
    let present = Command::new("bcftools")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ensure_package(present, "bcftools", "no bcftools found to check the VCF output with")
}

/// Installs Debian `package` unless `present`, when we may install packages (root with
/// apt-get); otherwise fails with `missing`.
fn ensure_package(present: bool, package: &str, missing: &str) -> Result<()> {
    if present {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root || !Path::new("/usr/bin/apt-get").exists() {
        bail!("{missing}: install {package}");
    }
    run("apt-get", &["update", "-q"])?;
    run("apt-get", &["install", "-y", "-q", package])
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Ci => {
            // Formatting first: it takes seconds and needs no build.
            cargo(&["fmt", "--all", "--check"])?;
            ensure_bcftools()?;
            cargo(&["test", "--workspace"])?;
            // The wheel's tests use the binary this build made.
            python()?;
            // Lints with the CUDA backend built in, which CI can build but not run (it loads the
            // driver at run time): one pass covers the CPU and CUDA code of every crate.
            cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--features",
                "msamamba-train/cuda,msamamba-train/fusion,msamamba-kernels/cuda-source,msamamba-model/cuda-source",
                "--",
                "-D",
                "warnings",
            ])?;
            doc()?;
            ensure_vulkan()?;
            let nvrtc = ensure_nvrtc()?;
            // One build for the GPU tests and the Pascal ones: with fusion the model tests run
            // burn's default `Wgpu`; the kernel tests launch on the unfused cube backend directly,
            // so both paths are covered.
            let mut test = Command::new(cargo_program());
            test.args([
                "test",
                "-p",
                "msamamba-kernels",
                "-p",
                "msamamba-model",
                "--features",
                "msamamba-kernels/wgpu,msamamba-kernels/fusion,msamamba-model/wgpu,msamamba-kernels/cuda-source,msamamba-model/cuda-source",
            ]);
            run_command(nvrtc.apply(&mut test))
        }
        Task::Pascal => {
            let nvrtc = ensure_nvrtc()?;
            let mut test = Command::new(cargo_program());
            test.args([
                "test",
                "-p",
                "msamamba-kernels",
                "-p",
                "msamamba-model",
                "--features",
                "msamamba-kernels/cuda-source,msamamba-model/cuda-source",
                "--test",
                "cube",
                "--test",
                "cuda_source",
                "--",
                "--nocapture",
            ]);
            run_command(nvrtc.apply(&mut test))
        }
        Task::Python => python(),
        Task::Fixtures => fixtures(),
        Task::Bench { bench: Bench::Data } => {
            cargo(&["run", "--release", "-p", "msamamba-train", "--bin", "data_bench"])
        }
        Task::Bench {
            bench: Bench::Score { backend, args },
        } => msamamba_bench("score_bench", backend, &args),
        Task::Bench {
            bench: Bench::Train { backend, args },
        } => msamamba_bench("train_bench", backend, &args),
        Task::Bench {
            bench: Bench::Scan { backend, args },
        } => kernels_bench("scan_bench", backend, &args),
        Task::Bench {
            bench: Bench::Matmul { backend, args },
        } => kernels_bench("matmul_bench", backend, &args),
        Task::Bench {
            bench: Bench::Reference { args },
        } => reference_bench(&args),
    }
}

/// Runs the PyTorch reference harness with `args`, from the caller's directory so that a relative
/// `--csrc` means what it says.
fn reference_bench(args: &[String]) -> Result<()> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/reference/reference.py");
    let script = script.to_string_lossy();
    let mut all = vec![script.as_ref()];
    all.extend(args.iter().map(String::as_str));
    run("python3", &all)
}

/// `cargo xtask python`: the wheel built, installed in a venv and tested.
fn python() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target");
    let venv = target.join("python");
    if !venv.join("bin/python").exists() {
        let make = || run("python3", &["-m", "venv", &venv.to_string_lossy()]);
        if make().is_err() {
            // Debian's python3 makes venvs only with python3-venv installed.
            let _ = std::fs::remove_dir_all(&venv);
            ensure_package(false, "python3-venv", "python3 cannot make a venv")?;
            make()?;
        }
    }
    let bin = |name: &str| venv.join("bin").join(name).to_string_lossy().into_owned();
    run(
        &bin("python"),
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "maturin>=1.5,<2",
            "pytest",
            "pandas",
            "pyarrow",
            "numpy",
        ],
    )?;
    cargo(&["build", "-p", "msamamba-train", "--bin", "msamamba"])?;
    let wheels = target.join("wheels");
    // Old wheels would be installed too.
    let _ = std::fs::remove_dir_all(&wheels);
    let manifest = root.join("msamamba-py/Cargo.toml");
    run(
        &bin("maturin"),
        &[
            "build",
            "--profile",
            "dev",
            "--manifest-path",
            &manifest.to_string_lossy(),
            "--interpreter",
            &bin("python"),
            "--out",
            &wheels.to_string_lossy(),
        ],
    )?;
    let wheel = std::fs::read_dir(&wheels)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .context("maturin wrote no wheel")?;
    run(
        &bin("python"),
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--force-reinstall",
            "--no-deps",
            &wheel.to_string_lossy(),
        ],
    )?;
    run_command(
        Command::new(bin("python"))
            .args(["-m", "pytest", "-q", &root.join("msamamba-py/tests").to_string_lossy()])
            .env("MSAMAMBA_BIN", target.join("debug/msamamba")),
    )
}

/// The workspace's API docs, every rustdoc warning (a broken link, say) an error.
fn doc() -> Result<()> {
    run_command(
        Command::new(cargo_program())
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )
}

/// Runs one of msamamba-kernels' benchmarks on a GPU backend.
fn kernels_bench(bin: &str, backend: GpuBackend, args: &[String]) -> Result<()> {
    let mut command = vec![
        "run",
        "--release",
        "-p",
        "msamamba-kernels",
        "--features",
        backend.name(),
        "--bin",
        bin,
        "--",
        "--backend",
        backend.name(),
    ];
    command.extend(args.iter().map(String::as_str));
    cargo(&command)
}
