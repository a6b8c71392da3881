"""Data for paper 002: mesh sources by dataset, and same/other-identity pairs.

Every example the method trains on carries the face `vertices` [V, 3] (mm),
its ground-truth `neutral` (used only by the +ne-gt setting and by the
evaluation), its `subject`, and two partners drawn deterministically from
(seed, index): `same_vertices`, another face of the same subject (the real
pair of eq. 6 and the pre-training positives), and `other_vertices`, a face
of another subject (the pre-training negatives).
"""

import dataclasses
from typing import Any, Mapping

import ml_collections
import numpy as np

from disent_jax.data import pipeline
from disent_jax.data import readers

_KEYS = ("vertices", "neutral", "subject", "expression")


def subject_labels(source: Any) -> np.ndarray:
  """The subject of every example, [N] int, read without loading meshes
  where the source allows it."""
  if hasattr(source, "subjects"):
    return np.asarray(source.subjects, np.int64)
  if hasattr(source, "records"):
    return np.asarray([r.subject for r in source.records], np.int64)
  return np.asarray([source[i]["subject"] for i in range(len(source))],
                    np.int64)


class PairedSource:
  """Adds a same-subject and an other-subject partner to every example."""

  def __init__(self, base: Any, *, seed: int):
    self._base = base
    self._seed = seed
    self.subjects = subject_labels(base)
    if len(self.subjects) == 0:
      raise ValueError("PairedSource: the source is empty")
    self._by_subject = {s: np.flatnonzero(self.subjects == s)
                        for s in np.unique(self.subjects)}
    if len(self._by_subject) < 2:
      raise ValueError("PairedSource needs at least two subjects, got "
                       f"{sorted(self._by_subject)}")

  def __len__(self) -> int:
    return len(self._base)

  def partners(self, index: int) -> tuple[int, int]:
    """(same-subject index, other-subject index) of example `index`.

    The same-subject partner is another example of the subject, or the
    example itself when its subject has only one.
    """
    rng = np.random.default_rng([self._seed, int(index)])
    subject = self.subjects[index]
    same = self._by_subject[subject]
    if len(same) > 1:
      j = int(same[rng.integers(len(same) - 1)])
      j = j if j != index else int(same[-1])
    else:
      j = int(index)
    other = rng.integers(len(self.subjects) - len(same))
    others = np.flatnonzero(self.subjects != subject)
    return j, int(others[other])

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    example = dict(self._base[index])
    j, k = self.partners(index)
    example["same_vertices"] = self._base[j]["vertices"]
    example["other_vertices"] = self._base[k]["vertices"]
    return example


@dataclasses.dataclass(frozen=True)
class Sources:
  """Train and test sources and the shared topology."""
  train: Any
  test: Any
  faces: np.ndarray
  num_subjects_train: int


def _synthface(d: ml_collections.ConfigDict) -> tuple[Any, Any, np.ndarray]:
  """SynthFace mesh sequences: generated in memory, or read from a TFDS
  build (`python -m disent_jax.data.build`) when `data.tfds_name` is set."""
  # Imported lazily: SynthFace is the default but not needed for real data.
  from disent_jax.data import onthefly  # pylint: disable=g-import-not-at-top
  if d.get("tfds_name"):
    from disent_jax.data import synthface_builders  # pylint: disable=g-import-not-at-top
    if not d.get("data_dir"):
      raise ValueError("config data.data_dir: set it to the --data_dir the "
                       f"dataset {d.tfds_name} was built into")
    _, config_name = synthface_builders.parse_name(d.tfds_name)
    resolution = onthefly.CONFIGS["synthface_meshes"][config_name].resolution

    def load(split):
      src = synthface_builders.load_source(d.tfds_name, d.data_dir,
                                           f"{d.protocol}_{split}")
      rows = [src[i] for i in range(len(src))]
      return pipeline.ArraySource(
          {k: np.stack([np.asarray(r[k]) for r in rows]) for k in _KEYS})
  else:
    gen = onthefly.mesh_generator(onthefly.MeshConfig(
        resolution=d.resolution, num_subjects=d.num_subjects,
        num_frames=d.frames, num_test_subjects=d.num_test_subjects,
        test_expression=d.test_expression, seed=d.seed))
    resolution = d.resolution

    def load(split):
      arrays = onthefly.materialize(gen, f"{d.protocol}_{split}")
      return pipeline.ArraySource({k: arrays[k] for k in _KEYS})
  faces = onthefly.topology(resolution)["faces"]
  return load("train"), load("test"), np.asarray(faces, np.int32)


