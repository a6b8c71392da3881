"""Triangle-mesh validation: `validate_mesh` and `MeshError`.

`validate_mesh` checks a mesh read from anywhere (a reader, a user array, a
cache) and raises `MeshError` naming the source and the first problem. The
other mesh operators live beside it: `ops.laplacian` (Laplace-Beltrami and
uniform Laplacians) and `ops.hierarchy` (decimation, sampling matrices and
CoMA-style hierarchies); smoothness energies are losses
(`disent_jax.losses.geometry`).
"""

import numpy as np


class MeshError(ValueError):
  """A mesh is malformed; the message names the source and the problem."""


def _first(mask: np.ndarray) -> int:
  return int(np.flatnonzero(mask)[0])


def validate_mesh(vertices: np.ndarray, faces: np.ndarray, *,
                  expected_num_vertices: int | None = None,
                  source: str | None = None) -> None:
  """Checks a triangle mesh and raises `MeshError` on the first problem.

  Checks, in order: shapes ([V, 3] vertices, [F, 3] integer faces), the
  expected vertex count, finite coordinates, face indices in [0, V),
  degenerate faces (a repeated vertex index, or zero area) and duplicate
  faces (the same vertex set twice, in any order or winding).

  Args:
    vertices: [V, 3] coordinates.
    faces: [F, 3] vertex indices.
    expected_num_vertices: if given, V must equal it.
    source: where the mesh came from (e.g. a file path), quoted in errors.

  Raises:
    MeshError: naming `source` and the problem.
  """
  where = f"mesh from {source}" if source is not None else "mesh"

  def fail(problem: str):
    raise MeshError(f"{where}: {problem}")

  vertices = np.asarray(vertices)
  faces = np.asarray(faces)
  if vertices.ndim != 2 or vertices.shape[1] != 3:
    fail(f"vertices must have shape [V, 3], got {vertices.shape}")
  if not np.issubdtype(vertices.dtype, np.number):
    fail(f"vertices must be numeric, got dtype {vertices.dtype}")
  if faces.ndim != 2 or faces.shape[1] != 3:
    fail(f"faces must have shape [F, 3], got {faces.shape}")
  if faces.size and not np.issubdtype(faces.dtype, np.integer):
    fail(f"faces must hold integer vertex indices, got dtype {faces.dtype}")
  num_vertices = vertices.shape[0]
  if (expected_num_vertices is not None
      and num_vertices != expected_num_vertices):
    fail(f"wrong vertex count: expected {expected_num_vertices} vertices, "
         f"got {num_vertices}")
  finite = np.isfinite(vertices).all(axis=1)
  if not finite.all():
    bad = int((~finite).sum())
    fail(f"{bad} vertices have non-finite (NaN or inf) coordinates, first "
         f"at vertex {_first(~finite)}")
  if faces.size == 0:
    return
  out_of_range = (faces < 0) | (faces >= num_vertices)
  if out_of_range.any():
    row = _first(out_of_range.any(axis=1))
    fail(f"{int(out_of_range.any(axis=1).sum())} faces have vertex indices "
         f"out of range [0, {num_vertices}), first face {row} = "
         f"{faces[row].tolist()}")
  repeated = ((faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2])
              | (faces[:, 0] == faces[:, 2]))
  if repeated.any():
    row = _first(repeated)
    fail(f"{int(repeated.sum())} degenerate faces repeat a vertex index, "
         f"first face {row} = {faces[row].tolist()}")
  v = vertices.astype(np.float64)
  tri = v[faces]
  double_area = np.linalg.norm(
      np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
  extent = float(np.ptp(v, axis=0).max()) if num_vertices else 0.0
  zero = double_area <= 1e-12 * max(extent, 1e-30) ** 2
  if zero.any():
    row = _first(zero)
    fail(f"{int(zero.sum())} degenerate faces have zero area, first face "
         f"{row} = {faces[row].tolist()}")
  keys = np.sort(faces, axis=1)
  _, first_index, counts = np.unique(keys, axis=0, return_index=True,
                                     return_counts=True)
  if (counts > 1).any():
    dup = np.sort(first_index[counts > 1])
    row = int(dup[0])
    fail(f"{int((counts - 1).sum())} duplicate faces, first face {row} = "
         f"{faces[row].tolist()}")
