"""MSAMamba from Python: variant scores and embeddings from a trained run.

>>> import msamamba
>>> model = msamamba.load("run", backend="cpu")
>>> scores = model.score("variants.parquet", alignment="mm9.zarr")   # a pyarrow Table
>>> vectors = model.embed(["chr10:3134200-3134327"], alignment="mm9.zarr", pool="mean")

Scores and embeddings are the command line's (``msamamba score --variants``, ``msamamba embed``):
the same library calls, on the same backend.
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable, Optional, Sequence, Union

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ._msamamba import Model as _Model
from ._msamamba import MsamambaError
from ._msamamba import load as _load

__all__ = ["load", "Model", "MsamambaError"]

PathLike = Union[str, os.PathLike]


class _Progress:
    """A tqdm bar (the notebook one in notebooks) that the extension advances through its
    callback, or nothing where tqdm is not installed or progress is off."""

    def __init__(self, total: Optional[int], unit: str, show: bool):
        self.bar = None
        if show:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, unit=unit)

    def __enter__(self) -> Optional[Callable[[int], None]]:
        return self.bar.update if self.bar is not None else None

    def __exit__(self, *_):
        if self.bar is not None:
            self.bar.close()


class Model:
    """A pre-training run, loaded once (see :func:`load`)."""

    def __init__(self, inner: _Model):
        self._inner = inner

    @property
    def rows(self) -> list:
        """The model's rows (species), target first, where the run names them."""
        return list(self._inner.rows)

    @property
    def window(self) -> int:
        """The training window, L."""
        return self._inner.window

    @property
    def precision(self) -> str:
        """What inference computes in."""
        return self._inner.precision

    def __repr__(self) -> str:
        return repr(self._inner)

    def score(self, variants, alignment: PathLike, *, target: Optional[str] = None,
              batch_size: int = 256, progress: bool = True):
        """Zero-shot scores, logit(alt) - logit(ref) at the masked site on both strands.

        ``variants``: a pandas DataFrame, a pyarrow Table, or a path to a Parquet, CSV or TSV
        file, with columns chrom, pos (1-based), ref and alt, one ALT per row; other columns are
        kept. ``alignment``: a MAF file or an alignment store. Returns the rows with ``score``
        (empty where not scored) and ``reason`` (why not) added: a DataFrame if given one, else
        a pyarrow Table.
        """
        pandas_in = type(variants).__module__.startswith("pandas")
        with tempfile.TemporaryDirectory(prefix="msamamba-") as scratch:
            if isinstance(variants, (str, os.PathLike)):
                path = os.fspath(variants)
                total = None
            else:
                table = pa.Table.from_pandas(variants, preserve_index=False) if pandas_in else variants
                path = os.path.join(scratch, "variants.parquet")
                pq.write_table(table, path)
                total = table.num_rows
            out = os.path.join(scratch, "scored.parquet")
            with _Progress(total, "variants", progress) as advance:
                self._inner.score_file(path, os.fspath(alignment), out, target=target,
                                       batch_size=batch_size, progress=advance)
            scored = pq.read_table(out)
        return scored.to_pandas() if pandas_in else scored

    def embed(self, regions: Sequence[str], alignment: PathLike, *, target: Optional[str] = None,
              pool: Optional[str] = None, progress: bool = True):
        """Per-position target-row embeddings of ``regions`` (samtools style,
        ``CHR:START-END``, 1-based inclusive; ``/-`` at the end reads the reverse strand).

        Returns one float32 array [L, D] per region, or with ``pool="mean"`` one array [R, D]
        of their means over positions.
        """
        if pool not in (None, "mean"):
            raise ValueError(f"pool={pool!r}: None or \"mean\"")
        regions = [regions] if isinstance(regions, str) else list(regions)
        with _Progress(len(regions), "regions", progress) as advance:
            width, flat = self._inner.embed_regions(regions, os.fspath(alignment), target=target,
                                                    progress=advance)
        arrays = [np.asarray(values, dtype=np.float32).reshape(-1, width) for values in flat]
        if pool == "mean":
            return np.stack([a.mean(axis=0) for a in arrays]) if arrays else np.zeros((0, width), np.float32)
        return arrays


def load(run_dir: PathLike, backend: str = "auto") -> Model:
    """Loads the pre-training run ``run_dir`` (``msamamba pretrain --out``) for ``backend``:
    "auto" (CUDA, else WGPU, else the CPU, whichever the wheel was built with), "cpu", "cuda" or
    "wgpu"."""
    return Model(_load(os.fspath(run_dir), backend))
