"""Shared pieces of the real-dataset readers.

* `MeshRecord`: one mesh file with its labels and the files of its
  ground-truth neutral.
* `MeshSource`: a random-access source over records (`__len__`,
  `__getitem__` -> dict of numpy arrays) that `data.pipeline.
  batched_iterator` consumes directly. Files are read on access, validated
  with `ops.mesh.validate_mesh` (errors name the file), and neutrals are
  kept in a small LRU cache because many meshes share one.
  `to_array_source()` reads everything once into memory.
* `rigid_alignment` / `apply_rigid`: least-squares rotation + translation
  (Kabsch), in numpy float64.
* Directory and split helpers.

Every example dict holds:
  "vertices": [V, 3] float32, millimetres.
  "neutral": [V, 3] float32, the ground-truth neutral of the same subject
    in the same frame (zeros where `has_neutral` is False).
  "has_neutral": bool.
  "subject": int32, index into `source.subject_names` (the same across
    splits).
  "expression": int32, index into `source.expression_names`.
  "index": int32, position in the source.
  plus reader-specific int32 labels (e.g. "frame", "intensity").
"""

import collections
import dataclasses
import os
import pathlib
import threading
from typing import Callable, Mapping, Sequence

import numpy as np

from disent_jax.data import pipeline
from disent_jax.data.readers import formats
from disent_jax.ops import mesh as mesh_ops

PathLike = str | os.PathLike


@dataclasses.dataclass(frozen=True)
class MeshRecord:
  """One mesh of a dataset.

  Attributes:
    path: the mesh file.
    subject: subject index.
    expression: expression index.
    neutral: files whose mean is the ground-truth neutral ((): none).
    labels: extra integer labels, e.g. {"frame": 12}.
  """
  path: str
  subject: int
  expression: int
  neutral: tuple[str, ...] = ()
  labels: Mapping[str, int] = dataclasses.field(default_factory=dict)


def require_directory(root: PathLike, *, dataset: str, layout: str
                      ) -> pathlib.Path:
  """Returns `root` as a Path or raises FileNotFoundError with the layout."""
  root = pathlib.Path(root).expanduser()
  if not root.is_dir():
    raise FileNotFoundError(
        f"{dataset} directory not found: {root}. Expected the layout "
        f"{layout}")
  return root


def visible_entries(directory: pathlib.Path) -> list[pathlib.Path]:
  """Entries of a directory without hidden names, sorted by name."""
  return sorted((p for p in directory.iterdir()
                 if not p.name.startswith(".")), key=lambda p: p.name)


def subject_split(subjects: Sequence[str], *, test_fraction: float,
                  seed: int) -> tuple[list[str], list[str]]:
  """A seeded random split of subject names into (train, test).

  The test set is the subjects at positions
  `np.random.default_rng(seed).permutation(n)[:round(test_fraction * n)]`
  of `subjects` (pass them in a canonical order, e.g. sorted). Both lists
  keep that order.

  Args:
    subjects: subject names, in a canonical order.
    test_fraction: fraction of subjects in the test set, in [0, 1].
    seed: permutation seed.

  Returns:
    (train names, test names).
  """
  if not 0.0 <= test_fraction <= 1.0:
    raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
  names = list(subjects)
  if len(set(names)) != len(names):
    raise ValueError("subject names must be unique")
  num_test = int(round(test_fraction * len(names)))
  order = np.random.default_rng(seed).permutation(len(names))
  chosen = set(order[:num_test].tolist())
  test = [n for i, n in enumerate(names) if i in chosen]
  train = [n for i, n in enumerate(names) if i not in chosen]
  return train, test


def name_list(names: str | Sequence[str] | None) -> tuple[str, ...]:
  """Names from a sequence or a comma-separated string ("" or None: none).

  The string form is what a command line passes (`--config.data.
  reader_kwargs.test_subjects="F0001,F0002"`).
  """
  if names is None:
    return ()
  if isinstance(names, str):
    return tuple(n.strip() for n in names.split(",") if n.strip())
  return tuple(str(n) for n in names)


def optional_count(value: int | None) -> int | None:
  """A count where 0 or None means "not given" (a config's typed default)."""
  if value is None or int(value) == 0:
    return None
  if int(value) < 0:
    raise ValueError(f"expected a positive count or 0 (not given), got "
                     f"{value}")
  return int(value)


def optional_path(value: PathLike | None) -> PathLike | None:
  """A path where "" or None means "not given" (a config's typed default)."""
  return None if value is None or str(value) == "" else value


