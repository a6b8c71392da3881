"""The on-disk array cache of the mesh readers (`readers.cache`)."""

import importlib.util
import os
import pathlib
import pickle
import subprocess
import sys

import numpy as np
import pytest

from data import test_readers as fixtures
from disent_jax.cli import cache_meshes
from disent_jax.data import pipeline
from disent_jax.data import readers
from disent_jax.data.readers import cache
from disent_jax.data.readers import common
from disent_jax.data.readers import formats
from disent_jax.methods.pointnet_id_vae import data as method_data
from disent_jax.ops import mesh as mesh_ops


def _assert_same_examples(cached, source):
  assert isinstance(cached, pipeline.ArraySource)
  assert len(cached) == len(source)
  for i in range(len(source)):
    want, got = source[i], cached[i]
    assert list(got) == list(want)
    for k in want:
      assert np.asarray(got[k]).dtype == np.asarray(want[k]).dtype, k
      np.testing.assert_array_equal(got[k], want[k], err_msg=k)
  np.testing.assert_array_equal(cached.faces, source.faces)
  assert cached.faces.dtype == np.int32
  assert cached.num_vertices == source.num_vertices
  assert cached.subject_names == source.subject_names
  assert cached.expression_names == source.expression_names
  assert cached.label_names == source.label_names
  np.testing.assert_array_equal(cached.subjects,
                                [r.subject for r in source.records])
  assert cached.records == source.records


@pytest.fixture(name="roots", scope="module")
def _roots(tmp_path_factory):
  base = tmp_path_factory.mktemp("datasets")
  fixtures._write_coma(base / "coma")
  fixtures._write_bu3dfe(base / "bu3dfe")
  fixtures._write_facescape(base / "facescape")
  return base


@pytest.mark.parametrize("dataset, kwargs, extras", [
    ("coma", {"num_vertices": 42}, ()),
    ("coma", {"num_vertices": 42, "protocol": "identity",
              "test_subjects": ("FaceTalk_A",), "neutral": "subject_mean"},
     ()),
    ("bu3dfe", {}, ("reference",)),
    ("facescape", {"num_vertices": 150, "seed": 3}, ("kept", "full_faces")),
])
def test_cache_reproduces_the_reader(roots, tmp_path, dataset, kwargs,
                                     extras):
  root = roots / dataset
  load, _ = cache.DATASETS[dataset]
  for split in ("train", "test"):
    source = load(root, split=split, **kwargs)
    cached = cache.load_cached(dataset, root, split=split,
                               cache_dir=tmp_path, reader_kwargs=kwargs,
                               progress=False)
    _assert_same_examples(cached, source)
    for name in extras:
      np.testing.assert_array_equal(getattr(cached, name),
                                    getattr(source, name))
    # One stored neutral per distinct neutral, not one per example.
    distinct = {source[i]["neutral"].tobytes() for i in range(len(source))
                if source[i]["has_neutral"]}
    assert cached.manifest["num_neutrals"] == len(distinct)
    assert cached.directory.name.startswith(f"{dataset}-{split}-")


def test_a_second_call_reads_no_mesh(roots, tmp_path, monkeypatch):
  root = roots / "coma"
  first = cache.load_cached("coma", root, split="test", cache_dir=tmp_path,
                            reader_kwargs={"num_vertices": 42},
                            progress=False)
  bu = roots / "bu3dfe"
  a = cache.load_cached("bu3dfe", bu, split="test", cache_dir=tmp_path,
                        progress=False)

  def fail(path):
    raise AssertionError(f"read {path} instead of the cache")

  monkeypatch.setattr(formats, "read_mesh", fail)
  # Defaults spelled out, or a config's typed "not given", hit the same key.
  for kwargs in ({"num_vertices": 42},
                 {"num_vertices": 42, "protocol": "interpolation",
                  "cache_size": 3, "test_subjects": ()}):
    again = readers.load_cached("coma", root, split="test",
                                cache_dir=tmp_path, reader_kwargs=kwargs)
    assert again.directory == first.directory
    np.testing.assert_array_equal(again[7]["vertices"],
                                  first[7]["vertices"])
  b = cache.load_cached("bu3dfe", bu, split="test", cache_dir=tmp_path,
                        reader_kwargs={"num_vertices": 0,
                                       "alignment_vertex_ids": ()})
  assert a.directory == b.directory


