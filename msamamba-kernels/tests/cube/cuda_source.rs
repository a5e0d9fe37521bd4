//! Every kernel variant the tests launch, compiled for Pascal (compute capability 6.0) without a
//! GPU: the operations run on `CudaSourceRuntime`, which records the CUDA source of each launch
//! (see `msamamba_kernels::cuda_source`), over the shapes, settings and layouts of the other test
//! modules; NVRTC 12 then compiles every source to sm_60 machine code. And which path each capability
//! gets: bf16, and the projections' matmul strategy.

use crate::common::{AttentionProblem, ConvProblem, Mask, NormProblem, rng};
use crate::{adamw, causal_conv, linear, residual_norm, row_attention, scan};
use burn::tensor::DType;
use msamamba_kernels::cube::{self, KernelConfig, LaneBackward};
use msamamba_kernels::cuda_source::nvrtc::{Nvrtc, compile_recorded};
use msamamba_kernels::cuda_source::{Capability, CudaSourceBackend as Pascal, CudaSourceDevice, recorded};
use msamamba_kernels::{CausalConvInput, RecomputedLinearBackend};

/// Every scan kernel variant: the test shapes, gated or not, with softplus or not, under every
/// test setting and the default config, on each layout the model and the tests hand over, the
/// forward that saves checkpoints and the one that does not, the backward from saved checkpoints
/// and from its own; and the launches past the grid's limits.
fn scan_variants(device: &CudaSourceDevice) {
    let mut rng = rng();
    let shapes = scan::SHAPES.iter().chain(&scan::SPLIT_SHAPES);
    for &(dims, chunk) in shapes {
        for (gated, softplus) in [(true, true), (false, true), (true, false), (false, false)] {
            let problem = scan::Problem::random(&mut rng, dims, gated, softplus);
            let mut configs: Vec<KernelConfig> =
                scan::SETTINGS.iter().map(|&s| scan::setting_config(chunk, s)).collect();
            configs.push(scan::setting_config(chunk, (0, 4096, 3, 3)));
            configs.push(KernelConfig::default());
            configs.push(KernelConfig {
                lane_saving: false,
                ..scan::setting_config(chunk, (usize::MAX, usize::MAX, 4, 4))
            });
            for config in &configs {
                let layouts = [
                    (problem.input::<Pascal>(device), problem.dy::<Pascal>(device)),
                    (problem.input_views::<Pascal>(device), problem.dy_view::<Pascal>(device)),
                    (problem.input_views::<Pascal>(device), problem.dy::<Pascal>(device)),
                    (problem.input::<Pascal>(device), problem.dy_view::<Pascal>(device)),
                ];
                for (input, dy) in layouts {
                    if !cube::supported(&input, config) {
                        continue;
                    }
                    let saved = cube::forward_saving(input.clone(), config);
                    let _ = cube::forward(input.clone(), config);
                    let _ = cube::backward(input.clone(), saved.checkpoints, dy.clone(), config);
                    let _ = cube::backward(input, None, dy, config);
                }
            }
        }
    }
    let problem = scan::Problem::random(&mut rng, [1, 1030, 4, 300], true, true);
    for setting in [(usize::MAX, usize::MAX, 8, 4), (0, 4096, 8, 4)] {
        let config = scan::setting_config(64, setting);
        let input = problem.input::<Pascal>(device);
        let saved = cube::forward_saving(input.clone(), &config);
        let _ = cube::backward(input, saved.checkpoints, problem.dy::<Pascal>(device), &config);
    }
    let long = scan::Problem::random(&mut rng, [1, 2, 2, 70_000], true, true);
    let config = scan::setting_config(1, (usize::MAX, 8192, 4, 4));
    let saved = cube::forward_saving(long.input::<Pascal>(device), &config);
    let _ = cube::backward(
        long.input::<Pascal>(device),
        saved.checkpoints,
        long.dy::<Pascal>(device),
        &config,
    );
    let rows = scan::Problem::random(&mut rng, [65_600, 2, 2, 3], true, true);
    let config = KernelConfig {
        lane_backward: LaneBackward::Always,
        ..Default::default()
    };
    let _ = cube::backward(rows.input::<Pascal>(device), None, rows.dy::<Pascal>(device), &config);
    let _ = scan::autodiff_grads::<Pascal>(&scan::Problem::random(&mut rng, [2, 48, 16, 200], true, true), device);
}

