//! `cargo xtask bench scan [--backend cuda|wgpu]`: times the scan kernels on the benchmark shapes.
//!
//! For each shape (batch x d_inner 256 x d_state 16 x L): forward and backward median time of
//! `--runs` (>= 10) device-synchronised runs after warm-up, the achieved bandwidth counting the
//! fewest bytes (forward: read u, delta, z, B, C, write y; backward: read those and dy, write du,
//! ddelta, dz, dB, dC), and that as a percentage of an element-wise copy measured in the same run.

#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod bench {
    use std::time::Instant;

    use burn::tensor::{Distribution, Tensor, backend::Backend};
    use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime};
    use msamamba_kernels::SelectiveScanInput;
    use msamamba_kernels::cube::{self, KernelConfig};

    /// The benchmark shapes, [batch, d_inner, d_state, L]: the same 2^18 positions of 256
    /// channels as few long or many short sequences (where one thread per channel does not fill
    /// the GPU, and L must be parallel too), and a batch of MSA rows that fills it by itself.
    pub const SHAPES: [[usize; 4]; 4] = [
        [256, 256, 16, 1024],
        [64, 256, 16, 4096],
        [16, 256, 16, 16384],
        [2208, 256, 16, 1024],
    ];

    fn median(mut times: Vec<f64>) -> f64 {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    }

    /// Waits for `device`; a failed device ends the benchmark with its reason, so that no time is
    /// printed for work that never ran.
    fn sync<B: Backend>(device: &B::Device) {
        if let Err(failure) = msamamba_kernels::device_failure::check::<B>(device) {
            eprintln!("scan_bench: {failure}");
            std::process::exit(1);
        }
    }

    /// Median milliseconds of `runs` synchronised calls of `f`, after two warm-up calls.
    fn time<B: Backend, T>(device: &B::Device, runs: usize, mut f: impl FnMut() -> T) -> f64 {
        for _ in 0..2 {
            drop(f());
        }
        sync::<B>(device);
        let times = (0..runs)
            .map(|_| {
                let start = Instant::now();
                let out = f();
                sync::<B>(device);
                let ms = start.elapsed().as_secs_f64() * 1e3;
                drop(out);
                ms
            })
            .collect();
        median(times)
    }

    /// A random [b, c, l] sequence: contiguous, or with `channels_last` a view of a [b, l, c]
    /// tensor, as the model hands the scan its activations.
    fn sequence<B: Backend>(
        [batch, c, len]: [usize; 3],
        distribution: Distribution,
        channels_last: bool,
        device: &B::Device,
    ) -> Tensor<B, 3> {
        if channels_last {
            Tensor::random([batch, len, c], distribution, device).swap_dims(1, 2)
        } else {
            Tensor::random([batch, c, len], distribution, device)
        }
    }

    fn input<B: Backend>(
        [batch, dim, n, len]: [usize; 4],
        channels_last: bool,
        device: &B::Device,
    ) -> SelectiveScanInput<B> {
        let normal = Distribution::Normal(0.0, 1.0);
        let seq = |c, distribution| sequence::<B>([batch, c, len], distribution, channels_last, device);
        SelectiveScanInput {
            u: seq(dim, normal),
            delta: seq(dim, Distribution::Uniform(-4.0, -1.0)),
            a: Tensor::random([dim, n], Distribution::Uniform(-8.0, -0.5), device),
            b: seq(n, normal),
            c: seq(n, normal),
            d: Tensor::random([dim], normal, device),
            z: Some(seq(dim, normal)),
            delta_bias: Tensor::random([dim], Distribution::Uniform(-1.0, 1.0), device),
            delta_softplus: true,
        }
    }

    /// Element-wise copy bandwidth in GB/s (bytes read + bytes written), on 1 GiB.
    fn copy_bandwidth<B: Backend>(device: &B::Device, runs: usize) -> f64 {
        let n: usize = 1 << 28;
        let x = Tensor::<B, 1>::random([n], Distribution::Normal(0.0, 1.0), device);
        let ms = time::<B, _>(device, runs, || x.clone().neg());
        (2 * 4 * n) as f64 / ms / 1e6
    }

    /// Times the kernels of backend `CubeBackend<R, f32, i32, BT>` with `config` (the backend's
    /// own default unless overridden on the command line). Shapes with a [b, d, l] tensor larger
    /// than `max_tensor_bytes` are reported and skipped: allocating past a backend's buffer limit
    /// aborts the process instead of returning an error.
    pub fn run<R: CubeRuntime, BT: BoolElement>(
        name: &str,
        config: KernelConfig,
        runs: usize,
        shapes: &[[usize; 4]],
        channels_last: bool,
        max_tensor_bytes: usize,
    ) {
        type B<R, BT> = CubeBackend<R, f32, i32, BT>;
        let device = &Default::default();
        println!("{config:?}");
        let copy = copy_bandwidth::<B<R, BT>>(device, runs);
        let layout = if channels_last {
            "channels-last views"
        } else {
            "contiguous [b, d, l]"
        };
        println!("backend {name}; {layout}; element-wise copy {copy:.0} GB/s; median of {runs} runs after warm-up");
        // "fwd" is inference; training runs "fwd, saving" (delta' and the chunk states written on
        // the way, as mamba_ssm's forward writes its chunk states) and "bwd" from what it saved.
        println!(
            "{:>22} | {:>9} {:>8} {:>7} | {:>14} | {:>9} {:>8} {:>7} | L, kernels",
            "b x d x n x L", "fwd ms", "GB/s", "% copy", "fwd, saving ms", "bwd ms", "GB/s", "% copy"
        );
        for &shape in shapes {
            let [batch, dim, n, len] = shape;
            let bytes = 4 * batch * dim * len;
            if bytes > max_tensor_bytes {
                println!(
                    "{:>22} | not run: a [b, d, l] tensor is {:.2} GB, over this backend's {:.2} GB buffer limit",
                    format!("{batch} x {dim} x {n} x {len}"),
                    bytes as f64 / 1e9,
                    max_tensor_bytes as f64 / 1e9
                );
                continue;
            }
            let input = input::<B<R, BT>>(shape, channels_last, device);
            let dy = sequence::<B<R, BT>>([batch, dim, len], Distribution::Normal(0.0, 1.0), channels_last, device);
            let fwd = time::<B<R, BT>, _>(device, runs, || cube::forward(input.clone(), &config));
            let saving = time::<B<R, BT>, _>(device, runs, || cube::forward_saving(input.clone(), &config));
            let saved = cube::forward_saving(input.clone(), &config).checkpoints;
            let bwd = time::<B<R, BT>, _>(device, runs, || {
                cube::backward(input.clone(), saved.clone(), dy.clone(), &config)
            });
            let (bdl, bnl) = ((batch * dim * len) as f64, (batch * n * len) as f64);
            let fwd_gbs = 4.0 * (4.0 * bdl + 2.0 * bnl) / fwd / 1e6;
            let bwd_gbs = 4.0 * (7.0 * bdl + 4.0 * bnl) / bwd / 1e6;
            let plan = cube::plan(input.clone(), &config);
            println!(
                "{:>22} | {:>9.3} {:>8.0} {:>6.1}% | {:>14.3} | {:>9.3} {:>8.0} {:>6.1}% | {}{} forward, {} saving, {} backward",
                format!("{batch} x {dim} x {n} x {len}"),
                fwd,
                fwd_gbs,
                100.0 * fwd_gbs / copy,
                saving,
                bwd,
                bwd_gbs,
                100.0 * bwd_gbs / copy,
                if plan.split { "split, " } else { "" },
                if plan.lanes { "lanes" } else { "thread" },
                if plan.lane_saving { "lanes" } else { "thread" },
                if plan.lane_backward { "lanes" } else { "thread" }
            );
        }
    }
}

