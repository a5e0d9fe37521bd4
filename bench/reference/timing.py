"""CUDA-event timing, and the card's copy bandwidth that scan times are read against."""
import statistics

import torch


def cuda_ms(fn, reps=10, warmup=3):
    """Median milliseconds of `reps` calls of fn, each between two CUDA events and followed by a
    synchronisation, after `warmup` untimed calls (allocator pools, cuBLAS heuristics, autotune)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def copy_gbps():
    """GB/s of an element-wise op over 1 GiB of float32 (one read, one write per element)."""
    x = torch.empty(256 * 2**20, dtype=torch.float32, device="cuda").uniform_()
    ms = cuda_ms(lambda: torch.neg(x), reps=20, warmup=2)
    gbps = 2 * x.numel() * x.element_size() / ms / 1e6
    del x
    return gbps
