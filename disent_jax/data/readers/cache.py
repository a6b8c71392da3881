r"""An on-disk array cache of a mesh reader: parse the files once, then memmap.

    python launch/cache_meshes.py --dataset=coma \
        --root=/data/COMA --cache_dir=/data/cache [--splits=train,test] \
        [--reader_kwargs='{"protocol": "identity"}']

`load_cached(dataset, root, split=..., cache_dir=..., reader_kwargs=...)`
returns a `CachedSource`: a `pipeline.ArraySource` over memory-mapped .npy
files with the examples (same keys, dtypes and order) and the attributes
(`faces`, `subjects`, `subject_names`, `expression_names`, `label_names`,
`num_vertices`, `records`, and FaceScape's `kept` / `full_faces` or
BU-3DFE's `reference`) of the reader's `MeshSource`. The first call reads
every mesh through the reader (threads, a tqdm bar) and writes the cache;
later calls open it in milliseconds. Training then reads arrays, not mesh
files: the neutral is one row of a de-duplicated table, so the cache
holds N + K meshes (K distinct neutrals), not 2 N.

Directory `<cache_dir>/<dataset>-<split>-<key>/`:
  vertices.npy       [N, V, 3] float32, mm.
  neutrals.npy       [K, V, 3] float32, the distinct neutrals.
  neutral_index.npy  [N] int32, row of `neutrals` (-1: no neutral).
  has_neutral.npy    [N] bool; subject, expression, index and each label
                     (e.g. frame, sequence, intensity): [N] int32.
  faces.npy          [F, 3] int32; kept / full_faces / reference if any.
  records.json       the `MeshRecord`s (files and labels).
  manifest.json      the key, what it was computed from, names and counts.

The key hashes the cache version, the dataset, the resolved root, the
split, every reader argument that changes the examples (defaults filled in;
`cache_size` and FaceScape's decimation `cache_dir` left out) and a
fingerprint of the dataset's mesh files (each path, size and mtime, as the
reader's `scan` lists them, plus an explicit FaceScape `template`). A
changed, added or removed file, or other arguments, give another key and a
rebuild; a superseded cache of the same arguments is deleted after the
rebuild. The cache is written into a temporary directory beside the target
and renamed into place only when complete, so a crash never leaves a cache
that is later trusted (a partial temporary directory is ignored); two
processes building at once both finish and the first rename wins.

Measured (`python -m disent_jax.data.readers.benchmark --frames=40`, 2
shared CPU cores, 240 CoMA-layout binary PLY files of 5023 vertices; see
`benchmarks/results/readers.md`), per example: 15.2 ms with trimesh's PLY
loader and the full per-file mesh validation (before), 2.0 ms with this
package's PLY parser and per-file vertex checks (`CoMASource[i]` now),
0.02 ms from the cache (`CachedSource[i]`); building the cache took 3.6
ms per mesh once, opening it 10 ms.
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import inspect
import json
import logging
import os
import pathlib
import shutil
import uuid
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import tqdm

from disent_jax.data import pipeline
from disent_jax.data.readers import bu3dfe
from disent_jax.data.readers import coma
from disent_jax.data.readers import common
from disent_jax.data.readers import facescape

CACHE_VERSION = 1
# name: (load function, scan function listing (..., path) tuples).
DATASETS: Mapping[str, tuple[Callable[..., Any], Callable[..., list]]] = {
    "coma": (coma.load_coma, coma.scan),
    "bu3dfe": (bu3dfe.load_bu3dfe, bu3dfe.scan),
    "facescape": (facescape.load_facescape, facescape.scan),
}
# Reader arguments that do not change the examples, left out of the key.
_NOT_CONTENT = ("root", "cache_size", "cache_dir")
# Reader arguments naming a file the examples depend on.
_FILE_ARGUMENTS = ("template",)
# Array attributes of a reader's source kept beside the examples.
_EXTRA_ARRAYS = ("kept", "full_faces", "reference")
_MAIN_KEYS = ("vertices", "neutral", "has_neutral", "subject", "expression",
              "index")
_MANIFEST = "manifest.json"
_TMP_MARK = ".tmp-"

PathLike = common.PathLike


def _jsonable(value: Any) -> Any:
  """Reader arguments as JSON values (tuples and arrays become lists)."""
  if isinstance(value, Mapping):
    return {str(k): _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple, np.ndarray)):
    return [_jsonable(v) for v in list(value)]
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, os.PathLike):
    return os.fspath(value)
  return value


def _not_given(value: Any) -> bool:
  if isinstance(value, (str, list, tuple)):
    return len(value) == 0
  return isinstance(value, (int, float)) and not isinstance(
      value, bool) and value == 0


def file_fingerprint(paths: Iterable[PathLike]) -> str:
  """A hex digest of each file's path, size and modification time (ns)."""
  digest = hashlib.sha256()
  for path in paths:
    st = os.stat(path)
    digest.update(f"{os.fspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\n"
                  .encode())
  return digest.hexdigest()


