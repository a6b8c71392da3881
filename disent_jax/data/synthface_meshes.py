"""SynthFace mesh sequences in the layout of CoMA, as a random-access source.

Subjects x the 12 CoMA expressions x F frames; each sequence goes neutral ->
apex -> neutral with a per-(subject, expression) apex intensity. Examples are
generated in batches by the jit-compiled world and held in memory (the
default 1k-vertex world is ~12 KB a mesh).

Splits (`protocol`):
  * "identity": the last `num_test_subjects` subjects are the test set
    (unseen identities; paper 002's FaceScape/BU-3DFE setting);
  * "interpolation": over the ordered stream (subject, expression, frame),
    position i is test when i % 100 < 10 (CoMA);
  * "extrapolation": `test_expression` is test (CoMA).

Every example has "vertices" [V, 3] and its exact ground-truth "neutral"
[V, 3] (mm), "subject", "expression", "frame" and "index".
"""

import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.synthface import expression as expr
from disent_jax.synthface import world as world_lib

Protocol = Literal["identity", "interpolation", "extrapolation"]
Split = Literal["train", "test", "all"]

EXPRESSIONS = expr.COMA_EXPRESSIONS
_INTENSITY_STREAM = 7


def apex_intensity(seed: int, subject: int, expression: int) -> float:
  """The apex weight of a subject's expression sequence, in [0.7, 1.0]."""
  rng = np.random.default_rng([seed, _INTENSITY_STREAM, subject, expression])
  return float(rng.uniform(0.7, 1.0))


@functools.lru_cache(maxsize=8)
def _sequence_fn(resolution: str, frames: int):
  w = world_lib.world(resolution)

  @jax.jit
  def sequence(params, apex):
    weights = expr.sequence_weights(apex, frames)
    meshes = jax.vmap(w.mesh, in_axes=(None, 0))(params, weights)
    return meshes, w.neutral(params)

  return sequence


def _select(subjects, expressions, frames, *, split: Split,
            protocol: Protocol, num_subjects: int, num_test_subjects: int,
            test_expression: str) -> np.ndarray:
  if split == "all":
    return np.ones(len(subjects), bool)
  if protocol == "identity":
    test = subjects >= num_subjects - num_test_subjects
  elif protocol == "interpolation":
    test = (np.arange(len(subjects)) % 100) < 10
  elif protocol == "extrapolation":
    test = expressions == EXPRESSIONS.index(test_expression)
  else:
    raise ValueError(f"protocol must be identity, interpolation or "
                     f"extrapolation, got {protocol!r}")
  del frames
  return test if split == "test" else ~test


class SynthFaceMeshes:
  """A random-access source of SynthFace expression sequences."""

  def __init__(self, *, resolution: str = "1k", num_subjects: int = 24,
               frames: int = 20, seed: int = 0, split: Split = "train",
               protocol: Protocol = "identity", num_test_subjects: int = 4,
               test_expression: str = "bareteeth"):
    """Generates the split's meshes.

    Args:
      resolution: SynthFace template ("1k", "2.5k", "5k").
      num_subjects: subjects 0..S-1 of world `seed`.
      frames: frames per sequence (>= 2; the first and last are neutral).
      seed: the world seed (identities and intensities).
      split: "train", "test" or "all".
      protocol: see the module docstring.
      num_test_subjects: test subjects of the "identity" protocol.
      test_expression: held-out expression of "extrapolation".

    Raises:
      ValueError: on an unknown split, protocol or expression, or sizes that
        leave a split empty.
    """
    if split not in ("train", "test", "all"):
      raise ValueError(f"split must be train, test or all, got {split!r}")
    if test_expression not in EXPRESSIONS:
      raise ValueError(f"test_expression {test_expression!r} is not one of "
                       f"{EXPRESSIONS}")
    if (protocol == "identity" and split != "all" and
        not 0 < num_test_subjects < num_subjects):
      raise ValueError(f"num_test_subjects={num_test_subjects} must be in "
                       f"(0, num_subjects={num_subjects})")
    if frames < 2:
      raise ValueError(f"frames must be >= 2, got {frames}")
    w = world_lib.world(resolution)
    self.faces = np.asarray(w.faces, np.int32)
    self.num_vertices = w.num_vertices
    self.expression_names = EXPRESSIONS
    grid = np.stack(np.meshgrid(np.arange(num_subjects),
                                np.arange(len(EXPRESSIONS)),
                                np.arange(frames), indexing="ij"), -1)
    grid = grid.reshape(-1, 3)
    keep = _select(grid[:, 0], grid[:, 1], grid[:, 2], split=split,
                   protocol=protocol, num_subjects=num_subjects,
                   num_test_subjects=num_test_subjects,
                   test_expression=test_expression)
    if not keep.any():
      raise ValueError(f"split {split!r} of protocol {protocol!r} is empty")
    self.subjects = grid[keep, 0].astype(np.int32)
    self.expressions = grid[keep, 1].astype(np.int32)
    self.frames = grid[keep, 2].astype(np.int32)
    self.indices = np.flatnonzero(keep).astype(np.int32)

    sequence = _sequence_fn(resolution, frames)
    vertices = np.zeros((len(self.subjects), w.num_vertices, 3), np.float32)
    neutrals = {}
    position = {tuple(k): i for i, k in enumerate(
        zip(self.subjects, self.expressions, self.frames))}
    for s in np.unique(self.subjects):
      params = w.identity(seed, int(s))
      for e in np.unique(self.expressions[self.subjects == s]):
        apex = jnp.asarray(expr.one_hot(EXPRESSIONS[e],
                                        apex_intensity(seed, int(s), int(e))))
        meshes, neutral = sequence(params, apex)
        meshes = np.asarray(meshes)
        neutrals[int(s)] = np.asarray(neutral)
        for f in range(frames):
          i = position.get((s, e, f))
          if i is not None:
            vertices[i] = meshes[f]
    self._vertices = vertices
    self._neutrals = neutrals

  def __len__(self) -> int:
    return len(self.subjects)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} meshes")
    s = int(self.subjects[index])
    return {"vertices": self._vertices[index],
            "neutral": self._neutrals[s],
            "has_neutral": np.asarray(True),
            "subject": np.int32(s),
            "expression": self.expressions[index],
            "frame": self.frames[index],
            "index": self.indices[index]}


def mesh_source(**kwargs) -> SynthFaceMeshes:
  """`SynthFaceMeshes(**kwargs)` (see its constructor)."""
  return SynthFaceMeshes(**kwargs)