fn main() {
    msamamba_kernels::device_failure::watch();
    let mut backend = String::from(if cfg!(feature = "cuda") { "cuda" } else { "wgpu" });
    let mut runs = 10usize;
    let mut small = false;
    let mut channels_last = false;
    let mut only: Vec<usize> = Vec::new();
    let mut extra: Vec<[usize; 4]> = Vec::new();
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    let mut config = msamamba_kernels::cube::KernelConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--backend" => backend = args.next().unwrap_or_default(),
            "--runs" => runs = args.next().and_then(|r| r.parse().ok()).unwrap_or(10).max(10),
            // A quick smoke run on small shapes (CI machines, software Vulkan).
            "--small" => small = true,
            // The model's layout: channels-last views instead of contiguous [b, d, l] tensors.
            "--channels-last" => channels_last = true,
            // Only the benchmark shape number K (0-based), repeatable.
            "--only" => only.extend(args.next().and_then(|k| k.parse::<usize>().ok())),
            // Another shape, b,d,n,l (repeatable; with --only K alone, only these).
            "--shape" => {
                let dims: Vec<usize> = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|v| v.parse().ok())
                    .collect();
                match <[usize; 4]>::try_from(dims) {
                    Ok(shape) if !shape.contains(&0) => extra.push(shape),
                    _ => {
                        eprintln!("scan_bench: --shape takes four positive sizes, b,d,n,l");
                        std::process::exit(2);
                    }
                }
            }
            // Tuning overrides: channels per cube, shared-memory budget of the backward (bytes).
            #[cfg(any(feature = "wgpu", feature = "cuda"))]
            "--block" => config.block = args.next().and_then(|r| r.parse().ok()).unwrap_or(config.block),
            #[cfg(any(feature = "wgpu", feature = "cuda"))]
            "--bwd-shared" => {
                config.backward_shared_bytes = args
                    .next()
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(config.backward_shared_bytes)
            }
            #[cfg(any(feature = "wgpu", feature = "cuda"))]
            "--chunk" => config.chunk = args.next().and_then(|r| r.parse().ok()).unwrap_or(config.chunk),
            // When to split L into chunks scanned in parallel, and into how many backward cubes.
            #[cfg(any(feature = "wgpu", feature = "cuda"))]
            "--split-below" => {
                config.split_below = args.next().and_then(|r| r.parse().ok()).unwrap_or(config.split_below)
            }
            #[cfg(any(feature = "wgpu", feature = "cuda"))]
            "--split-cubes" => {
                config.split_cubes = args.next().and_then(|r| r.parse().ok()).unwrap_or(config.split_cubes)
            }
            // The backward's dB / dC sums in shared memory even where a plane could take them.
            #[cfg(any(feature = "wgpu", feature = "cuda"))]
            "--no-plane" => config.plane_sums = false,
            // The lanes kernels: channels (planes) per cube, 0 for the one-thread-per-channel
            // kernels; positions per lane and tile of the forward (the backward's tile is a chunk).
            #[cfg(any(feature = "wgpu", feature = "cuda"))]
            "--lane-channels" => {
                config.lane_channels = args.next().and_then(|r| r.parse().ok()).unwrap_or(config.lane_channels)
            }
            // The lanes backward (and the saving forward on lanes with it, unless --thread-saving)
            // on channels-last views too, or nowhere.
            #[cfg(any(feature = "wgpu", feature = "cuda"))]
            "--lane-backward" => config.lane_backward = msamamba_kernels::cube::LaneBackward::Always,
            #[cfg(any(feature = "wgpu", feature = "cuda"))]
            "--thread-backward" => config.lane_backward = msamamba_kernels::cube::LaneBackward::Off,
            // The saving forward on the one-thread-per-channel kernel where the lanes backward runs.
            #[cfg(any(feature = "wgpu", feature = "cuda"))]
            "--thread-saving" => config.lane_saving = false,
            #[cfg(any(feature = "wgpu", feature = "cuda"))]
            "--lane-items" => config.lane_items = args.next().and_then(|r| r.parse().ok()).unwrap_or(config.lane_items),
            other => {
                eprintln!("scan_bench: unknown argument `{other}` (expected --backend cuda|wgpu, --runs N, --small)");
                std::process::exit(2);
            }
        }
    }
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    let shapes: Vec<[usize; 4]> = if small {
        vec![[4, 256, 16, 256], [1, 256, 16, 1024]]
    } else {
        bench::SHAPES
            .iter()
            .enumerate()
            .filter(|(k, _)| (only.is_empty() && extra.is_empty()) || only.contains(k))
            .map(|(_, s)| *s)
            .chain(extra.iter().copied())
            .collect()
    };
    match backend.as_str() {
        #[cfg(feature = "cuda")]
        "cuda" => bench::run::<cubecl::cuda::CudaRuntime, u8>("cuda", config, runs, &shapes, channels_last, usize::MAX),
        // wgpu caps a buffer at 2 GiB (the MSA shape's 2.3 GB tensors are over it).
        #[cfg(feature = "wgpu")]
        "wgpu" => bench::run::<cubecl::wgpu::WgpuRuntime, u32>("wgpu", config, runs, &shapes, channels_last, 1 << 31),
        other => {
            let _ = (small, channels_last, &only, &extra, runs);
            eprintln!("scan_bench: backend `{other}` was not compiled in (features: wgpu, cuda)");
            std::process::exit(2);
        }
    }
}
