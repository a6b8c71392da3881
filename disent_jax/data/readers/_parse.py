"""Helpers shared by the mesh file parsers (`formats`, `ply`)."""

import functools
import os
import pathlib
from typing import Callable, TypeVar

import numpy as np

from disent_jax.ops.mesh import MeshError

PathLike = str | os.PathLike
T = TypeVar("T")


def check_exists(path: pathlib.Path) -> None:
  if not path.is_file():
    raise FileNotFoundError(f"mesh file not found: {path}")


def fail(path: pathlib.Path, problem: str) -> MeshError:
  return MeshError(f"mesh from {path}: {problem}")


def with_file_context(read: Callable[[PathLike], T]
                      ) -> Callable[[PathLike], T]:
  """Adds the file to an exception that is not about the file's content.

  `MeshError` (the file is malformed) and `FileNotFoundError` propagate as
  they are; any other exception (an OSError, MemoryError, an interpreter
  error) keeps its type and gains a note naming the file, so it is never
  reported as a bad file.
  """

  @functools.wraps(read)
  def wrapped(path: PathLike) -> T:
    try:
      return read(path)
    except (MeshError, FileNotFoundError):
      raise
    except Exception as e:  # pylint: disable=broad-except
      e.add_note(f"while reading the mesh file {path} (an error of the "
                 "reader or the system, not a verdict on the file)")
      raise

  return wrapped


def polygons_to_triangles(index: np.ndarray, path: pathlib.Path,
                           what: str) -> np.ndarray:
  """Fan-triangulates a flat index list whose polygons end with -1."""
  if index.size == 0:
    return np.zeros((0, 3), np.int64)
  if index[-1] != -1:
    index = np.concatenate([index, [-1]])
  ends = np.flatnonzero(index == -1)
  starts = np.concatenate([[0], ends[:-1] + 1])
  sizes = ends - starts
  if (sizes < 3).any():
    bad = int(np.flatnonzero(sizes < 3)[0])
    raise fail(path, f"{what}: polygon {bad} has {int(sizes[bad])} "
                      "vertices, expected at least 3")
  if (sizes == 3).all():
    return np.stack([index[starts], index[starts + 1], index[starts + 2]],
                    axis=1)
  tris = []
  for s, n in zip(starts, sizes):
    poly = index[s:s + n]
    for k in range(1, n - 1):
      tris.append((poly[0], poly[k], poly[k + 1]))
  return np.asarray(tris, np.int64)


def is_number(token: str) -> bool:
  try:
    float(token)
  except ValueError:
    return False
  return True
