"""mamba_ssm's selective-scan CUDA kernel behind the autograd wrapper that mamba_ssm puts around it,
and the same scan written out in PyTorch for `check`.

None of mamba_ssm is kept in the repository: `build` compiles the csrc/selective_scan folder of
state-spaces/mamba that the caller names, with the flags of mamba_ssm's setup.py, into a git-ignored
folder.

Shapes, as Mamba-1 calls the scan: u, delta, z: [b, E, L]; A: [E, N]; B, C: [b, N, L] (one group,
shared by all channels); D, delta_bias: [E]; y: [b, E, L].
"""
import os
import re
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

# The repository's git-ignored folder for what the benchmarks build (.gitignore: /bench-ref/).
BUILD_ROOT = Path(__file__).resolve().parents[2] / "bench-ref"

_ext = None


def nvcc_flags(arch):
    """mamba_ssm's setup.py flags for the selective-scan sources, for one architecture: the card
    the harness runs on (all of setup.py's architectures would only lengthen the build). Its
    `--ptxas-options=-v` is left out: it only prints register counts."""
    return [
        "-O3",
        "-std=c++17",
        "-U__CUDA_NO_HALF_OPERATORS__",
        "-U__CUDA_NO_HALF_CONVERSIONS__",
        "-U__CUDA_NO_BFLOAT16_OPERATORS__",
        "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
        "-U__CUDA_NO_BFLOAT162_OPERATORS__",
        "-U__CUDA_NO_BFLOAT162_CONVERSIONS__",
        "--expt-relaxed-constexpr",
        "--expt-extended-lambda",
        "--use_fast_math",
        "-lineinfo",
        f"-gencode=arch=compute_{arch},code=sm_{arch}",
        "--threads",
        "4",
    ]


def default_build_dir(arch):
    # One folder per card architecture and torch build: ninja only compares timestamps, so an
    # object built against another torch would be linked as if current.
    tag = f"sm{arch}_torch{torch.__version__}_cuda{torch.version.cuda}"
    tag = re.sub(r"[^0-9A-Za-z.]+", "_", tag)
    return BUILD_ROOT / f"selective_scan_{tag}"


def build(csrc, build_dir=None, verbose=False):
    """Compiles csrc's `selective_scan_cuda` extension for the current GPU, or loads the build that
    is already there; returns the module (its `fwd` and `bwd`)."""
    global _ext
    if _ext is not None:
        return _ext
    from torch.utils.cpp_extension import load

    if not os.path.isfile(os.path.join(csrc, "selective_scan.cpp")):
        raise RuntimeError(
            f"--csrc {csrc}: no selective_scan.cpp there; pass a copy of state-spaces/mamba's "
            "csrc/selective_scan folder"
        )
    major, minor = torch.cuda.get_device_capability()
    arch = f"{major}{minor}"
    # Every .cu: selective_scan.cpp dispatches over fp32/fp16/bf16 inputs and real/complex
    # weights, so the module does not load without all of their instantiations.
    kernels = sorted(f for f in os.listdir(csrc) if f.endswith(".cu"))
    out = Path(build_dir) if build_dir else default_build_dir(arch)
    out.mkdir(parents=True, exist_ok=True)
    # ninja's default is every core plus two; nvcc with --threads 4 needs the memory of several.
    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 1))
    print(f"selective_scan_cuda: building or loading in {out} (a first build takes minutes)",
          file=sys.stderr, flush=True)
    _ext = load(
        name="selective_scan_cuda",
        sources=[os.path.join(csrc, f) for f in ["selective_scan.cpp", *kernels]],
        extra_cflags=["-O3", "-std=c++17"],
        extra_cuda_cflags=nvcc_flags(arch),
        extra_include_paths=[csrc],
        build_directory=str(out),
        verbose=verbose,
    )
    return _ext


class SelectiveScan(torch.autograd.Function):
    """mamba_ssm's `selective_scan_fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus=True)`
    on its CUDA kernel: y = (C·h + D u) * silu(z), h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t,
    Δ = softplus(delta + delta_bias). `build` must have run."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias):
        # The kernel reads L with unit stride; z and B, C come here as views of wider tensors.
        u, delta, z = u.contiguous(), delta.contiguous(), z.contiguous()
        B, C = B.contiguous().unsqueeze(1), C.contiguous().unsqueeze(1)  # [b, 1, N, L]: one group
        out, x, out_z = _ext.fwd(u, delta, A, B, C, D, z, delta_bias, True)
        # x: the state at each 2048-position chunk's end, which the backward starts from.
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, x, out)
        return out_z

    @staticmethod
    def backward(ctx, dy):
        u, delta, A, B, C, D, z, delta_bias, x, out = ctx.saved_tensors
        du, ddelta, dA, dB, dC, dD, ddelta_bias, dz = _ext.bwd(
            u, delta, A, B, C, D, z, delta_bias, dy.contiguous(), x, out, None, True, False
        )
        return du, ddelta, dA, dB.squeeze(1), dC.squeeze(1), dD, dz, ddelta_bias


def kernel_scan(u, delta, A, B, C, D, z, delta_bias):
    return SelectiveScan.apply(u, delta, A, B, C, D, z, delta_bias)


def torch_scan(u, delta, A, B, C, D, z, delta_bias):
    """The same function, one position at a time in the inputs' dtype: the oracle (in float64)
    and the model's scan where the kernel is not built (`check` only; far too slow to time)."""
    b, e, l = u.shape
    dt = F.softplus(delta + delta_bias[None, :, None])  # [b, E, L]
    decay = torch.exp(dt.unsqueeze(-1) * A[:, None, :])  # [b, E, L, N]
    push = (dt * u).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(1)  # [b, E, L, N]
    h = u.new_zeros(b, e, A.shape[1])
    ys = []
    for t in range(l):
        h = decay[:, :, t] * h + push[:, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))  # [b, E]
    y = torch.stack(ys, -1) + D[None, :, None] * u  # [b, E, L]
    return y * F.silu(z)
