"""Writes the GPN-MSA-layout zarr fixtures read by tests/store.rs, with an independent writer.

The store is made the way GPN-MSA's `merge_msa` rule makes `89.zarr` (songlab-cal/gpn,
analysis/gpn-msa_human/workflow/rules/training.smk): zarr-python 2, a group with one `|S1`
array per chromosome, shape [length, species], reference column first, default compressor
(Blosc lz4). Chunks are 4 rows instead of 512 so that a 10-bp chromosome spans several chunks.

Run from the repository root (made with zarr 2.18.7, numpy 2.4.6, Python 3.11):
    pip install "zarr<3" numpy
    python3 data/zarr/make_fixture.py
"""

import os
import shutil
import zipfile

import numpy as np
import zarr

HERE = os.path.dirname(os.path.abspath(__file__))
STORE = os.path.join(HERE, "gpn_layout.zarr")

# Columns: reference (soft-masked in part, as GPN-MSA's reference row may be), two species.
CHROMS = {
    "1": ["ACGTacgtNA", "A-GTTCGA-N", "----ACGTAC"],
    "X": ["GGCCA", "GGC-A", "NNNNN"],
}


def main():
    shutil.rmtree(STORE, ignore_errors=True)
    group = zarr.open_group(STORE, mode="w")
    for chrom, rows in CHROMS.items():
        msa = np.vstack([np.frombuffer(row.encode("ascii"), dtype="S1") for row in rows]).T
        group.create_dataset(chrom, data=msa, chunks=(4, msa.shape[1]))

    # zarr's own zip store: entries at the archive root, not compressed.
    zipped = os.path.join(HERE, "gpn_layout.zarr.zip")
    if os.path.exists(zipped):
        os.remove(zipped)
    with zarr.ZipStore(zipped, mode="w") as store:
        zarr.copy_store(zarr.DirectoryStore(STORE), store)

    # As `zip -r gpn_layout_folder.zip gpn_layout.zarr` makes it: one top-level folder, deflated.
    folder = os.path.join(HERE, "gpn_layout_folder.zip")
    with zipfile.ZipFile(folder, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, _, files in sorted(os.walk(STORE)):
            for name in sorted(files):
                path = os.path.join(root, name)
                archive.write(path, os.path.relpath(path, HERE))


if __name__ == "__main__":
    main()
