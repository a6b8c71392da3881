"""Mesh readers under concurrent reader threads, and whom errors blame.

CPython 3.11 raises "SystemError: AST constructor recursion depth mismatch"
when two threads convert ASTs at once (its converter keeps the recursion
counter in interpreter-wide state); a garbage-collector finalizer running
Python code in the middle of one conversion is enough to switch threads.
trimesh's PLY loader reaches the converter through numpy's dtype-string
parser (`ast.literal_eval`), so reading PLY files from grain's threads
failed. The stress tests below recreate those conditions (many threads,
frequent collections of cyclic garbage with finalizers, a tiny switch
interval); with trimesh's loader they fail within a few thousand reads.
"""

import ast
import builtins
import contextlib
import gc
import pathlib
import sys
import threading
from concurrent import futures

import numpy as np
import pytest
import trimesh

from data import test_readers as fixtures
from disent_jax.data import pipeline
from disent_jax.data.readers import bu3dfe
from disent_jax.data.readers import coma
from disent_jax.data.readers import facescape
from disent_jax.data.readers import formats
from disent_jax.ops import mesh as mesh_ops


class _Finalized:
  """Cyclic garbage whose finalizer runs Python code (a thread switch)."""

  def __init__(self):
    self.partner = _Finalized.__new__(_Finalized)
    self.partner.partner = self

  def __del__(self):
    sum(range(20))


@contextlib.contextmanager
def _thread_switch_pressure():
  """Frequent GC passes with finalizers and a tiny GIL switch interval."""
  interval = sys.getswitchinterval()
  thresholds = gc.get_threshold()
  sys.setswitchinterval(1e-6)
  gc.set_threshold(50, 5, 5)
  try:
    yield
  finally:
    sys.setswitchinterval(interval)
    gc.set_threshold(*thresholds)


def _hammer(read, n_items, *, reads, threads=16):
  """Calls read(i % n_items) `reads` times from `threads` threads."""
  errors = []

  def work(i):
    _Finalized()
    try:
      read(i % n_items)
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  with _thread_switch_pressure():
    with futures.ThreadPoolExecutor(threads) as pool:
      list(pool.map(work, range(reads)))
  return errors


@pytest.fixture(name="coma_root", scope="module")
def _coma_root(tmp_path_factory):
  root = tmp_path_factory.mktemp("coma")
  fixtures._write_coma(root)  # 122 meshes of 42 vertices.
  return root


def test_ply_reads_survive_many_threads(coma_root):
  paths = sorted(str(p) for p in coma_root.rglob("*.ply")
                 if not p.name.startswith("."))
  expected = [formats.read_ply(p) for p in paths]
  results = {}

  def read(i):
    results[i] = formats.read_ply(paths[i])

  errors = _hammer(read, len(paths), reads=4000)
  assert not errors, errors[:3]
  for i, (v, f) in results.items():
    np.testing.assert_array_equal(v, expected[i][0])
    np.testing.assert_array_equal(f, expected[i][1])


def test_coma_source_survives_many_threads_and_grain(coma_root):
  source = coma.load_coma(coma_root, split="all", num_vertices=42,
                          cache_size=4)  # Small: neutrals are re-read.
  errors = _hammer(lambda i: source[i], len(source), reads=3000)
  assert not errors, errors[:3]
  # The same through grain's threaded reader.
  with _thread_switch_pressure():
    batches = list(pipeline.batched_iterator(source, batch_size=8, seed=0,
                                             num_epochs=5))
  assert len(batches) == 5 * len(source) // 8
  b = batches[3]
  for row in range(8):
    np.testing.assert_array_equal(b["vertices"][row],
                                  source[int(b["index"][row])]["vertices"])


def test_the_stress_conditions_do_break_the_compiler():
  """A control: the pressure above reproduces the interpreter bug."""
  if sys.version_info[:2] != (3, 11):
    pytest.skip("the AST converter's shared counter is a CPython 3.11 bug")
  errors = _hammer(lambda i: [ast.literal_eval("(3)") for _ in range(20)],
                   1, reads=2000, threads=8)
  if not errors:
    pytest.skip("the race did not trigger on this run (it is timing "
                "dependent); the read tests stand on their own")
  assert all(isinstance(e, SystemError) for e in errors)
  assert "recursion depth mismatch" in str(errors[0])