def make_sources(config: ml_collections.ConfigDict) -> Sources:
  """The train/test sources of `config.data.name` (paper splits)."""
  d = config.data
  if d.name == "synthface":
    train, test, faces = _synthface(d)
  elif d.name in ("coma", "bu3dfe", "facescape"):
    if not d.get("root"):
      raise ValueError(f"config data.root: set it to the {d.name} directory "
                       f"(--config.data.root=/path/to/{d.name})")
    load = {"coma": readers.load_coma, "bu3dfe": readers.load_bu3dfe,
            "facescape": readers.load_facescape}[d.name]
    kwargs: Mapping[str, Any] = dict(d.get("reader_kwargs", {}) or {})
    if d.get("cache_dir"):  # Parse the files once, then memory-mapped arrays.
      train, test = (readers.load_cached(d.name, d.root, split=split,
                                         cache_dir=d.cache_dir,
                                         reader_kwargs=kwargs)
                     for split in ("train", "test"))
    else:
      train = load(d.root, split="train", **kwargs)
      test = load(d.root, split="test", **kwargs)
    faces = np.asarray(train.faces, np.int32)
  else:
    raise ValueError(f"config data.name={d.name!r}: expected one of "
                     "synthface, coma, bu3dfe, facescape")
  return Sources(train=train, test=test, faces=faces,
                 num_subjects_train=len(np.unique(subject_labels(train))))


def normalization(source: Any, *, max_examples: int = 2000, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray, float]:
  """The data mean face and the normalisation of network coordinates.

  Networks see x = (X - center) / scale, with `center` the mean face's
  centroid and `scale` its RMS radius, so a face spans about [-2, 2]
  (configs may fix the scale instead, `data.unit_mm`).

  Args:
    source: training examples with "vertices" [V, 3] (mm).
    max_examples: estimate from at most this many (chosen with `seed`).
    seed: which examples.

  Returns:
    (mean face [V, 3] mm, center [3] mm, scale mm).
  """
  n = len(source)
  rng = np.random.default_rng(seed)
  idx = rng.permutation(n)[:max_examples] if n > max_examples else range(n)
  total = None
  for count, i in enumerate(idx, start=1):
    v = np.asarray(source[int(i)]["vertices"], np.float64)
    total = v if total is None else total + v
  mean = total / count
  center = mean.mean(axis=0)
  scale = float(np.sqrt(np.mean(np.sum((mean - center) ** 2, axis=-1))))
  return (mean.astype(np.float32), center.astype(np.float32),
          max(scale, 1e-6))


def expression_offsets(source: Any, mean: np.ndarray) -> np.ndarray:
  """Per-expression average offset of the faces from the mean face.

  The public code's no-GT target for the expression branch: the average of
  all training faces with an expression label minus the mean face.

  Args:
    source: examples with "vertices" [V, 3] (mm) and "expression" (int >= 0).
    mean: [V, 3] the mean face (mm).

  Returns:
    [L, V, 3] float32 offsets in mm, row e for expression label e (L = the
    largest label + 1; labels absent from the source get a zero row).
  """
  sums: dict[int, np.ndarray] = {}
  counts: dict[int, int] = {}
  for i in range(len(source)):
    example = source[i]
    label = int(np.asarray(example["expression"]))
    if label < 0:
      raise ValueError(f"expression_offsets: example {i} has expression "
                       f"label {label}; expected a non-negative index")
    v = np.asarray(example["vertices"], np.float64)
    sums[label] = sums.get(label, 0.0) + v
    counts[label] = counts.get(label, 0) + 1
  if not sums:
    raise ValueError("expression_offsets: the source is empty")
  table = np.zeros((max(sums) + 1,) + np.shape(mean), np.float64)
  for label, total in sums.items():
    table[label] = total / counts[label] - mean
  return table.astype(np.float32)