def cache_description(dataset: str, root: PathLike, *, split: str,
                      reader_kwargs: Mapping[str, Any] | None = None
                      ) -> dict[str, Any]:
  """What the cache of `load_<dataset>(root, split, **reader_kwargs)` is
  keyed on: version, dataset, root, split, content arguments, files."""
  reader_kwargs = dict(reader_kwargs or {})
  if dataset not in DATASETS:
    raise ValueError(f"dataset={dataset!r}: expected one of "
                     f"{sorted(DATASETS)}")
  load, scan = DATASETS[dataset]
  try:
    bound = inspect.signature(load).bind(root, split=split, **reader_kwargs)
  except TypeError as e:
    raise TypeError(f"{load.__module__}.{load.__name__}: {e}") from None
  bound.apply_defaults()
  parameters = inspect.signature(load).parameters
  arguments = {}
  for k, v in bound.arguments.items():
    if k in _NOT_CONTENT:
      continue
    if parameters[k].default is None and _not_given(v):
      v = None  # A config's typed "not given" (0, "", ()) is the default.
    arguments[k] = v
  files = [entry[-1] for entry in scan(root)]
  files += [str(v) for k, v in arguments.items()
            if k in _FILE_ARGUMENTS and v not in (None, "")]
  return {
      "version": CACHE_VERSION,
      "dataset": dataset,
      "root": str(pathlib.Path(root).expanduser().resolve()),
      "arguments": _jsonable(arguments),
      "num_files": len(files),
      "files": file_fingerprint(files),
  }


def cache_key(description: Mapping[str, Any]) -> str:
  """16 hex digits of the description's canonical JSON."""
  text = json.dumps(_jsonable(description), sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


class CachedSource(pipeline.ArraySource):
  """Examples of a mesh reader read from a cache directory (memory-mapped).

  Indexing returns the reader's example dict (copies, not views of the
  read-only maps). Pickling keeps only the directory, so grain worker
  processes re-open the maps instead of copying the arrays.

  Attributes:
    directory: the cache directory.
    manifest: its manifest (key, description, names, counts).
    faces: [F, 3] int32 triangles.
    subjects: [N] int64 subject index of every example.
    subject_names, expression_names, label_names: as the reader's source.
    num_vertices: V.
    records: the reader's `MeshRecord`s (read on first use).
  """

  def __init__(self, directory: PathLike):
    self._open(pathlib.Path(directory))

  def _open(self, directory: pathlib.Path) -> None:
    self.directory = directory
    self.manifest = json.loads((directory / _MANIFEST).read_text())
    if self.manifest.get("version") != CACHE_VERSION:
      raise ValueError(f"{directory}: cache version "
                       f"{self.manifest.get('version')}, expected "
                       f"{CACHE_VERSION}")
    n = self.manifest["num_examples"]
    columns = {k: np.load(directory / f"{k}.npy", mmap_mode="r")
               for k in self.manifest["columns"]}
    for k, v in columns.items():
      if len(v) != n:
        raise ValueError(f"{directory}: {k}.npy holds {len(v)} rows, the "
                         f"manifest says {n}")
    super().__init__(columns)
    self._neutrals = np.load(directory / "neutrals.npy", mmap_mode="r")
    index = self._arrays["neutral_index"]
    if n and int(index.max(initial=-1)) >= len(self._neutrals):
      raise ValueError(f"{directory}: neutral_index points past the "
                       f"{len(self._neutrals)} stored neutrals")
    self.faces = np.load(directory / "faces.npy")
    self.num_vertices = int(self.manifest["num_vertices"])
    self.subject_names = tuple(self.manifest["subject_names"])
    self.expression_names = tuple(self.manifest["expression_names"])
    self.label_names = tuple(self.manifest["label_names"])
    self.subjects = np.asarray(self._arrays["subject"], np.int64)
    for name in self.manifest.get("extras", ()):
      setattr(self, name, np.load(directory / f"{name}.npy"))
    self._records = None
    self._keys = (_MAIN_KEYS + self.label_names)

  @property
  def records(self) -> tuple[common.MeshRecord, ...]:
    if self._records is None:
      rows = json.loads((self.directory / "records.json").read_text())
      self._records = tuple(
          common.MeshRecord(path=r["path"], subject=r["subject"],
                            expression=r["expression"],
                            neutral=tuple(r["neutral"]), labels=r["labels"])
          for r in rows)
    return self._records

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    index = int(index)
    if index < 0:
      index += len(self)
    if not 0 <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} meshes")
    a = self._arrays
    j = int(a["neutral_index"][index])
    neutral = (np.array(self._neutrals[j]) if j >= 0 else
               np.zeros((self.num_vertices, 3), np.float32))
    out = {"vertices": np.array(a["vertices"][index]), "neutral": neutral,
           "has_neutral": np.asarray(bool(a["has_neutral"][index]))}
    for k in self._keys[3:]:
      out[k] = np.int32(a[k][index])
    return out

  def __repr__(self) -> str:
    return (f"CachedSource({len(self)} meshes, V={self.num_vertices}, "
            f"{self.directory})")

  def __getstate__(self):
    return {"directory": str(self.directory)}

  def __setstate__(self, state):
    self._open(pathlib.Path(state["directory"]))