@contextlib.contextmanager
def _no_compiler(monkeypatch):
  """Any use of ast.parse / ast.literal_eval / compile fails the test."""
  entered = []

  def forbid(name):
    def fail(*args, **kwargs):
      entered.append(name)
      raise AssertionError(f"a mesh reader entered the compiler: {name}")
    return fail

  with monkeypatch.context() as m:
    m.setattr(ast, "parse", forbid("ast.parse"))
    m.setattr(ast, "literal_eval", forbid("ast.literal_eval"))
    m.setattr(builtins, "compile", forbid("compile"))
    yield entered
  assert not entered, entered


def test_readers_never_enter_the_python_compiler(tmp_path, monkeypatch):
  v, f = fixtures._sphere(1)
  mesh = trimesh.Trimesh(v, f, process=False)
  files = {
      "b.ply": trimesh.exchange.ply.export_ply(mesh),
      "a.ply": trimesh.exchange.ply.export_ply(mesh, encoding="ascii"),
      "m.obj": trimesh.exchange.obj.export_obj(mesh).encode(),
      "m.wrl": fixtures._vrml(v, f).encode(),
  }
  for name, data in files.items():
    (tmp_path / name).write_bytes(data)
  fixtures._write_coma(tmp_path / "coma")
  fixtures._write_bu3dfe(tmp_path / "bu")
  fixtures._write_facescape(tmp_path / "fs")
  sources = [
      coma.load_coma(tmp_path / "coma", num_vertices=42),
      bu3dfe.load_bu3dfe(tmp_path / "bu", split="test"),
      facescape.load_facescape(tmp_path / "fs", num_vertices=150),
  ]
  # Warm up (first calls may import modules, which compiles without .pyc).
  for name in files:
    formats.read_mesh(tmp_path / name)
  for s in sources:
    _ = s[1]
  with _no_compiler(monkeypatch):
    for name in files:
      rv, rf = formats.read_mesh(tmp_path / name)
      np.testing.assert_allclose(rv, v, atol=1e-5)
      np.testing.assert_array_equal(rf, f)
    for s in sources:
      for i in (0, 2, len(s) - 1):
        _ = s[i]


@pytest.mark.parametrize("error", [
    SystemError("AST constructor recursion depth mismatch"),
    OSError(5, "Input/output error"),
    MemoryError(),
])
def test_errors_not_about_the_file_keep_their_type(coma_root, monkeypatch,
                                                   error):
  source = coma.load_coma(coma_root, split="test", num_vertices=42)
  path = source.records[0].path

  def broken(self):
    raise error

  monkeypatch.setattr(pathlib.Path, "read_bytes", broken)
  with pytest.raises(type(error)) as e:
    formats.read_ply(path)
  assert not isinstance(e.value, mesh_ops.MeshError)
  assert any(path in note for note in getattr(e.value, "__notes__", []))
  with pytest.raises(type(error)):
    _ = source[0]


def test_a_malformed_file_is_still_blamed(coma_root, tmp_path):
  bad = tmp_path / "bad.ply"
  bad.write_bytes(pathlib.Path(
      coma.load_coma(coma_root, num_vertices=42).records[0].path
  ).read_bytes()[:300])
  with pytest.raises(mesh_ops.MeshError, match="not a readable PLY") as e:
    formats.read_ply(bad)
  assert str(bad) in str(e.value)


def test_threads_share_one_source_with_a_lock_free_reader(coma_root):
  """Concurrent reads of one source give the sequential answers."""
  source = coma.load_coma(coma_root, split="test", num_vertices=42)
  expected = [source[i]["vertices"] for i in range(len(source))]
  barrier = threading.Barrier(8)
  out = [[] for _ in range(8)]

  def run(k):
    barrier.wait()
    for i in range(len(source)):
      out[k].append(source[(i + k) % len(source)]["vertices"])

  threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  for k in range(8):
    for i, got in enumerate(out[k]):
      np.testing.assert_array_equal(got, expected[(i + k) % len(source)])