/// The other operations' kernels over their test shapes, directly and through burn's autodiff.
fn other_variants(device: &CudaSourceDevice) {
    let mut rng = rng();
    for (dims, heads) in row_attention::SHAPES.into_iter().chain([([1, 3, 16_400, 8], 4)]) {
        let problem = AttentionProblem::random(&mut rng, dims, heads, Mask::Random);
        let input = problem.input::<Pascal>(device);
        if cube::row_attention::supported(&input) {
            let saved = cube::row_attention::forward(input.clone());
            let _ = cube::row_attention::backward(input, saved, problem.dout::<Pascal>(device));
        }
        let _ = row_attention::autodiff_grad::<Pascal>(&problem, device);
    }
    for dims in causal_conv::SHAPES {
        for silu in [true, false] {
            let problem = ConvProblem::random(&mut rng, dims, silu);
            let inputs: [CausalConvInput<Pascal>; 2] =
                [problem.input(device), causal_conv::sliced(&problem, DType::F32, device)];
            for input in inputs.into_iter().filter(cube::causal_conv::supported) {
                let _ = cube::causal_conv::forward(input.clone());
                let _ = cube::causal_conv::backward(input, problem.dy::<Pascal>(device));
            }
            let _ = causal_conv::autodiff_grads::<Pascal>(&problem, device);
        }
    }
    for dims in residual_norm::SHAPES {
        let problem = NormProblem::random(&mut rng, dims);
        let input = problem.input::<Pascal>(device);
        if cube::residual_norm::supported(&input) {
            let _ = cube::residual_norm::forward(input.clone());
            let _ = cube::residual_norm::backward(input, problem.dout::<Pascal>(device));
        }
        let _ = residual_norm::autodiff_grads::<Pascal>(&problem, device);
    }
    for dims in linear::SHAPES {
        let t = linear::random(&mut rng, dims[0] * dims[1]);
        for transposed in [false, true] {
            let _ = linear::column_sums::<Pascal>(&t, dims, transposed);
        }
    }
    for dims @ [batch, m, k, n] in linear::PRODUCTS {
        let (a, b) = (
            linear::random(&mut rng, batch * m * k),
            linear::random(&mut rng, batch * k * n),
        );
        for (a_t, b_t) in [(false, false), (true, false), (false, true)] {
            let _ = linear::product::<Pascal>(&a, &b, dims, a_t, b_t);
        }
    }
    for recomputed in [false, true] {
        let [k, n] = [16, 24];
        let x = linear::random(&mut rng, 30 * k);
        let (w, b, dy) = (
            linear::random(&mut rng, k * n),
            linear::random(&mut rng, n),
            linear::random(&mut rng, 30 * n),
        );
        let _ = linear::linear_grads::<Pascal>(&x, &w, &b, &dy, [k, n], recomputed);
    }
    for weight_decay in [0.0, 0.1] {
        let _ = adamw::three_steps::<Pascal>(&[0.5, -1.0, 2.0], &vec![vec![0.1, 0.2, -0.3]; 3], weight_decay, true);
    }
}

#[test]
fn every_kernel_variant_compiles_for_pascal_with_nvrtc() {
    let device = CudaSourceDevice {
        capability: Capability::PASCAL,
    };
    scan_variants(&device);
    other_variants(&device);
    if let Err(failed) = compile_recorded(&device) {
        panic!("{failed}");
    }
    let recorded = recorded(&device);
    let recorded = recorded.lock().expect("the record");
    // Each operation's kernels are among them (by the module that defines them).
    for module in [
        "forward",
        "backward",
        "forward_lanes",
        "backward_lanes",
        "combine",
        "row_attention",
        "residual_norm",
        "causal_conv",
        "column_sums",
        "adamw",
    ] {
        let path = format!("msamamba_kernels::cube::{module}::");
        assert!(
            recorded.kernels.values().any(|k| k.name.contains(&path)),
            "no kernel of cube::{module} was launched"
        );
    }
}