def _ordered_map(fn: Callable[[int], Any], n: int, num_workers: int
                 ) -> Iterator[Any]:
  """fn(0), ..., fn(n - 1) in order, computed by threads, few in flight."""
  if num_workers <= 1:
    yield from (fn(i) for i in range(n))
    return
  with concurrent.futures.ThreadPoolExecutor(num_workers) as pool:
    pending = collections.deque()
    for i in range(n):
      pending.append(pool.submit(fn, i))
      if len(pending) >= 4 * num_workers:
        yield pending.popleft().result()
    while pending:
      yield pending.popleft().result()


def _write_json(path: pathlib.Path, value: Any) -> None:
  path.write_text(json.dumps(_jsonable(value), indent=1, sort_keys=True))


def build_cache(source: Any, directory: PathLike, *,
                description: Mapping[str, Any] | None = None,
                num_workers: int | None = None,
                progress: bool = True) -> CachedSource:
  """Reads every example of `source` once and writes a cache directory.

  Written into `<directory's parent>/.<name>.tmp-<pid>-<random>` and renamed
  to `directory` when complete; on any error the temporary directory is
  removed and the error propagates. If `directory` appeared meanwhile (a
  concurrent build), that one is kept and opened.

  Args:
    source: a reader's source (`MeshSource`, or anything with `__len__`,
      `__getitem__` -> the reader's example dict, `faces`, `num_vertices`,
      `subject_names`, `expression_names`; `label_names` and `records`
      optional).
    directory: the cache directory to create.
    description: stored in the manifest (what the cache was built from).
    num_workers: reader threads (default min(8, CPUs)).
    progress: show a tqdm bar.

  Returns:
    The `CachedSource` of `directory`.
  """
  directory = pathlib.Path(directory)
  n = len(source)
  if n == 0:
    raise ValueError(f"build_cache: {source!r} is empty")
  v = int(source.num_vertices)
  labels = tuple(getattr(source, "label_names", ()))
  if num_workers is None:
    num_workers = min(8, os.cpu_count() or 1)
  directory.parent.mkdir(parents=True, exist_ok=True)
  tmp = directory.parent / (f".{directory.name}{_TMP_MARK}{os.getpid()}-"
                            f"{uuid.uuid4().hex[:8]}")
  tmp.mkdir()
  try:
    vertices = np.lib.format.open_memmap(tmp / "vertices.npy", mode="w+",
                                         dtype=np.float32, shape=(n, v, 3))
    columns = {"has_neutral": np.zeros(n, bool),
               "neutral_index": np.full(n, -1, np.int32)}
    for k in ("subject", "expression", "index") + labels:
      columns[k] = np.zeros(n, np.int32)
    slots: dict[bytes, int] = {}
    neutrals = []
    items = _ordered_map(source.__getitem__, n, num_workers)
    bar = tqdm.tqdm(items, total=n, desc=f"caching {directory.name}",
                    unit="mesh", disable=not progress)
    for i, item in enumerate(bar):
      vertices[i] = item["vertices"]
      for k in columns:
        if k in item:
          columns[k][i] = item[k]
      if bool(item["has_neutral"]):
        neutral = np.ascontiguousarray(item["neutral"], np.float32)
        key = hashlib.blake2b(neutral.tobytes(), digest_size=16).digest()
        if key not in slots:
          slots[key] = len(neutrals)
          neutrals.append(neutral)
        columns["neutral_index"][i] = slots[key]
    vertices.flush()
    del vertices
    for k, column in columns.items():
      np.save(tmp / f"{k}.npy", column)
    np.save(tmp / "neutrals.npy",
            np.stack(neutrals) if neutrals else np.zeros((0, v, 3),
                                                         np.float32))
    np.save(tmp / "faces.npy", np.asarray(source.faces, np.int32))
    extras = []
    for name in _EXTRA_ARRAYS:
      value = getattr(source, name, None)
      if value is not None:
        np.save(tmp / f"{name}.npy", np.asarray(value))
        extras.append(name)
    records = getattr(source, "records", ())
    _write_json(tmp / "records.json", [
        {"path": r.path, "subject": r.subject, "expression": r.expression,
         "neutral": list(r.neutral), "labels": dict(r.labels)}
        for r in records])
    _write_json(tmp / _MANIFEST, {
        "version": CACHE_VERSION,
        "key": directory.name,
        "description": dict(description or {}),
        "source": repr(source),
        "num_examples": n,
        "num_vertices": v,
        "num_neutrals": len(neutrals),
        "columns": ["vertices"] + list(columns),
        "label_names": list(labels),
        "subject_names": list(source.subject_names),
        "expression_names": list(source.expression_names),
        "extras": extras,
    })
    try:
      os.rename(tmp, directory)
    except OSError:
      if not (directory / _MANIFEST).is_file():
        raise
      logging.info("cache %s was built concurrently; keeping that one",
                   directory)
      shutil.rmtree(tmp, ignore_errors=True)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return CachedSource(directory)


