"""Fixtures for the denoising tests: the real celltypist sample (fetched once per machine with
``pip download --no-deps celltypist==1.7.1`` into tttd's cache, then read from a 2 MB .npz), and
its seed-0 MCV split."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def celltypist_counts():
    from tttd.tasks.denoising.data import DataError, load_celltypist

    try:
        return load_celltypist(download=True)
    except DataError as exc:  # no cached copy and no package index reachable
        pytest.skip(f"the celltypist sample is not available offline here: {exc}")


@pytest.fixture(scope="session")
def celltypist_problem(celltypist_counts):
    from tttd.tasks.denoising.problem import Problem

    return Problem(celltypist_counts, split_seed=0)
