"""Dataset loaders offline: downloads with recorded digests (file:// URLs), the h5ad reader, the
paper's pancreas / PBMC / Tabula loaders on small local files, and the synthetic generator."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tttd.tasks.denoising import data as D
from tttd.tasks.denoising.synthetic import SyntheticConfig, generate


def test_fetch_records_the_digest_and_detects_a_changed_file(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"molecules" * 100)
    cache = D.cache_dir(tmp_path / "cache")
    path = D.fetch(src.as_uri(), "x.bin", cache)
    recorded = json.loads((cache / "digests.json").read_text())["x.bin"]
    assert recorded["sha256"] == D.sha256_file(src) and recorded["url"] == src.as_uri()
    assert (path.stat().st_mode & 0o777) == 0o600 and (cache.stat().st_mode & 0o777) == 0o700
    assert D.fetch(src.as_uri(), "x.bin", cache) == path  # cached, digest checked
    path.write_bytes(b"tampered")
    with pytest.raises(D.DataError, match="sha256"):
        D.fetch(src.as_uri(), "x.bin", cache)
    path.unlink()
    with pytest.raises(D.DataError, match="expected"):
        D.fetch(src.as_uri(), "y.bin", cache, sha256="0" * 64)
    with pytest.raises(D.DataError, match="cannot download"):
        D.fetch((tmp_path / "missing").as_uri(), "z.bin", cache)


def test_filter_genes_cells_as_openproblems():
    X = np.array([[0, 1, 0, 3], [0, 0, 0, 1], [0, 2, 0, 0]])
    Y, genes = D.filter_genes_cells(X, ["a", "b", "c", "d"])
    assert genes == ["b", "d"] and Y.tolist() == [[1, 3], [2, 0]]  # cell 1 has 1 molecule left


def test_csv_parser_and_csr_round_trip():
    raw = b",g1,g2,g3\ncell1,1.000000000001,0,2\r\ncell2,0,0,3.9999999999999\n"
    M, genes = D.parse_cell_by_gene_csv(raw)
    assert genes == ["g1", "g2", "g3"] and M.shape == (2, 3)
    X = np.round(M).astype(np.int64)
    assert np.array_equal(D._csr_to_dense(*D._dense_to_csr(X), X.shape), X)
    with pytest.raises(D.DataError, match="malformed"):
        D.parse_cell_by_gene_csv(b",a,b\nc,1\n")


# ---- h5ad files written here with h5py, in anndata's layouts ------------------------------------


def _strings(group, name, values):
    import h5py

    group.create_dataset(name, data=np.array(values, dtype=object), dtype=h5py.string_dtype())


def _write_h5ad(path, X, genes, *, layer=None, raw=None, tech=None, sparse=True, old_categorical=False):
    h5py = pytest.importorskip("h5py")
    import scipy.sparse as sp

    def matrix(parent, name, M):
        if not sparse:
            parent.create_dataset(name, data=M)
            return
        csr = sp.csr_matrix(M)
        g = parent.create_group(name)
        g.attrs["encoding-type"] = "csr_matrix"
        g.attrs["shape"] = np.array(M.shape)
        g.create_dataset("data", data=csr.data)
        g.create_dataset("indices", data=csr.indices)
        g.create_dataset("indptr", data=csr.indptr)

    with h5py.File(path, "w") as f:
        matrix(f, "X", np.log1p(X) if (layer or raw is not None) else X)  # X is not counts then
        var = f.create_group("var")
        var.attrs["_index"] = "_index"
        _strings(var, "_index", genes)
        obs = f.create_group("obs")
        if tech is not None:
            if old_categorical:
                cats = sorted(set(tech))
                obs.create_group("__categories")
                _strings(obs["__categories"], "tech", cats)
                obs.create_dataset("tech", data=np.array([cats.index(t) for t in tech], dtype=np.int8))
            else:
                g = obs.create_group("tech")
                cats = sorted(set(tech))
                _strings(g, "categories", cats)
                g.create_dataset("codes", data=np.array([cats.index(t) for t in tech], dtype=np.int8))
        if layer:
            matrix(f.create_group("layers"), layer, X)
        if raw is not None:
            rX, rgenes = raw
            r = f.create_group("raw")
            matrix(r, "X", rX)
            rv = r.create_group("var")
            rv.attrs["_index"] = "_index"
            _strings(rv, "_index", rgenes)


@pytest.mark.parametrize("old_categorical", [False, True])
def test_pancreas_loader_takes_the_counts_layer_of_indrop1(tmp_path, old_categorical):
    X = np.array([[1, 0, 2, 0], [3, 1, 0, 0], [0, 0, 5, 0], [4, 4, 4, 0]])
    src = tmp_path / "pancreas.h5ad"
    _write_h5ad(src, X, ["A", "B", "C", "D"], layer="counts",
                tech=["inDrop1", "celseq", "inDrop1", "inDrop1"], old_categorical=old_categorical)
    c = D.load_pancreas(root=tmp_path / "cache", url=src.as_uri())
    assert c.genes == ["A", "B", "C"] and c.X.tolist() == [[1, 0, 2], [0, 0, 5], [4, 4, 4]]
    assert c.sha256 == D.sha256_file(src)


def test_pbmc_loader_dense_x(tmp_path):
    X = np.array([[1, 2], [0, 1], [3, 0]])
    src = tmp_path / "pbmc.h5ad"
    _write_h5ad(src, X, ["G1", "G2"], sparse=False)
    c = D.load_pbmc(root=tmp_path / "cache", url=src.as_uri())
    assert c.X.tolist() == [[1, 2], [3, 0]]  # the 1-molecule cell is filtered out


def test_tabula_loader_selects_lung_droplet_and_outer_joins_raw_counts(tmp_path):
    a, b = tmp_path / "a.h5ad", tmp_path / "b.h5ad"
    _write_h5ad(a, np.array([[1, 2], [2, 0]]), ["g1", "g2"], raw=(np.array([[1, 2], [2, 0]]), ["g1", "g2"]))
    _write_h5ad(b, np.array([[5, 1]]), ["g2", "g3"], raw=(np.array([[5, 1]]), ["g2", "g3"]))
    lung = [{"label": "lung"}]
    collection = {"datasets": [
        {"dataset_id": "d1", "assay": [{"label": "10x 3' v2"}], "tissue": lung,
         "assets": [{"filetype": "H5AD", "url": a.as_uri()}]},
        {"dataset_id": "d2", "assay": [{"label": "10x 3' v2"}], "tissue": lung,
         "assets": [{"filetype": "H5AD", "url": b.as_uri()}]},
        {"dataset_id": "d3", "assay": [{"label": "Smart-seq2"}], "tissue": lung,
         "assets": [{"filetype": "H5AD", "url": (tmp_path / "never.h5ad").as_uri()}]},
    ]}
    api = tmp_path / "collection.json"
    api.write_text(json.dumps(collection))
    c = D.load_tabula(root=tmp_path / "cache", api_url=api.as_uri())
    assert c.genes == ["g1", "g2", "g3"]
    assert c.X.tolist() == [[1, 2, 0], [2, 0, 0], [0, 5, 1]]


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(D.DataError, match="unknown denoising dataset"):
        D.load("nope")


# ---- the synthetic generator ----------------------------------------------------------------------


def test_synthetic_defaults_and_determinism():
    cfg = SyntheticConfig()
    assert (cfg.n_types, cfg.rank, cfg.within_sd, cfg.de_frac, cfg.de_sd, cfg.gene_sdlog, cfg.lib_sdlog,
            cfg.lib_median, cfg.theta) == (8, 10, 0.1, 0.3, 1.5, 1.5, 0.5, 4000.0, 10.0)
    small = SyntheticConfig(n_cells=50, n_genes=300, seed=3)
    X1, r1 = generate(small)
    X2, r2 = generate(small)
    assert X1.dtype == np.int64 and np.array_equal(X1, X2) and np.array_equal(r1, r2)
    assert not np.array_equal(X1, generate(SyntheticConfig(n_cells=50, n_genes=300, seed=4))[0])
    libs = X1.sum(axis=1)
    assert 1500 < np.median(libs) < 8000  # lognormal around lib_median