def _prune_superseded(cache_dir: pathlib.Path, prefix: str,
                      description: Mapping[str, Any], keep: str) -> None:
  """Deletes caches of the same arguments whose files have changed."""
  same = {k: v for k, v in _jsonable(description).items()
          if k not in ("files", "num_files")}
  for other in cache_dir.glob(f"{prefix}*"):
    if other.name == keep or _TMP_MARK in other.name:
      continue
    try:
      old = json.loads((other / _MANIFEST).read_text())["description"]
    except (OSError, ValueError, KeyError):
      continue
    if {k: v for k, v in old.items()
        if k not in ("files", "num_files")} == same:
      logging.info("deleting superseded cache %s", other)
      shutil.rmtree(other, ignore_errors=True)


def load_cached(dataset: str, root: PathLike, *, split: str = "train",
                cache_dir: PathLike,
                reader_kwargs: Mapping[str, Any] | None = None,
                num_workers: int | None = None,
                progress: bool = True) -> CachedSource:
  """`load_<dataset>(root, split=split, **reader_kwargs)` through a cache.

  Opens `<cache_dir>/<dataset>-<split>-<key>` when it exists (listing the
  dataset's files and checking their sizes and times, no mesh is read);
  otherwise builds it with `build_cache`. A cache that exists but cannot be
  opened (damaged by hand) is deleted and built again.

  Args:
    dataset: "coma", "bu3dfe" or "facescape".
    root: the dataset directory.
    split: "train", "test" or "all".
    cache_dir: where caches live. FaceScape's template decimation is
      cached there too unless `reader_kwargs` names its own `cache_dir`.
    reader_kwargs: the reader's other arguments (e.g. {"protocol":
      "identity"}); a config's typed defaults (0, "", ()) are accepted.
    num_workers: reader threads for a build.
    progress: show a tqdm bar while building.

  Returns:
    A `CachedSource` with the reader source's examples and attributes.
  """
  reader_kwargs = dict(reader_kwargs or {})
  cache_dir = pathlib.Path(cache_dir).expanduser()
  if dataset == "facescape" and not reader_kwargs.get("cache_dir"):
    reader_kwargs["cache_dir"] = str(cache_dir)
  description = cache_description(dataset, root, split=split,
                                  reader_kwargs=reader_kwargs)
  prefix = f"{dataset}-{split}-"
  directory = cache_dir / f"{prefix}{cache_key(description)}"
  if directory.exists():
    try:
      return CachedSource(directory)
    except (OSError, ValueError, KeyError) as e:
      logging.warning("cache %s is unreadable (%s); building it again",
                      directory, e)
      shutil.rmtree(directory)
  load, _ = DATASETS[dataset]
  source = load(root, split=split, **reader_kwargs)
  cached = build_cache(source, directory, description=description,
                       num_workers=num_workers, progress=progress)
  _prune_superseded(cache_dir, prefix, description, directory.name)
  return cached
