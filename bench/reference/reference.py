#!/usr/bin/env python3
"""The PyTorch + mamba_ssm reference that msamamba's speed and memory targets are ratios against:
a training step of the same model, and mamba_ssm's selective scan alone. See README.md beside this
file.

  reference.py --csrc DIR scan [--dtype fp32|bf16] [--shape B,D,N,L]...
  reference.py --csrc DIR model [--model msamamba|rowtx] [--batch B] [--rows M] [--lens L[,L...]]
               [--row-keep P] [--dtype fp32|bf16] [--tf32] [--compile] [--d D] [--layers N]
               [--reps R] [--warmup W] [--max-rows R]
  reference.py [--csrc DIR] check [--device cpu|cuda]

Top-level: --csrc DIR, a copy of state-spaces/mamba's csrc/selective_scan; --build-dir DIR, where
its kernel is compiled; --out F, appends the whole result to F as one JSON line. Each result is one
JSON line on stdout; a failure is a line with `error`.
"""
import argparse
import gc
import json
import os
import sys

# The sibling modules, whatever the working directory.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import models  # noqa: E402
import scan_kernel  # noqa: E402
from timing import copy_gbps, cuda_ms  # noqa: E402

# The scan shapes of the issues: Mamba-1 at d_model 128 (E 256, N 16), b rows of L positions.
SCAN_SHAPES = [
    (256, 256, 16, 1024), (64, 256, 16, 4096), (16, 256, 16, 16384), (2208, 256, 16, 1024),
]

MASK_RATE = 0.15
IGNORE = -100


def emit(record):
    print(json.dumps(record), flush=True)


def failure(exc):
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return "OOM"
    return repr(exc)[:300]


def release():
    # An exception's frames hold their tensors until collected.
    gc.collect()
    torch.cuda.empty_cache()


def scan_inputs(b, d, n, l, io, device="cuda"):
    """Random scan inputs: u, delta, B, C, z in `io`; A, D, delta_bias in float32 (as mamba_ssm
    receives them under autocast); A in [-4.1, -0.1]."""
    def randn(*shape, dtype=torch.float32, scale=1.0):
        return torch.randn(*shape, device=device, dtype=dtype) * scale

    u = randn(b, d, l, dtype=io)
    delta = randn(b, d, l, dtype=io, scale=0.5)
    a = -torch.rand(d, n, device=device) * 4 - 0.1
    bm, cm = randn(b, n, l, dtype=io), randn(b, n, l, dtype=io)
    dskip = randn(d)
    z = randn(b, d, l, dtype=io)
    delta_bias = randn(d, scale=0.1)
    return [u, delta, a, bm, cm, dskip, z, delta_bias]