def test_changed_files_or_arguments_rebuild(roots, tmp_path_factory,
                                            tmp_path):
  root = tmp_path_factory.mktemp("coma_copy")
  fixtures._write_coma(root)
  kwargs = {"num_vertices": 42}
  first = cache.load_cached("coma", root, split="test", cache_dir=tmp_path,
                            reader_kwargs=kwargs, progress=False)
  other = cache.load_cached("coma", root, split="test", cache_dir=tmp_path,
                            reader_kwargs={**kwargs, "neutral": "none"},
                            progress=False)
  assert other.directory != first.directory
  # Rewrite one mesh (same size, new coordinates and mtime).
  path = first.records[3].path
  v, f = formats.read_ply(path)
  fixtures._write_ply(pathlib.Path(path), v * 2.0, f)
  st = os.stat(path)
  os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
  rebuilt = cache.load_cached("coma", root, split="test", cache_dir=tmp_path,
                              reader_kwargs=kwargs, progress=False)
  assert rebuilt.directory != first.directory
  np.testing.assert_allclose(rebuilt[3]["vertices"],
                             np.float32(v * 2.0 * 1000.0), rtol=1e-6)
  # The superseded cache of the same arguments is gone; the cache of other
  # arguments stays.
  assert not first.directory.exists()
  assert other.directory.exists()
  # A new file changes the fingerprint too.
  extra = root / "FaceTalk_A" / "eyebrow" / "eyebrow.000018.ply"
  fixtures._write_ply(extra, v, f)
  grown = cache.load_cached("coma", root, split="all", cache_dir=tmp_path,
                            reader_kwargs=kwargs, progress=False)
  assert len(grown) == len(fixtures._coma_order()) + 1


def test_a_failed_build_leaves_nothing_behind(tmp_path_factory, tmp_path):
  root = tmp_path_factory.mktemp("coma_bad")
  fixtures._write_coma(root)
  order = fixtures._coma_order()
  s, x, frame = order[105]  # A test mesh of the interpolation split.
  bad = root / s / x / f"{x}.{frame:06d}.ply"
  good = bad.read_bytes()
  bad.write_bytes(good[:300])
  with pytest.raises(mesh_ops.MeshError, match="not a readable PLY") as e:
    cache.load_cached("coma", root, split="test", cache_dir=tmp_path,
                      reader_kwargs={"num_vertices": 42}, progress=False,
                      num_workers=4)
  assert str(bad) in str(e.value)
  assert list(tmp_path.iterdir()) == []  # No cache, no temporary directory.
  bad.write_bytes(good)
  fixed = cache.load_cached("coma", root, split="test", cache_dir=tmp_path,
                            reader_kwargs={"num_vertices": 42},
                            progress=False)
  assert len(fixed) == 20
  assert [p.name for p in tmp_path.iterdir()] == [fixed.directory.name]


def test_a_damaged_cache_is_rebuilt(roots, tmp_path):
  kwargs = {"num_vertices": 42}
  first = cache.load_cached("coma", roots / "coma", split="test",
                            cache_dir=tmp_path, reader_kwargs=kwargs,
                            progress=False)
  want = first[4]["vertices"]
  directory = first.directory
  del first
  (directory / "vertices.npy").unlink()
  again = cache.load_cached("coma", roots / "coma", split="test",
                            cache_dir=tmp_path, reader_kwargs=kwargs,
                            progress=False)
  assert again.directory == directory
  np.testing.assert_array_equal(again[4]["vertices"], want)


def test_a_concurrent_build_keeps_the_first(roots, tmp_path):
  source = readers.load_coma(roots / "coma", split="test", num_vertices=42)
  target = tmp_path / "coma-test-x"
  first = cache.build_cache(source, target, progress=False)
  second = cache.build_cache(source, target, progress=False)
  assert second.directory == first.directory
  assert [p.name for p in tmp_path.iterdir()] == ["coma-test-x"]


