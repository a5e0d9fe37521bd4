"""The Python package against the command line, on the bundled data: a tiny run trained by the
`msamamba` binary ($MSAMAMBA_BIN), the README's Python example run as written, scores equal to
`msamamba score --variants`, tables round-tripped with every column, embeddings, errors."""

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import msamamba

ROOT = Path(__file__).resolve().parents[2]
MAF = ROOT / "data/maf/ucsc_mm9_chr10_big.maf"
VARIANTS = ROOT / "data/vcf/mm9_chr10_variants.csv"


def cli(*args):
    out = subprocess.run([os.environ["MSAMAMBA_BIN"], *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with the bundled data linked in and `run`, a tiny two-step pre-training run."""
    work = tmp_path_factory.mktemp("msamamba")
    (work / "data").symlink_to(ROOT / "data")
    cli("pretrain", "--maf", MAF, "--target", "mm9", "--out", work / "run", "--steps", "2",
        "--checkpoint-every", "2", "--batch-size", "4", "--window", "32", "--stride", "16",
        "--d-model", "16", "--n-layers", "1", "--n-heads", "2", "--backend", "cpu")
    return work


def test_the_readme_example_runs_as_written(workdir, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "README has no Python example"
    monkeypatch.chdir(workdir)
    scope = {}
    exec(blocks[0], scope)
    assert isinstance(scope["scores"], pa.Table)
    model = scope["model"]
    assert scope["vectors"].shape == (1, 16) and model.window == 32


def test_scores_equal_the_cli_and_keep_every_column(workdir):
    model = msamamba.load(workdir / "run", backend="cpu")
    assert (model.window, model.precision, model.rows[0]) == (32, "fp32", "mm9")
    got = model.score(VARIANTS, alignment=MAF)
    cli("score", "--variants", VARIANTS, "--checkpoint", workdir / "run", "--maf", MAF,
        "--backend", "cpu", "--out", workdir / "cli.parquet")
    want = pq.read_table(workdir / "cli.parquet")
    assert got.equals(want)
    assert got.column_names == ["chrom", "pos", "id", "ref", "alt", "damaging", "score", "reason"]
    scored = got.filter(pa.compute.is_valid(got["score"]))
    assert 0 < scored.num_rows < got.num_rows


def test_a_dataframe_comes_back_as_a_dataframe_with_its_columns(workdir):
    model = msamamba.load(workdir / "run", backend="cpu")
    frame = pd.read_csv(VARIANTS).assign(gene=lambda f: [f"g{k}" for k in range(len(f))])
    got = model.score(frame, alignment=MAF, progress=False)
    assert isinstance(got, pd.DataFrame)
    assert list(got.columns) == list(frame.columns) + ["score", "reason"]
    assert (got["gene"] == frame["gene"]).all()
    from_file = model.score(VARIANTS, alignment=MAF, progress=False).to_pandas()
    np.testing.assert_array_equal(got["score"].to_numpy(), from_file["score"].to_numpy())


def test_embeddings_and_their_means(workdir):
    model = msamamba.load(workdir / "run", backend="cpu")
    regions = ["chr10:3134200-3134231", "chr10:3134300-3134309/-"]
    arrays = model.embed(regions, alignment=MAF, progress=False)
    assert [a.shape for a in arrays] == [(32, 16), (10, 16)]
    assert all(np.isfinite(a).all() for a in arrays)
    pooled = model.embed(regions, alignment=MAF, pool="mean", progress=False)
    np.testing.assert_allclose(pooled, np.stack([a.mean(axis=0) for a in arrays]), rtol=1e-6)


def test_errors_are_python_exceptions_with_the_clis_message(workdir, tmp_path):
    with pytest.raises(msamamba.MsamambaError, match="no-such-run"):
        msamamba.load(tmp_path / "no-such-run", backend="cpu")
    with pytest.raises(msamamba.MsamambaError, match="backend"):
        msamamba.load(workdir / "run", backend="tpu")
    model = msamamba.load(workdir / "run", backend="cpu")
    bad = tmp_path / "bad.csv"
    bad.write_text("chrom,pos,ref\nchr10,5,A\n")
    with pytest.raises(msamamba.MsamambaError, match="no `alt` column"):
        model.score(bad, alignment=MAF)


def test_long_calls_report_progress_to_python(workdir, tmp_path):
    model = msamamba.load(workdir / "run", backend="cpu")
    rows, regions = [], []
    model._inner.score_file(str(VARIANTS), str(MAF), str(tmp_path / "out.parquet"), progress=rows.append)
    assert sum(rows) == pq.read_table(tmp_path / "out.parquet").num_rows > 0
    model._inner.embed_regions(["chr10:3134200-3134231"] * 3, str(MAF), progress=regions.append)
    assert regions == [1, 1, 1]