def rigid_alignment(source: np.ndarray, target: np.ndarray, *,
                    vertex_ids: Sequence[int] | np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Least-squares rigid transform (Kabsch) taking `source` onto `target`.

  Minimises sum_i ||R x_i + t - y_i||^2 over proper rotations R.

  Args:
    source: [N, 3] points x.
    target: [N, 3] corresponding points y.
    vertex_ids: optional subset of rows used for the fit.

  Returns:
    rotation [3, 3] (det +1) and translation [3], float64.
  """
  x = np.asarray(source, np.float64)
  y = np.asarray(target, np.float64)
  if x.shape != y.shape or x.ndim != 2 or x.shape[1] != 3:
    raise ValueError(f"source and target must both be [N, 3], got {x.shape} "
                     f"and {y.shape}")
  if vertex_ids is not None:
    ids = np.asarray(vertex_ids, np.int64)
    x, y = x[ids], y[ids]
  mx, my = x.mean(0), y.mean(0)
  cov = (y - my).T @ (x - mx)
  u, _, vt = np.linalg.svd(cov)
  d = np.sign(np.linalg.det(u @ vt))
  d = 1.0 if d == 0 else d
  rotation = u @ np.diag([1.0, 1.0, d]) @ vt
  return rotation, my - rotation @ mx


def apply_rigid(points: np.ndarray, rotation: np.ndarray,
                translation: np.ndarray) -> np.ndarray:
  """points [N, 3] -> R p + t, float64."""
  return np.asarray(points, np.float64) @ rotation.T + translation


class _LruCache:
  """A small thread-safe LRU cache of arrays (dropped when pickled)."""

  def __init__(self, size: int):
    self._size = size
    self._data = collections.OrderedDict()
    self._lock = threading.Lock()

  def get(self, key, make: Callable[[], np.ndarray]) -> np.ndarray:
    if self._size <= 0:
      return make()
    with self._lock:
      if key in self._data:
        self._data.move_to_end(key)
        return self._data[key]
    value = make()
    with self._lock:
      self._data[key] = value
      while len(self._data) > self._size:
        self._data.popitem(last=False)
    return value

  def __getstate__(self):
    return {"size": self._size}

  def __setstate__(self, state):
    self.__init__(state["size"])


class MeshSource:
  """Random-access source of registered meshes with a shared topology.

  Subclasses implement `_read(path)` (file -> [V, 3] float64 vertices in
  mm, validated) and may override `_vertices(record)` and
  `_neutral(record)` for per-mesh processing such as rigid alignment.

  Attributes:
    records: the `MeshRecord`s, in source order.
    faces: [F, 3] int32 triangles shared by every mesh.
    subject_names: subject index -> name.
    expression_names: expression index -> name.
    num_vertices: V.
  """


  def __init__(self, records: Sequence[MeshRecord], *, faces: np.ndarray,
               num_vertices: int, subject_names: Sequence[str],
               expression_names: Sequence[str], label_names: Sequence[str] = (),
               cache_size: int = 64):
    self.records = tuple(records)
    self.faces = np.asarray(faces, np.int32)
    self.num_vertices = int(num_vertices)
    self.subject_names = tuple(subject_names)
    self.expression_names = tuple(expression_names)
    self.label_names = tuple(label_names)
    self._neutral_cache = _LruCache(cache_size)

  def __len__(self) -> int:
    return len(self.records)

  def __repr__(self) -> str:
    return (f"{type(self).__name__}({len(self)} meshes, "
            f"{len(set(r.subject for r in self.records))} subjects, "
            f"V={self.num_vertices})")

  # Hooks ------------------------------------------------------------------

  def _read(self, path: str) -> np.ndarray:
    """Reads one mesh file as [V, 3] float64 mm; each dataset defines it."""
    raise NotImplementedError(
        f"{type(self).__name__} must define _read(path) for its file format")

  def _vertices(self, record: MeshRecord) -> np.ndarray:
    return self._read(record.path)

  def _neutral(self, record: MeshRecord) -> np.ndarray:
    return np.mean([self._read(p) for p in record.neutral], axis=0)

  # Access -----------------------------------------------------------------

  def neutral(self, record: MeshRecord) -> np.ndarray | None:
    """The [V, 3] float64 neutral of `record` (cached), or None."""
    if not record.neutral:
      return None
    key = (record.subject, record.neutral)
    return self._neutral_cache.get(key, lambda: self._neutral(record))

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    index = int(index)
    if index < 0:
      index += len(self)
    if not 0 <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} meshes")
    record = self.records[index]
    vertices = self._vertices(record)
    neutral = self.neutral(record)
    out = {
        "vertices": np.asarray(vertices, np.float32),
        "neutral": (np.zeros((self.num_vertices, 3), np.float32)
                    if neutral is None else np.asarray(neutral, np.float32)),
        "has_neutral": np.asarray(neutral is not None),
        "subject": np.int32(record.subject),
        "expression": np.int32(record.expression),
        "index": np.int32(index),
    }
    for name in self.label_names:
      out[name] = np.int32(record.labels[name])
    return out

  def to_array_source(self) -> pipeline.ArraySource:
    """Reads every mesh once into an in-memory `pipeline.ArraySource`.

    Holds 2 x N x V x 3 float32 values (vertices and neutrals): about
    2.5 GB for all of CoMA, so materialise a split, not everything, on a
    small machine.
    """
    items = [self[i] for i in range(len(self))]
    if not items:
      raise ValueError(f"{type(self).__name__} is empty")
    return pipeline.ArraySource(
        {k: np.stack([it[k] for it in items]) for k in items[0]})


def check_vertices(vertices: np.ndarray, faces: np.ndarray, *,
                   source: str) -> None:
  """The per-file checks of `ops.mesh.validate_mesh` that depend on vertices.

  For a file whose triangles equal a shared topology that was validated
  once (index range, repeated and duplicate faces): only finite
  coordinates and non-zero triangle areas (the same tolerance as
  `validate_mesh`) are left to check. About 0.5 ms for 5023 vertices,
  where the full validation takes about 10 ms.

  Args:
    vertices: [V, 3] coordinates.
    faces: [F, 3] the (already validated) triangles.
    source: the file, quoted in errors.

  Raises:
    MeshError: naming `source` and the problem.
  """
  v = np.asarray(vertices, np.float64)
  finite = np.isfinite(v).all(axis=1)
  if not finite.all():
    bad = np.flatnonzero(~finite)
    raise mesh_ops.MeshError(
        f"mesh from {source}: {bad.size} vertices have non-finite (NaN or "
        f"inf) coordinates, first at vertex {int(bad[0])}")
  if faces.size == 0:
    return
  a = v[faces[:, 0]]
  e1 = v[faces[:, 1]] - a
  e2 = v[faces[:, 2]] - a
  cx = e1[:, 1] * e2[:, 2] - e1[:, 2] * e2[:, 1]
  cy = e1[:, 2] * e2[:, 0] - e1[:, 0] * e2[:, 2]
  cz = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
  extent = max(float((v.max(0) - v.min(0)).max()), 1e-30)
  zero = cx * cx + cy * cy + cz * cz <= (1e-12 * extent ** 2) ** 2
  if zero.any():
    row = int(np.flatnonzero(zero)[0])
    raise mesh_ops.MeshError(
        f"mesh from {source}: {int(zero.sum())} degenerate faces have zero "
        f"area, first face {row} = {faces[row].tolist()}")


def read_checked(path: PathLike, *, scale: float,
                 faces: np.ndarray | None = None,
                 num_vertices: int | None = None,
                 hint: str = "") -> tuple[np.ndarray, np.ndarray]:
  """Reads a mesh file, scales it and validates it.

  With a shared topology (`faces`, validated once by the loader), the file's
  triangles must equal it and only the vertex-dependent checks
  (`check_vertices`) run per file; without, the whole of
  `ops.mesh.validate_mesh`.

  Args:
    path: a .ply / .obj / .wrl file.
    scale: multiplies the coordinates (file units -> mm).
    faces: if given, the file's triangles must equal these (a shared,
      already validated topology).
    num_vertices: if given, the expected vertex count.
    hint: appended to a vertex-count or topology error (e.g. what the
      reader needs).

  Returns:
    vertices [V, 3] float64 (mm) and faces [F, 3] int64.

  Raises:
    MeshError: naming the file and the problem.
  """
  vertices, file_faces = formats.read_mesh(path)
  suffix = f"; {hint}" if hint else ""
  if num_vertices is not None and vertices.shape[0] != num_vertices:
    raise mesh_ops.MeshError(
        f"mesh from {path}: wrong vertex count: expected {num_vertices} "
        f"vertices, got {vertices.shape[0]}{suffix}")
  if faces is None:
    mesh_ops.validate_mesh(vertices, file_faces,
                           expected_num_vertices=num_vertices,
                           source=str(path))
  else:
    if (file_faces.shape != faces.shape
        or not np.array_equal(file_faces, faces)):
      raise mesh_ops.MeshError(
          f"mesh from {path}: its triangles differ from the dataset's shared "
          f"topology ({file_faces.shape[0]} faces vs {faces.shape[0]})"
          f"{suffix}")
    check_vertices(vertices, file_faces, source=str(path))
  return vertices * scale, file_faces