def test_cached_source_pickles_small_and_feeds_grain(roots, tmp_path):
  source = readers.load_coma(roots / "coma", split="test", num_vertices=42)
  cached = cache.load_cached("coma", roots / "coma", split="test",
                             cache_dir=tmp_path,
                             reader_kwargs={"num_vertices": 42},
                             progress=False)
  blob = pickle.dumps(cached)
  assert len(blob) < 1000  # The directory, not the arrays.
  clone = pickle.loads(blob)
  np.testing.assert_array_equal(clone[9]["neutral"], source[9]["neutral"])
  out = cached[2]
  out["vertices"][:] = 0.0  # A copy, not a view of the read-only map.
  assert np.abs(cached[2]["vertices"]).max() > 0
  assert cached[-1]["index"] == 19
  with pytest.raises(IndexError):
    _ = cached[20]
  batches = list(pipeline.batched_iterator(cached, batch_size=4, seed=0,
                                           num_epochs=1))
  want = list(pipeline.batched_iterator(source, batch_size=4, seed=0,
                                        num_epochs=1))
  for a, b in zip(batches, want):
    for k in b:
      np.testing.assert_array_equal(a[k], b[k])


def test_command_line_builds_both_splits(roots, tmp_path, capsys):
  argv = ["--dataset=coma", f"--root={roots / 'coma'}",
          f"--cache_dir={tmp_path}",
          '--reader_kwargs={"num_vertices": 42, "protocol": "identity", '
          '"test_subjects": ["FaceTalk_B"]}', "--num_workers=2"]
  assert cache_meshes.main(argv) == 0
  out = capsys.readouterr().out
  assert "train: 61 meshes" in out and "test: 61 meshes" in out
  assert len(list(tmp_path.glob("coma-*"))) == 2
  for bad in ("[1]", "{not json"):
    with pytest.raises(SystemExit):
      cache_meshes.main(["--dataset=coma", f"--root={roots}",
                         f"--cache_dir={tmp_path}", f"--reader_kwargs={bad}"])
  assert "reader_kwargs" in capsys.readouterr().err
  with pytest.raises(TypeError, match="load_coma.*protocl"):
    cache.load_cached("coma", roots / "coma", cache_dir=tmp_path,
                      reader_kwargs={"protocl": "identity"})


def test_launcher_runs_without_warnings():
  repo = pathlib.Path(__file__).resolve().parents[2]
  done = subprocess.run(
      [sys.executable, "-W", "error::RuntimeWarning", "launch/cache_meshes.py",
       "--help"],
      cwd=repo, capture_output=True, text=True, timeout=120, check=False)
  assert done.returncode == 0, done.stderr
  assert "--reader_kwargs" in done.stdout
  assert "RuntimeWarning" not in done.stderr, done.stderr


def test_fingerprint_covers_paths_sizes_and_times(tmp_path):
  a = tmp_path / "a.ply"
  a.write_bytes(b"12345")
  digest = cache.file_fingerprint([a])
  assert cache.file_fingerprint([a]) == digest
  st = os.stat(a)
  os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
  assert cache.file_fingerprint([a]) != digest
  assert cache.file_fingerprint([]) != cache.file_fingerprint([a])
  assert common.name_list("a, b,,") == ("a", "b")


def test_pointnet_id_vae_sources_use_the_cache(roots, tmp_path):
  config_path = (pathlib.Path(__file__).parents[2] / "configs" /
                 "pointnet_id_vae.py")
  spec = importlib.util.spec_from_file_location("_pid_config", config_path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("dataset=coma,runlocal=True")
  config.data.root = str(roots / "coma")
  config.data.reader_kwargs.num_vertices = 0  # The fixture's 42.
  config.data.reader_kwargs.protocol = "identity"
  config.data.reader_kwargs.test_subjects = ("FaceTalk_B",)
  plain = method_data.make_sources(config)
  config.data.cache_dir = str(tmp_path)
  cached = method_data.make_sources(config)
  assert isinstance(cached.train, cache.CachedSource)
  assert len(cached.train) == len(plain.train) == 61
  np.testing.assert_array_equal(cached.faces, plain.faces)
  assert cached.num_subjects_train == plain.num_subjects_train == 1
  np.testing.assert_array_equal(cached.test[5]["vertices"],
                                plain.test[5]["vertices"])