#[test]
fn nvrtc_refuses_sm_80_instructions_for_sm_60() {
    // The check above is only as good as NVRTC's target: what Ampere introduced must not compile
    // for Pascal, whether an intrinsic (a warp reduction) or inline PTX (an asynchronous copy,
    // which only the assembly to machine code checks).
    let nvrtc = Nvrtc::load().unwrap_or_else(|e| panic!("{e}"));
    let sources = [
        r#"extern "C" __global__ void k(unsigned* x) { x[0] = __reduce_add_sync(0xffffffffu, x[threadIdx.x]); }"#,
        r#"extern "C" __global__ void k(float* x) {
            __shared__ float s[4];
            unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(s));
            asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" :: "r"(d), "l"(x) : "memory");
            x[1] = s[0];
        }"#,
    ];
    for source in sources {
        assert!(
            nvrtc.compile(source, Capability(80)).is_ok(),
            "does not compile for sm_80: {source}"
        );
        let refused = nvrtc.compile(source, Capability::PASCAL);
        assert!(refused.is_err(), "compiles for sm_60: {source}");
    }
}

/// The kernels one projection product launches on a card of `capability`.
fn matmul_kernels(capability: u32) -> Vec<&'static str> {
    let device = CudaSourceDevice {
        capability: Capability(capability),
    };
    let a = burn::tensor::Tensor::<Pascal, 2>::ones([256, 128], &device);
    let b = burn::tensor::Tensor::<Pascal, 2>::ones([128, 512], &device);
    let before: Vec<String> = recorded(&device)
        .lock()
        .expect("the record")
        .kernels
        .keys()
        .cloned()
        .collect();
    let _ = Pascal::projection_matmul(a.into_primitive().tensor(), b.into_primitive().tensor());
    let record = recorded(&device);
    let record = record.lock().expect("the record");
    let failures: Vec<&str> = record.failures.iter().map(|f| f.reason.as_str()).collect();
    assert!(failures.is_empty(), "sm_{capability}: {failures:?}");
    record
        .kernels
        .iter()
        .filter(|(variant, _)| !before.contains(variant))
        .map(|(_, k)| k.name)
        .collect()
}

#[test]
fn each_capability_gets_the_matmul_and_bf16_it_has() {
    // Hopper: tensor-memory (TMA) loads with warp-level mma; Ampere and Ada: cyclic loads with
    // mma; Volta, Turing and Pascal: no mma, so burn's matmul.
    let entry = "cubek_matmul::components::batch::partitioned_matmul::matmul::matmul_entry::MatmulEntry<cubek_matmul::launch::args::";
    for (capability, args) in [(90, "TensorMapArgs"), (89, "TensorArgs"), (80, "TensorArgs")] {
        let kernels = matmul_kernels(capability);
        assert!(
            kernels.len() == 1 && kernels[0].starts_with(&format!("{entry}{args},")),
            "sm_{capability}: {kernels:#?}"
        );
        let device = CudaSourceDevice {
            capability: Capability(capability),
        };
        assert!(
            Pascal::matmul_accelerates(DType::BF16, &device),
            "sm_{capability}: bf16 on tensor cores"
        );
    }
    for capability in [75, 70, 60] {
        let kernels = matmul_kernels(capability);
        assert!(
            !kernels.is_empty()
                && kernels
                    .iter()
                    .all(|k| !k.contains("Mma") && !k.contains("TensorMapArgs")),
            "sm_{capability}: {kernels:#?}"
        );
        let device = CudaSourceDevice {
            capability: Capability(capability),
        };
        assert!(
            !Pascal::matmul_accelerates(DType::BF16, &device),
            "sm_{capability}: no bf16 tensor cores"
        );
    }
}
