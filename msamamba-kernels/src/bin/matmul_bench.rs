//! `matmul_bench [--backend cuda|wgpu] [--tokens T]`: times cubek's matmul strategies on the paper
//! model's projections, to pick the one its linears run.
//!
//! The projections' products are a large share of a training step's GPU time (T = 184 320 tokens
//! at b=2, M=90, L=1024), and on their narrow shapes burn's default strategy is well behind
//! cuBLAS (BENCHMARKS.md). Each projection appears in three shapes: the forward [T, k] x [k, n],
//! the input's gradient [T, n] x [n, k] (the weight transposed, a view), and the weight's
//! gradient, a batch of [k, l] x [l, n] per row (the input transposed, a view). Per strategy and
//! shape: the median of `--runs` timings of 10 launches each, device-synchronised, as JSON lines.

#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod bench {
    use std::time::Instant;

    use burn::tensor::{Distribution, Tensor};
    use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, tensor::CubeTensor};
    use cubek::matmul::components::tile::TileMatmulKind;
    use cubek::matmul::launch::Strategy;
    use cubek::matmul::routines::BlueprintStrategy;
    use cubek::matmul::routines::double_buffering::DoubleBufferingArgs;
    use cubek::matmul::routines::ordered_double_buffering::OrderedSelectionArgs;
    use cubek::matmul::routines::simple::SimpleArgs;
    use msamamba_kernels::cube::matmul;

    /// The paper model's projections: (name, k, n).
    const PROJECTIONS: [(&str, usize, usize); 6] = [
        ("in_proj / mlp up", 128, 512),
        ("x_proj", 256, 40),
        ("dt_proj", 8, 256),
        ("out_proj", 256, 128),
        ("attention q, k, v, o", 128, 128),
        ("mlp down", 512, 128),
    ];

    /// The candidates: burn's default, and the tiled variants its autotuner would weigh.
    fn strategies() -> Vec<Strategy> {
        let mut out = vec![Strategy::Auto];
        for kind in [TileMatmulKind::Cmma, TileMatmulKind::Mma] {
            for multi_rows in [false, true] {
                let args = SimpleArgs {
                    tile_matmul: kind,
                    multi_rows,
                };
                out.push(match kind {
                    TileMatmulKind::Cmma => Strategy::SimpleCyclicCmma(BlueprintStrategy::Inferred(args)),
                    _ => Strategy::SimpleCyclicMma(BlueprintStrategy::Inferred(args)),
                });
            }
            for specialized in [false, true] {
                let args = DoubleBufferingArgs {
                    tile_matmul: kind,
                    specialized,
                };
                out.push(match kind {
                    TileMatmulKind::Cmma => Strategy::DoubleCyclicCmma(BlueprintStrategy::Inferred(args)),
                    _ => Strategy::DoubleCyclicMma(BlueprintStrategy::Inferred(args)),
                });
            }
            let ordered = OrderedSelectionArgs {
                tile_matmul: kind,
                partition_k: Some(2),
                row_count: Some(4),
                rows_per_plane: Some(2),
            };
            out.push(match kind {
                TileMatmulKind::Cmma => Strategy::OrderedDoubleCmma(BlueprintStrategy::Inferred(ordered)),
                _ => Strategy::OrderedDoubleMma(BlueprintStrategy::Inferred(ordered)),
            });
        }
        out.push(Strategy::SpecializedCyclicCmma(BlueprintStrategy::Inferred(().into())));
        out.push(Strategy::SpecializedCyclicMma(BlueprintStrategy::Inferred(().into())));
        out.push(Strategy::SimpleTmaMma(BlueprintStrategy::Inferred(SimpleArgs {
            tile_matmul: TileMatmulKind::Mma,
            multi_rows: false,
        })));
        out.push(Strategy::SpecializedTmaMma(BlueprintStrategy::Inferred(().into())));
        out
    }

    fn prim<R: CubeRuntime, BT: BoolElement, const D: usize>(
        t: Tensor<CubeBackend<R, f32, i32, BT>, D>,
    ) -> CubeTensor<R> {
        t.into_primitive().tensor()
    }

    fn launch<R: CubeRuntime>(
        strategy: &Strategy,
        lhs: &CubeTensor<R>,
        rhs: &CubeTensor<R>,
        out: &CubeTensor<R>,
    ) -> Result<(), String> {
        matmul::launch(strategy, lhs, rhs, out).map_err(|e| format!("{e:?}").chars().take(160).collect())
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    /// Times every strategy on `lhs @ rhs` (shapes [.., m, k] and [.., k, n]) and prints a line
    /// each; the largest difference from the default strategy's output is reported as a check.
    fn shape<R: CubeRuntime, BT: BoolElement, const D: usize>(
        name: &str,
        form: &str,
        lhs: Tensor<CubeBackend<R, f32, i32, BT>, D>,
        rhs: Tensor<CubeBackend<R, f32, i32, BT>, D>,
        runs: usize,
    ) {
        type B<R, BT> = CubeBackend<R, f32, i32, BT>;
        let device = lhs.device();
        let want = lhs.clone().matmul(rhs.clone());
        let out_dims = want.dims();
        let (l, r) = (prim(lhs.clone()), prim(rhs.clone()));
        let flops = 2.0 * out_dims.iter().product::<usize>() as f64 * lhs.dims()[D - 1] as f64;
        for strategy in strategies() {
            let out = Tensor::<B<R, BT>, D>::zeros(out_dims, &device);
            let o = prim(out.clone());
            let line = match launch(&strategy, &l, &r, &o) {
                Err(e) => format!("\"error\":{e:?}"),
                Ok(()) => {
                    let diff: f32 = (out.clone() - want.clone()).abs().max().into_scalar();
                    let times = (0..runs)
                        .map(|_| {
                            <B<R, BT> as burn::tensor::backend::Backend>::sync(&device).expect("sync");
                            let start = Instant::now();
                            for _ in 0..10 {
                                launch(&strategy, &l, &r, &o).expect("launched once");
                            }
                            <B<R, BT> as burn::tensor::backend::Backend>::sync(&device).expect("sync");
                            start.elapsed().as_secs_f64() * 1e3 / 10.0
                        })
                        .collect();
                    let ms = median(times);
                    format!(
                        "\"ms\":{ms:.4},\"tflops\":{:.1},\"max_diff\":{diff:.2e}",
                        flops / ms / 1e9
                    )
                }
            };
            println!(
                "{{\"bench\":\"matmul\",\"projection\":{name:?},\"form\":{form:?},\"lhs\":{:?},\"rhs\":{:?},\"strategy\":\"{strategy}\",{line}}}",
                lhs.dims(),
                rhs.dims()
            );
        }
    }

    pub fn run<R: CubeRuntime, BT: BoolElement>(tokens: usize, rows: usize, runs: usize) {
        type B<R, BT> = CubeBackend<R, f32, i32, BT>;
        let device = &Default::default();
        let normal = Distribution::Normal(0.0, 1.0);
        let len = tokens / rows;
        for (name, k, n) in PROJECTIONS {
            let x = Tensor::<B<R, BT>, 2>::random([tokens, k], normal, device);
            let w = Tensor::<B<R, BT>, 2>::random([k, n], normal, device);
            let g = Tensor::<B<R, BT>, 2>::random([tokens, n], normal, device);
            shape(name, "forward", x.clone(), w.clone(), runs);
            shape(name, "input gradient", g.clone(), w.transpose(), runs);
            let xb = x.reshape([rows, len, k]).swap_dims(1, 2);
            shape(name, "weight gradient", xb, g.reshape([rows, len, n]), runs);
        }
    }
}

