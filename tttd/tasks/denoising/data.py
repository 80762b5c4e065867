"""Datasets for the denoising task: the offline celltypist sample, synthetic data, and the
paper's pancreas / PBMC / Tabula Muris Senis sets (download + cache with a recorded digest).

Every loader returns a :class:`Counts`: a dense int64 cells x genes matrix after OpenProblems
v1's ``filter_genes_cells`` (genes in at least one cell, cells with at least 2 molecules), plus
where it came from. The MCV split is :func:`tttd.tasks.denoising.metrics.split_counts`.

- ``celltypist``: the sample matrix bundled in the **celltypist 1.7.1 wheel** (MIT, "Copyright (c)
  2020 Teichmann Lab"; ``celltypist/data/samples/sample_cell_by_gene.csv``, 559 cells x 32786
  genes, real UMI counts with ~1e-12 float noise, rounded here; 9810 genes have a count). It is
  read from the wheel's files *without importing celltypist* (whose dependencies include scanpy):
  from an installed copy if ``importlib.util.find_spec`` finds one, else from the wheel in the
  cache directory, fetched once with ``pip download --no-deps celltypist==1.7.1`` (7.3 MB). Both
  the wheel's and the CSV's sha256 are checked. The parsed matrix is cached as a compressed
  ``.npz`` (2 MB; parsing the 53 MB CSV takes ~10-20 s once).
- ``synthetic``: :func:`tttd.tasks.denoising.synthetic.generate` with its documented defaults.
- ``pancreas`` (the paper's training set: inDrop1 cells of the Luecken et al. pancreas h5ad,
  ``layers["counts"]``), ``pbmc`` (10x 1k PBMCs v3) and ``tabula`` (Tabula Muris Senis lung,
  droplet, via the CZ CELLxGENE curation API with the field names of TTT's API patch, raw counts,
  outer-joined on genes): OpenProblems v1.0.0's URLs. These need internet once and ``h5py``
  (``pip install tttd[denoising]``). No checksums are published, so the sha256 of each file is
  recorded on its first download (``digests.json`` in the cache directory) and checked on every
  later use; pass ``sha256=`` to pin one.

The cache directory is ``$TTTD_CACHE/denoising`` (else ``$XDG_CACHE_HOME/tttd/denoising``, else
``~/.cache/tttd/denoising``), created with mode 0700 and files written 0600. Whether that keeps
the source data away from a sandboxed candidate depends on the sandbox's isolation on the machine
(bubblewrap hid it in testing; without it, a candidate could read it). A candidate that reads the
source counts can rebuild the held-out split: the task rejects such results with its
``LEAK_CEILING`` (see the README). An *installed* celltypist's files lie in site-packages, which
every candidate can read; the cached wheel is the more private source.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

CELLTYPIST_VERSION = "1.7.1"
CELLTYPIST_WHEEL = f"celltypist-{CELLTYPIST_VERSION}-py3-none-any.whl"
CELLTYPIST_WHEEL_SHA256 = "3953f96a4476ed1dd2807446d97d3945e8905bbdac6bfef0d20b84a9a00d1101"
CELLTYPIST_MEMBER = "celltypist/data/samples/sample_cell_by_gene.csv"
CELLTYPIST_CSV_SHA256 = "0d729bd7a9e4d8f5a8ccc167f222530f4ece8d334b939d21b796bd77daf967f2"
CELLTYPIST_LICENSE = "MIT License, Copyright (c) 2020 Teichmann Lab (celltypist 1.7.1)"

PANCREAS_URL = "https://ndownloader.figshare.com/files/36086813"
PBMC_URL = "https://ndownloader.figshare.com/files/36088667"
TABULA_COLLECTION = "0b9d8a04-bb9d-44da-aa27-705bb65b54eb"
TABULA_API = "https://api.cellxgene.cziscience.com/curation/v1/collections/" + TABULA_COLLECTION


class DataError(RuntimeError):
    """A dataset cannot be obtained or is not what it should be (one-line message)."""


@dataclass
class Counts:
    """A filtered integer count matrix and its provenance."""

    name: str
    X: np.ndarray  # int64, cells x genes
    genes: list[str] = field(default_factory=list)
    source: str = ""
    sha256: str = ""  # digest of the source file the matrix was read from
    licence: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.X.shape)  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------
# cache and downloads
# ------------------------------------------------------------------------------------------


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The denoising cache directory (created 0700)."""
    if path is not None:
        root = Path(path).expanduser()
    elif os.environ.get("TTTD_CACHE"):
        root = Path(os.environ["TTTD_CACHE"]).expanduser() / "denoising"
    elif os.environ.get("XDG_CACHE_HOME"):
        root = Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "tttd" / "denoising"
    else:
        root = Path.home() / ".cache" / "tttd" / "denoising"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _private_replace(tmp: str, dest: Path) -> None:
    os.chmod(tmp, 0o600)
    os.replace(tmp, dest)