def rel_err(x, ref):
    """max |x - ref| / max |ref|, in float64."""
    x, ref = x.double(), ref.double()
    return float((x - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def scan_accuracy():
    """The kernel's forward against the float64 oracle on one small fp32 shape."""
    inputs = scan_inputs(2, 8, 16, 300, torch.float32)
    with torch.no_grad():
        y = scan_kernel.kernel_scan(*inputs)
        ref = scan_kernel.torch_scan(*(t.double() for t in inputs))
    return rel_err(y, ref)


def time_scan(b, d, n, l, io, reps, warmup):
    """Forward ms (no autograd) and backward ms (forward + backward, less the forward)."""
    inputs = [t.requires_grad_() for t in scan_inputs(b, d, n, l, io)]
    y = scan_kernel.kernel_scan(*inputs)
    dy = torch.randn_like(y)
    del y
    with torch.no_grad():
        fwd_ms = cuda_ms(lambda: scan_kernel.kernel_scan(*inputs), reps, warmup)

    def forward_backward():
        y = scan_kernel.kernel_scan(*inputs)
        torch.autograd.grad(y, inputs, dy)

    both_ms = cuda_ms(forward_backward, reps, warmup)
    # Bytes the forward must move at least: u, delta, z read and y written, B and C read.
    fwd_bytes = inputs[0].element_size() * (4 * b * d * l + 2 * b * n * l)
    return fwd_ms, both_ms - fwd_ms, fwd_bytes


def cmd_scan(args):
    scan_kernel.build(args.csrc, args.build_dir)
    torch.manual_seed(0)
    device = torch.cuda.get_device_name()
    result = {"device": device, "copy_GBps": copy_gbps(), "scan": []}
    result["rel_err_vs_f64"] = scan_accuracy()
    print(json.dumps({k: result[k] for k in ("device", "copy_GBps", "rel_err_vs_f64")}),
          file=sys.stderr, flush=True)
    result["dtype"] = args.dtype
    # bf16: u, delta, B, C, z (and y) in bfloat16, A, D, delta_bias in float32, as mamba_ssm runs
    # under autocast; the kernel keeps its state and sums in float32 either way.
    io = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    for b, d, n, l in args.shape or SCAN_SHAPES:
        rec = {"batch": b, "L": l, "dtype": args.dtype, "d_inner": d, "d_state": n,
               "device": device}
        release()
        try:
            fwd_ms, bwd_ms, fwd_bytes = time_scan(b, d, n, l, io, args.reps, args.warmup)
            rec.update(fwd_ms=fwd_ms, bwd_ms=bwd_ms,
                       fwd_pct_copy=100 * fwd_bytes / fwd_ms / 1e6 / result["copy_GBps"])
        except Exception as e:  # noqa: BLE001 - reported as the shape's result
            rec["error"] = failure(e)
        result["scan"].append(rec)
        emit(rec)
    return result


def synthetic_batch(batch, rows, l, row_keep, device):
    """Random bases, a row-keep mask that always keeps row 0, and MLM targets on row 0 at 15% of
    the positions (the rest ignored). The draws follow one fixed order from the seed, so a run keeps
    the same rows for the same shape."""
    tokens = torch.randint(0, 5, (batch, rows, l), device=device)
    keep = torch.rand(batch, rows, device=device) < row_keep
    keep[:, 0] = True
    target_row = tokens[:, 0]
    masked = torch.rand(batch, l, device=device) < MASK_RATE
    target = torch.where(masked, target_row, torch.full_like(target_row, IGNORE))
    return tokens, keep, target


def train_step(model, opt, tokens, keep, target, bf16):
    """Forward and loss (under bf16 autocast if asked), backward, AdamW."""
    with torch.autocast(tokens.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(tokens, keep)  # [B, L, 6]
        loss = F.cross_entropy(logits.float().reshape(-1, models.VOCAB), target.reshape(-1),
                               ignore_index=IGNORE)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def make_optimizer(model, fused=None):
    return torch.optim.AdamW(model.parameters(), lr=3e-5, betas=(0.9, 0.95), weight_decay=1e-3,
                             fused=fused)


def time_model(args, l, rec):
    torch.manual_seed(0)
    model = models.build_model(args.model, scan_kernel.kernel_scan, args.d, args.layers,
                               args.max_rows).cuda()
    # --compile: what a user tuning for speed runs, the fused AdamW with it.
    opt = make_optimizer(model, fused=True if args.compile else None)
    run = torch.compile(model) if args.compile else model
    tokens, keep, target = synthetic_batch(args.batch, args.rows, l, args.row_keep, "cuda")
    rec["kept_rows"] = int(keep.sum())
    bf16 = args.dtype == "bf16"
    return cuda_ms(lambda: train_step(run, opt, tokens, keep, target, bf16), args.reps, args.warmup)


def cmd_model(args):
    if args.model == "msamamba":
        scan_kernel.build(args.csrc, args.build_dir)
    # fp32 means fp32: PyTorch leaves TF32 on for cuDNN (the conv) unless told. bf16 autocast
    # runs with TF32 allowed, what a PyTorch user runs.
    tf32 = args.dtype == "bf16" or args.tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    device = torch.cuda.get_device_name()
    records = []
    for l in args.lens:
        release()
        torch.cuda.reset_peak_memory_stats()
        rec = {"model": args.model, "batch": args.batch, "rows": args.rows, "L": l,
               "row_keep": args.row_keep, "dtype": args.dtype, "tf32": tf32,
               "compile": args.compile, "device": device}
        try:
            rec["step_ms"] = time_model(args, l, rec)
            rec["peak_GiB"] = torch.cuda.max_memory_allocated() / 2**30
            rec["msa_tokens_per_s"] = args.batch * args.rows * l / rec["step_ms"] * 1e3
        except Exception as e:  # noqa: BLE001 - reported as the length's result
            rec["error"] = failure(e)
        records.append(rec)
        emit(rec)
    release()
    return records


# --- check: the harness against independent references, on fresh random inputs ---------------

def check_record(name, ok, **facts):
    rec = {"check": name, "ok": bool(ok), **facts}
    emit(rec)
    return rec


def small_model(scan, device, d=32, layers=2, max_rows=8):
    # Left in training mode, as timed: MultiheadAttention takes another path in eval mode.
    torch.manual_seed(1)
    return models.MsaMamba(scan, d, layers, max_rows).to(device)


def check_training_steps(scan, device):
    """Five steps of the timed step function: finite losses, every parameter moved."""
    model = small_model(scan, device)
    opt = make_optimizer(model)
    before = [p.detach().clone() for p in model.parameters()]
    tokens, keep, target = synthetic_batch(2, 5, 24, 0.6, device)
    losses = [float(train_step(model, opt, tokens, keep, target, False)) for _ in range(5)]
    moved = all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    params = sum(p.numel() for p in model.parameters())
    ok = all(map(lambda x: x == x and abs(x) != float("inf"), losses)) and moved
    return check_record("training_steps", ok, device=device, losses=losses, all_params_moved=moved,
                        params=params, kept_rows=int(keep.sum()))


def check_causal(scan, device):
    """Mamba along the row, attention and MLP per position: logits at position t depend on
    positions <= t only."""
    model = small_model(scan, device)
    tokens, keep, _ = synthetic_batch(2, 5, 24, 1.0, device)
    cut = 13
    later = tokens.clone()
    later[..., cut:] = (later[..., cut:] + 1 + torch.randint_like(later[..., cut:], 4)) % 5
    with torch.no_grad():
        a, b = model(tokens, keep), model(later, keep)
    before, after = rel_err(b[:, :cut], a[:, :cut]), rel_err(b[:, cut:], a[:, cut:])
    return check_record("causal_along_rows", before < 1e-5 and after > 1e-3, device=device,
                        prefix_rel_change=before, suffix_rel_change=after)


def check_row_keep(scan, device):
    """Row-sparse: the dropped rows' bases do not reach row 0's logits; a kept row's do."""
    model = small_model(scan, device)
    tokens, _, _ = synthetic_batch(2, 5, 24, 1.0, device)
    keep = torch.tensor([[True, False, True, False, True], [True, True, False, True, False]],
                        device=device)
    changed_dropped, changed_kept = tokens.clone(), tokens.clone()
    changed_dropped[~keep] = (changed_dropped[~keep] + 1) % 5
    changed_kept[:, 2] = (changed_kept[:, 2] + 1) % 5
    batch0 = torch.tensor([True, False], device=device)  # row 2 is kept in batch 0 only
    with torch.no_grad():
        base = model(tokens, keep)
        dropped = rel_err(model(changed_dropped, keep), base)
        kept = rel_err(model(changed_kept, keep)[batch0], base[batch0])
    return check_record("row_keep_ignores_dropped_rows", dropped < 1e-5 and kept > 1e-3,
                        device=device, dropped_rows_rel_change=dropped, kept_row_rel_change=kept)


def check_kernel_scan(dtype):
    """mamba_ssm's kernel, forward and all eight gradients, against the float64 oracle on the same
    (rounded) inputs; the second shape crosses the kernel's 2048-position chunk boundary."""
    io = torch.bfloat16 if dtype == "bf16" else torch.float32
    tol = 2e-2 if dtype == "bf16" else 1e-3
    worst = {}
    for b, d, n, l in [(2, 8, 16, 300), (1, 4, 16, 2100)]:
        inputs = [t.requires_grad_() for t in scan_inputs(b, d, n, l, io)]
        exact = [t.detach().double().requires_grad_() for t in inputs]
        y = scan_kernel.kernel_scan(*inputs)
        ref = scan_kernel.torch_scan(*exact)
        dy = torch.randn_like(y)
        grads = torch.autograd.grad(y, inputs, dy)
        ref_grads = torch.autograd.grad(ref, exact, dy.double())
        errs = {"y": rel_err(y, ref)}
        for name, g, r in zip(["du", "ddelta", "dA", "dB", "dC", "dD", "dz", "ddelta_bias"],
                              grads, ref_grads):
            errs[name] = rel_err(g, r)
        for k, v in errs.items():
            worst[k] = max(worst.get(k, 0.0), v)
    return check_record(f"kernel_scan_{dtype}_vs_f64", max(worst.values()) < tol, tolerance=tol,
                        rel_err=worst)


def check_model_on_kernel():
    """The model with mamba_ssm's kernel against the same model with the PyTorch scan: logits
    and every parameter's gradient, fp32 with TF32 off."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = small_model(scan_kernel.kernel_scan, "cuda")
    tokens, keep, target = synthetic_batch(2, 5, 64, 0.6, "cuda")
    results = []
    for scan in (scan_kernel.kernel_scan, scan_kernel.torch_scan):
        for m in model.modules():
            if isinstance(m, models.Mamba):
                m.scan = scan
        model.zero_grad(set_to_none=True)
        logits = model(tokens, keep)
        F.cross_entropy(logits.reshape(-1, models.VOCAB), target.reshape(-1),
                        ignore_index=IGNORE).backward()
        results.append((logits.detach(), [p.grad.detach().clone() for p in model.parameters()]))
    (logits, grads), (ref_logits, ref_grads) = results
    logit_err = rel_err(logits, ref_logits)
    grad_err = max(rel_err(g, r) for g, r in zip(grads, ref_grads))
    return check_record("model_kernel_vs_torch_scan", logit_err < 1e-4 and grad_err < 1e-3,
                        logits_rel_err=logit_err, worst_grad_rel_err=grad_err)


def check_bf16_step():
    """One training step under bf16 autocast on the kernel: the dtypes the kernel receives there
    (u, delta, B, C, z bf16; A, D, delta_bias fp32) are accepted, and the loss is finite."""
    model = small_model(scan_kernel.kernel_scan, "cuda")
    opt = make_optimizer(model)
    tokens, keep, target = synthetic_batch(2, 5, 64, 0.6, "cuda")
    loss = float(train_step(model, opt, tokens, keep, target, True))
    return check_record("bf16_autocast_step", loss == loss and abs(loss) != float("inf"), loss=loss)


def cmd_check(args):
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    records = [check(scan_kernel.torch_scan, device)
               for check in (check_training_steps, check_causal, check_row_keep)]
    if device != "cuda" or not args.csrc:
        why = "no --csrc" if device == "cuda" else "no CUDA device"
        emit({"check": "mamba_ssm_kernel", "skipped": why})
    else:
        try:
            scan_kernel.build(args.csrc, args.build_dir)
            records += [check_kernel_scan("fp32"), check_kernel_scan("bf16"),
                        check_model_on_kernel(), check_bf16_step()]
        except Exception as e:  # noqa: BLE001 - a failed build is a failed check
            records.append(check_record("mamba_ssm_kernel", False, error=failure(e)))
    failed = [r["check"] for r in records if not r["ok"]]
    print(f"{len(records) - len(failed)} passed, {len(failed)} failed", file=sys.stderr)
    if failed:
        args.exit_code = 1
    return records


# --- command line ----------------------------------------------------------------------------

def shape(text):
    try:
        b, d, n, l = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected B,D,N,L (batch, d_inner, d_state, L)")
    return b, d, n, l


def lengths(text):
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected L[,L...]")


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csrc", help="a copy of state-spaces/mamba's csrc/selective_scan folder")
    p.add_argument("--build-dir", help="where the kernel is compiled "
                   "(default bench-ref/selective_scan_<card>_<torch>)")
    p.add_argument("--out", help="append the whole result to this file as one JSON line")
    sub = p.add_subparsers(dest="cmd", required=True)

    sc = sub.add_parser("scan", help="mamba_ssm's selective scan alone: forward and backward ms")
    sc.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"],
                    help="bf16: u, delta, B, C, z in bfloat16, A, D, delta_bias in float32")
    sc.add_argument("--shape", type=shape, action="append",
                    help="B,D,N,L (repeatable; default the four shapes of the issues)")
    sc.add_argument("--reps", type=int, default=10)
    sc.add_argument("--warmup", type=int, default=3)

    m = sub.add_parser("model", help="one training step: forward, loss, backward, AdamW")
    m.add_argument("--model", default="msamamba", choices=["msamamba", "rowtx"])
    m.add_argument("--batch", type=int, default=2)
    m.add_argument("--rows", type=int, default=90)
    m.add_argument("--lens", type=lengths, default=[128, 1024], help="L[,L...]")
    m.add_argument("--row-keep", type=float, default=1.0,
                   help="each row but row 0 is kept with this probability (row-sparse Mamba)")
    m.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"],
                   help="fp32 (TF32 off unless --tf32) or bf16 autocast (TF32 on)")
    m.add_argument("--tf32", action="store_true",
                   help="fp32 with TF32 tensor-core matmuls and convolutions")
    m.add_argument("--compile", action="store_true",
                   help="torch.compile the model and use the fused AdamW")
    m.add_argument("--d", type=int, default=128, help="d_model")
    m.add_argument("--layers", type=int, default=3)
    m.add_argument("--reps", type=int, default=10)
    m.add_argument("--warmup", type=int, default=3)
    m.add_argument("--max-rows", type=int, default=128, help="learned row positions")

    ck = sub.add_parser("check", help="the harness against independent references (CPU or CUDA)")
    ck.add_argument("--device", choices=["cpu", "cuda"],
                    help="default cuda where present; the kernel is checked on cuda with --csrc")
    return p


def main():
    p = parser()
    args = p.parse_args()
    args.exit_code = 0
    needs_kernel = args.cmd == "scan" or (args.cmd == "model" and args.model == "msamamba")
    if needs_kernel and not args.csrc:
        p.error(f"{args.cmd} needs --csrc DIR (a copy of state-spaces/mamba's csrc/selective_scan)")
    if args.cmd in ("scan", "model") and not torch.cuda.is_available():
        emit({"error": "no CUDA device"})
        return 1
    try:
        run = {"scan": cmd_scan, "model": cmd_model, "check": cmd_check}[args.cmd]
        result = run(args)
    except Exception as e:  # noqa: BLE001 - the kernel's build, the copy bandwidth
        emit({"error": failure(e)})
        return 1
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(result) + "\n")
    return args.exit_code


if __name__ == "__main__":
    sys.exit(main())