fn main() {
    let mut backend = String::from(if cfg!(feature = "cuda") { "cuda" } else { "wgpu" });
    let (mut tokens, mut rows, mut runs) = (184_320usize, 180usize, 10usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--backend" {
            backend = args.next().unwrap_or_default();
            continue;
        }
        let value = args.next().and_then(|v| v.parse::<usize>().ok()).filter(|&v| v > 0);
        match (arg.as_str(), value) {
            ("--tokens", Some(v)) => tokens = v,
            ("--rows", Some(v)) => rows = v,
            ("--runs", Some(v)) => runs = v,
            _ => {
                eprintln!("matmul_bench: `{arg}`: expected --backend cuda|wgpu, --tokens N, --rows N, --runs N");
                std::process::exit(2);
            }
        }
    }
    match backend.as_str() {
        #[cfg(feature = "cuda")]
        "cuda" => bench::run::<cubecl::cuda::CudaRuntime, u8>(tokens, rows, runs),
        #[cfg(feature = "wgpu")]
        "wgpu" => bench::run::<cubecl::wgpu::WgpuRuntime, u32>(tokens, rows, runs),
        other => {
            let _ = (tokens, rows, runs);
            eprintln!("matmul_bench: backend `{other}` was not compiled in (features: wgpu, cuda)");
            std::process::exit(2);
        }
    }
}