def _digests_path(root: Path) -> Path:
    return root / "digests.json"


def _read_digests(root: Path) -> dict[str, Any]:
    p = _digests_path(root)
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {p}: {exc}; delete it to re-record digests") from None


def _record_digest(root: Path, name: str, entry: dict[str, Any]) -> None:
    digests = _read_digests(root)
    digests[name] = entry
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".digests-")
    with os.fdopen(fd, "w") as fh:
        json.dump(digests, fh, indent=1, sort_keys=True)
    _private_replace(tmp, _digests_path(root))


def fetch(url: str, name: str, root: Path, sha256: str | None = None, timeout: float = 600.0) -> Path:
    """``root/name``, downloaded from ``url`` once; its sha256 is recorded then and checked on
    every later call (and must equal ``sha256`` when that is given)."""
    dest = root / name
    recorded = _read_digests(root).get(name)
    if dest.exists():
        digest = sha256_file(dest)
        want = sha256 or (recorded or {}).get("sha256")
        if want is None:
            _record_digest(root, name, {"url": url, "sha256": digest, "bytes": dest.stat().st_size,
                                        "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        elif digest != want:
            raise DataError(f"{dest} has sha256 {digest}, expected {want}: the cached file changed; "
                            f"delete it to download again")
        return dest
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            fd, tmp = tempfile.mkstemp(dir=root, prefix=".download-")
            h = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
    except OSError as exc:
        raise DataError(f"cannot download {url}: {exc}") from None
    digest = h.hexdigest()
    want = sha256 or (recorded or {}).get("sha256")
    if want is not None and digest != want:
        os.unlink(tmp)
        raise DataError(f"{url} has sha256 {digest}, expected {want}")
    _private_replace(tmp, dest)
    _record_digest(root, name, {"url": url, "sha256": digest, "bytes": size,
                                "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return dest


def filter_genes_cells(X: np.ndarray, genes: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """OP v1's ``filter_genes_cells``: keep genes seen in >= 1 cell, then cells with >= 2 molecules."""
    keep_g = (X > 0).sum(axis=0) >= 1
    X = X[:, keep_g]
    names = [g for g, k in zip(genes, keep_g) if k] if genes is not None else []
    keep_c = X.sum(axis=1) >= 2
    return X[keep_c], names


def _as_counts(name: str, X: Any, genes: list[str] | None, source: str, sha: str, licence: str = "") -> Counts:
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    if X.dtype.kind == "f":
        X = np.round(X)
    X = X.astype(np.int64)
    if X.ndim != 2 or (X < 0).any():
        raise DataError(f"{name}: expected a non-negative 2-D count matrix")
    X, genes = filter_genes_cells(X, genes)
    return Counts(name=name, X=X, genes=genes, source=source, sha256=sha, licence=licence)


# ------------------------------------------------------------------------------------------
# celltypist sample (offline real data)
# ------------------------------------------------------------------------------------------


def parse_cell_by_gene_csv(raw: bytes) -> tuple[np.ndarray, list[str]]:
    """A cells x genes CSV (header row of gene names after an empty corner cell, then one row per
    cell: its name, then values) -> (float64 matrix, gene names)."""
    lines = raw.split(b"\n")
    genes = [g.decode() for g in lines[0].rstrip(b"\r").split(b",")[1:]]
    rows = []
    for ln in lines[1:]:
        ln = ln.rstrip(b"\r")
        if not ln:
            continue
        fields = ln.split(b",")
        if len(fields) != len(genes) + 1:
            raise DataError(f"malformed CSV row with {len(fields) - 1} values for {len(genes)} genes")
        rows.append(np.array(fields[1:], dtype=np.float64))
    return np.vstack(rows), genes


def _celltypist_csv_bytes(root: Path, download: bool) -> tuple[bytes, str]:
    import importlib.util

    spec = importlib.util.find_spec("celltypist")  # locates the package without importing it
    if spec is not None and spec.submodule_search_locations:
        for base in spec.submodule_search_locations:
            p = Path(base) / "data" / "samples" / "sample_cell_by_gene.csv"
            if p.is_file():
                return p.read_bytes(), f"installed celltypist ({p})"
    wheel = root / CELLTYPIST_WHEEL
    if not wheel.exists():
        if not download:
            raise DataError(f"the celltypist sample needs {wheel} (pip download --no-deps "
                            f"celltypist=={CELLTYPIST_VERSION}) or an installed celltypist")
        from tttd.safepath import python_argv

        cmd = [*python_argv(module="pip"), "download", "--no-deps", "--quiet",
               f"celltypist=={CELLTYPIST_VERSION}", "-d", str(root)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not wheel.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DataError(f"pip download of celltypist=={CELLTYPIST_VERSION} failed: {tail[0]}")
        os.chmod(wheel, 0o600)
    digest = sha256_file(wheel)
    if digest != CELLTYPIST_WHEEL_SHA256:
        raise DataError(f"{wheel} has sha256 {digest}, expected {CELLTYPIST_WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(CELLTYPIST_MEMBER), f"{CELLTYPIST_WHEEL} ({CELLTYPIST_MEMBER})"


def load_celltypist(root: str | os.PathLike | None = None, download: bool = True) -> Counts:
    """The celltypist 1.7.1 sample (559 x 9810 after filtering), real UMI counts, offline once cached."""
    d = cache_dir(root)
    cached = d / f"celltypist-{CELLTYPIST_VERSION}-sample.npz"
    if cached.exists():
        with np.load(cached, allow_pickle=False) as z:
            if str(z["csv_sha256"]) == CELLTYPIST_CSV_SHA256:
                X = _csr_to_dense(z["data"], z["indices"], z["indptr"], tuple(z["shape"]))
                return Counts("celltypist", X, list(z["genes"]), str(z["source"]),
                              CELLTYPIST_CSV_SHA256, CELLTYPIST_LICENSE)
    raw, source = _celltypist_csv_bytes(d, download)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != CELLTYPIST_CSV_SHA256:
        raise DataError(f"the celltypist sample CSV has sha256 {digest}, expected {CELLTYPIST_CSV_SHA256}")
    M, genes = parse_cell_by_gene_csv(raw)
    counts = _as_counts("celltypist", M, genes, source, digest, CELLTYPIST_LICENSE)
    data, indices, indptr = _dense_to_csr(counts.X)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".celltypist-", suffix=".npz")
    with os.fdopen(fd, "wb") as fh:
        np.savez_compressed(fh, data=data, indices=indices, indptr=indptr,
                            shape=np.array(counts.X.shape), genes=np.array(counts.genes),
                            source=np.array(source), csv_sha256=np.array(digest))
    _private_replace(tmp, cached)
    return counts


def _dense_to_csr(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, cols = np.nonzero(X)
    indptr = np.zeros(X.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=X.shape[0]), out=indptr[1:])
    return X[rows, cols].astype(np.int32), cols.astype(np.int32), indptr


def _csr_to_dense(data, indices, indptr, shape) -> np.ndarray:
    X = np.zeros(shape, dtype=np.int64)
    rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
    X[rows, indices] = data
    return X


# ------------------------------------------------------------------------------------------
# h5ad (anndata's HDF5 layout), read with h5py only
# ------------------------------------------------------------------------------------------


def _h5py():
    try:
        import h5py
    except ImportError:
        raise DataError("reading .h5ad files needs h5py: pip install 'tttd[denoising]'") from None
    return h5py


def _read_matrix(node) -> Any:
    """A dense array or a scipy CSR/CSC matrix from an anndata matrix node."""
    h5py = _h5py()
    if isinstance(node, h5py.Dataset):
        return node[()]
    import scipy.sparse as sp

    enc = node.attrs.get("encoding-type", node.attrs.get("h5sparse_format", ""))
    enc = enc.decode() if isinstance(enc, bytes) else str(enc)
    shape = tuple(int(v) for v in node.attrs.get("shape", node.attrs.get("h5sparse_shape")))
    args = (node["data"][()], node["indices"][()], node["indptr"][()])
    if enc.startswith("csc"):
        return sp.csc_matrix(args, shape=shape).tocsr()
    return sp.csr_matrix(args, shape=shape)


def _read_strings(node) -> list[str]:
    vals = node[()]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in vals]


def _read_index(group) -> list[str]:
    key = group.attrs.get("_index", "_index")
    key = key.decode() if isinstance(key, bytes) else str(key)
    return _read_strings(group[key]) if key in group else []


def _read_column(group, name: str) -> list[str]:
    h5py = _h5py()
    node = group[name]
    if isinstance(node, h5py.Group) and "codes" in node:  # anndata >= 0.8 categorical
        cats = _read_strings(node["categories"])
        return [cats[c] if c >= 0 else "" for c in node["codes"][()]]
    values = node[()]
    if "__categories" in group and name in group["__categories"]:  # anndata 0.7 categorical
        cats = _read_strings(group["__categories"][name])
        return [cats[c] if c >= 0 else "" for c in values]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def read_h5ad_counts(path: str | os.PathLike, layer: str | None = None, use_raw: bool = False,
                     obs_filter: tuple[str, list[str]] | None = None) -> tuple[Any, list[str]]:
    """(counts matrix, gene names) from an .h5ad: ``layers[layer]``, ``raw.X`` or ``X``, and the
    rows whose ``obs[column]`` is in ``values`` when ``obs_filter=(column, values)``."""
    h5py = _h5py()
    with h5py.File(path, "r") as f:
        if use_raw and "raw" in f and "X" in f["raw"]:
            M, genes = _read_matrix(f["raw"]["X"]), _read_index(f["raw"]["var"])
        elif layer is not None:
            if "layers" not in f or layer not in f["layers"]:
                raise DataError(f"{path} has no layer {layer!r}")
            M, genes = _read_matrix(f["layers"][layer]), _read_index(f["var"])
        else:
            M, genes = _read_matrix(f["X"]), _read_index(f["var"])
        if obs_filter is not None:
            column, values = obs_filter
            if column not in f["obs"]:
                raise DataError(f"{path} has no obs column {column!r}")
            keep = np.isin(np.array(_read_column(f["obs"], column)), values)
            M = M[np.flatnonzero(keep)]
    return M, genes


# ------------------------------------------------------------------------------------------
# the paper's datasets (OpenProblems v1.0.0 loaders)
# ------------------------------------------------------------------------------------------


def load_pancreas(root: str | os.PathLike | None = None, url: str = PANCREAS_URL,
                  sha256: str | None = None, keep_techs: tuple[str, ...] = ("inDrop1",)) -> Counts:
    """The paper's training set: ``layers["counts"]`` of the inDrop1 cells (1937 cells)."""
    d = cache_dir(root)
    path = fetch(url, "pancreas.h5ad", d, sha256)
    M, genes = read_h5ad_counts(path, layer="counts", obs_filter=("tech", list(keep_techs)))
    return _as_counts("pancreas", M, genes, url, sha256_file(path))


def load_pbmc(root: str | os.PathLike | None = None, url: str = PBMC_URL, sha256: str | None = None) -> Counts:
    """10x "1k PBMCs, v3 chemistry" as OP v1's ``load_tenx_1k_pbmc``."""
    d = cache_dir(root)
    path = fetch(url, "pbmc_1k_v3.h5ad", d, sha256)
    M, genes = read_h5ad_counts(path)
    return _as_counts("pbmc", M, genes, url, sha256_file(path))


def load_tabula(root: str | os.PathLike | None = None, api_url: str = TABULA_API,
                assay: str = "10x 3' v2", tissue: str = "lung") -> Counts:
    """Tabula Muris Senis lung (droplet): every dataset of the collection with the single assay
    ``assay`` and single tissue ``tissue``, raw counts (``.raw`` when present), outer-joined on
    gene names (missing genes are zero), as OP v1 with TTT's API patch."""
    d = cache_dir(root)
    meta_path = fetch(api_url, "tabula_collection.json", d)
    try:
        collection = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{meta_path} is not JSON: {exc}") from None
    parts: list[tuple[Any, list[str]]] = []
    digests = []
    for ds in collection.get("datasets", []):
        assays = [a.get("label") for a in ds.get("assay", [])]
        tissues = [t.get("label") for t in ds.get("tissue", [])]
        if assays != [assay] or tissues != [tissue]:
            continue
        assets = [a for a in ds.get("assets", []) if str(a.get("filetype", "")).upper() == "H5AD"]
        if not assets:
            continue
        name = f"{TABULA_COLLECTION}_{ds['dataset_id']}.h5ad"
        path = fetch(assets[0]["url"], name, d)
        parts.append(read_h5ad_counts(path, use_raw=True))
        digests.append(sha256_file(path))
    if not parts:
        raise DataError(f"no {assay} / {tissue} dataset in {api_url}")
    genes = sorted(set().union(*(set(g) for _, g in parts)))
    col = {g: i for i, g in enumerate(genes)}
    blocks = []
    for M, g in parts:
        dense = M.toarray() if hasattr(M, "toarray") else np.asarray(M)
        block = np.zeros((dense.shape[0], len(genes)), dtype=np.float64)
        block[:, [col[x] for x in g]] = dense
        blocks.append(block)
    combined = hashlib.sha256("".join(digests).encode()).hexdigest()
    return _as_counts("tabula", np.vstack(blocks), genes, api_url, combined)


def load_synthetic(**options: Any) -> Counts:
    """Synthetic counts (:mod:`tttd.tasks.denoising.synthetic`, documented defaults)."""
    from tttd.tasks.denoising.synthetic import SyntheticConfig, generate

    cfg = SyntheticConfig(**options)
    X, _ = generate(cfg)
    return _as_counts("synthetic", X, None, f"synthetic {cfg.to_dict()}", "")


LOADERS: dict[str, Callable[..., Counts]] = {
    "celltypist": load_celltypist,
    "synthetic": load_synthetic,
    "pancreas": load_pancreas,
    "pbmc": load_pbmc,
    "tabula": load_tabula,
}


def load(name: str, **options: Any) -> Counts:
    """A dataset by name (``celltypist``, ``synthetic``, ``pancreas``, ``pbmc``, ``tabula``)."""
    if name not in LOADERS:
        raise DataError(f"unknown denoising dataset {name!r}; known: {', '.join(LOADERS)}")
    return LOADERS[name](**options)
