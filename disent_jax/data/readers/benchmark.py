r"""Time per example: mesh files through a reader vs the array cache.

    python -m disent_jax.data.readers.benchmark \
        [--out=benchmarks/results/readers.md] [--frames=40]

Writes a CoMA-layout dataset of FLAME-sized meshes (5023 vertices, 10042
triangles: a decimated icosphere, perturbed per frame) into a temporary
directory, binary PLY as trimesh writes it (and an ASCII copy), and times,
per example (median of 3 passes over every mesh, single thread):

  * before: trimesh's PLY loader + `ops.mesh.validate_mesh` + the shared
    topology check, i.e. the old per-file cost of `CoMASource[i]`;
  * now: `CoMASource[i]` (this package's PLY parser, per-file vertex checks,
    neutrals from the LRU cache);
  * `CachedSource[i]` of `readers.load_cached`, and the one-time build.

Also reads the files from 16 threads (the case that failed with trimesh's
loader) and reports the errors, which must be 0.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time
from concurrent import futures
from typing import Callable, Sequence

import numpy as np

from disent_jax.data.readers import cache
from disent_jax.data.readers import coma
from disent_jax.ops import hierarchy
from disent_jax.ops import mesh as mesh_ops

_EXPRESSIONS = ("bareteeth", "eyebrow", "mouth_up")
_SUBJECTS = ("FaceTalk_A", "FaceTalk_B")


def _write_dataset(root: pathlib.Path, frames: int, encoding: str
                   ) -> np.ndarray:
  import trimesh  # pylint: disable=g-import-not-at-top
  sphere = trimesh.creation.icosphere(subdivisions=5)
  dec = hierarchy.decimate(np.asarray(sphere.vertices),
                           np.asarray(sphere.faces), num_vertices=5023)
  base = np.asarray(sphere.vertices)[dec.kept] * 0.1
  for s, subject in enumerate(_SUBJECTS):
    for e, expression in enumerate(_EXPRESSIONS):
      for frame in range(1, frames + 1):
        v = base * (1.0 + 0.05 * s) + 0.002 * (frame - 1) * np.sin(
            base * (e + 3.0))
        path = root / subject / expression / f"{expression}.{frame:06d}.ply"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(trimesh.exchange.ply.export_ply(
            trimesh.Trimesh(v, dec.faces, process=False), encoding=encoding))
  return dec.faces


def _per_example_ms(read: Callable[[int], object], n: int,
                    repeats: int = 3) -> float:
  read(0)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    for i in range(n):
      read(i)
    times.append((time.perf_counter() - start) / n)
  return 1e3 * statistics.median(times)


def _trimesh_read_checked(path: str, faces: np.ndarray) -> np.ndarray:
  import trimesh  # pylint: disable=g-import-not-at-top
  with open(path, "rb") as f:
    loaded = trimesh.exchange.ply.load_ply(f, prefer_color=None)
  v = np.asarray(loaded["vertices"], np.float64)
  file_faces = np.asarray(loaded["faces"], np.int64)
  mesh_ops.validate_mesh(v, file_faces, expected_num_vertices=len(v),
                         source=path)
  if not np.array_equal(file_faces, faces):
    raise mesh_ops.MeshError(f"{path}: topology differs")
  return v * 1000.0


def run(frames: int = 40) -> list[tuple[str, float, str]]:
  """[(case, value, unit)] on a fresh fixture (see the module docstring)."""
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    faces = _write_dataset(tmp / "binary", frames, "binary")
    _write_dataset(tmp / "ascii", frames, "ascii")
    source = coma.load_coma(tmp / "binary", split="all")
    ascii_source = coma.load_coma(tmp / "ascii", split="all")
    n = len(source)
    paths = [r.path for r in source.records]
    rows.append((f"before: trimesh load_ply + validate_mesh, binary PLY "
                 f"V=5023 (N={n})",
                 _per_example_ms(
                     lambda i: _trimesh_read_checked(paths[i], faces), n),
                 "ms/example"))
    rows.append(("now: CoMASource[i], binary PLY",
                 _per_example_ms(lambda i: source[i], n), "ms/example"))
    rows.append(("now: CoMASource[i], ASCII PLY",
                 _per_example_ms(lambda i: ascii_source[i], n, repeats=1),
                 "ms/example"))
    start = time.perf_counter()
    cached = cache.load_cached("coma", tmp / "binary", split="all",
                               cache_dir=tmp / "cache", progress=False)
    build = time.perf_counter() - start
    rows.append((f"cache build, {os.cpu_count()} threads (one time)",
                 1e3 * build / n, "ms/example"))
    start = time.perf_counter()
    cached = cache.load_cached("coma", tmp / "binary", split="all",
                               cache_dir=tmp / "cache", progress=False)
    rows.append(("cache open (scan + fingerprint, no mesh read)",
                 1e3 * (time.perf_counter() - start), "ms total"))
    rows.append(("CachedSource[i]",
                 _per_example_ms(lambda i: cached[i], n), "ms/example"))
    for i in range(0, n, max(1, n // 7)):
      np.testing.assert_array_equal(cached[i]["vertices"],
                                    source[i]["vertices"])
    errors = []

    def read(i):
      try:
        source[i % n]
      except Exception as e:  # pylint: disable=broad-except
        errors.append(e)

    start = time.perf_counter()
    with futures.ThreadPoolExecutor(16) as pool:
      list(pool.map(read, range(4 * n)))
    rows.append((f"CoMASource[i] from 16 threads, {4 * n} reads: "
                 f"{len(errors)} errors",
                 1e3 * (time.perf_counter() - start) / (4 * n),
                 "ms/example"))
  return rows


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m disent_jax.data.readers.benchmark")
  parser.add_argument("--frames", type=int, default=40,
                      help="frames per sequence (6 sequences)")
  parser.add_argument("--out", default="", help="a Markdown file to write")
  args = parser.parse_args(argv)
  rows = run(args.frames)
  lines = [
      "# Mesh readers: PLY files vs the array cache", "",
      "`python -m disent_jax.data.readers.benchmark "
      f"--frames={args.frames}`. Machine: {platform.processor() or 'cpu'}, "
      f"cpu_count={os.cpu_count()}, python={platform.python_version()}.",
      "", "| case | time | unit |", "|---|---:|---|"]
  lines += [f"| {case} | {value:.3f} | {unit} |" for case, value, unit in rows]
  text = "\n".join(lines) + "\n"
  print(text)
  if args.out:
    pathlib.Path(args.out).write_text(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
