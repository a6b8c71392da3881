"""Mesh Laplacians: cotangent Laplace-Beltrami and the uniform Laplacian.

* The cotangent stiffness matrix (host side, scipy), optionally
  row-normalised, and a pure-JAX application of it that is differentiable in
  the vertices.
* Lumped (barycentric) vertex areas, for the mass matrix.
* The uniform (umbrella) Laplacian I - D^-1 A as a `graph.GraphOperator`.

Normalisation, which sets the scale of any smoothness weight:
  * `cotangent_laplacian_matrix(..., normalization="none")`: the stiffness
    matrix, L[i, i] = sum_j (cot a_ij + cot b_ij) / 2 (sqrt(12) = 3.46 at an
    interior vertex of an equilateral valence-6 mesh); it is invariant to
    scaling the mesh, so L X has the units of X.
  * `normalization="row"`: D^-1 L with D = diag(L), so L[i, i] = 1 and each
    row sums to zero: the Laplacian coordinate is x_i minus the cotangent-
    weighted mean of the neighbours, like the uniform Laplacian.
  * `uniform_laplacian_operator`: I - D^-1 A (unit diagonal, rows sum to 0).
"""

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from disent_jax.ops import graph

Normalization = Literal["none", "row"]


def _check_vertices(vertices, faces):
  if vertices.ndim < 2 or vertices.shape[-1] != 3:
    raise ValueError(f"vertices must be [..., V, 3], got {vertices.shape}")
  if faces.ndim != 2 or faces.shape[-1] != 3:
    raise ValueError(f"faces must be [F, 3], got {faces.shape}")


def cotangent_weights(vertices: jax.Array, faces: jax.Array) -> jax.Array:
  """Cotangent of each triangle corner angle.

  Args:
    vertices: [..., V, 3].
    faces: [F, 3] int.

  Returns:
    [..., F, 3]: entry c is cot of the angle at corner c, which weights the
    opposite edge (faces[:, c+1], faces[:, c+2]). Degenerate triangles give
    finite values (0 for a zero-area triangle).
  """
  vertices = jnp.asarray(vertices)
  faces = jnp.asarray(faces)
  _check_vertices(vertices, faces)
  tri = vertices[..., faces, :]  # [..., F, 3, 3]
  cots = []
  for c in range(3):
    a = tri[..., c, :]
    e1 = tri[..., (c + 1) % 3, :] - a
    e2 = tri[..., (c + 2) % 3, :] - a
    dot = jnp.sum(e1 * e2, axis=-1)
    c = jnp.cross(e1, e2)
    cross = jnp.sqrt(jnp.maximum(jnp.sum(c * c, axis=-1), 1e-30))
    safe = jnp.where(cross > 1e-12, cross, 1.0)
    cots.append(jnp.where(cross > 1e-12, dot / safe, 0.0))
  return jnp.stack(cots, axis=-1)


def cotangent_laplacian_matrix(vertices: np.ndarray,
                               faces: np.ndarray, *,
                               normalization: Normalization = "none"
                               ) -> sp.csr_matrix:
  """The cotangent Laplace-Beltrami stiffness matrix (host side).

  L[i, j] = -(cot a_ij + cot b_ij) / 2 for an edge (i, j) with opposite
  angles a_ij, b_ij; L[i, i] = -sum_j L[i, j]. L is symmetric positive
  semi-definite with constants in its null space; with the lumped areas M
  (`vertex_areas`), M^-1 L X approximates -Delta X = -2 H n.

  Args:
    vertices: [V, 3].
    faces: [F, 3] int.
    normalization: "none" (the stiffness matrix) or "row" (D^-1 L with
      D = diag(L): unit diagonal, rows summing to zero; rows of isolated
      vertices stay zero).

  Returns:
    [V, V] float64 CSR matrix.
  """
  if normalization not in ("none", "row"):
    raise ValueError(f"normalization must be 'none' or 'row', got "
                     f"{normalization!r}")
  vertices = np.asarray(vertices, dtype=np.float64)
  faces = np.asarray(faces, dtype=np.int64)
  cot = _cotangents_f64(vertices, faces)
  v = vertices.shape[0]
  rows, cols, vals = [], [], []
  for c in range(3):
    i = faces[:, (c + 1) % 3]
    j = faces[:, (c + 2) % 3]
    w = 0.5 * cot[:, c]
    rows += [i, j]
    cols += [j, i]
    vals += [-w, -w]
  off = sp.csr_matrix((np.concatenate(vals),
                       (np.concatenate(rows), np.concatenate(cols))),
                      shape=(v, v))
  stiffness = sp.csr_matrix(
      off - sp.diags(np.asarray(off.sum(axis=1)).ravel()))
  if normalization == "none":
    return stiffness
  diag = stiffness.diagonal()
  inv = np.divide(1.0, diag, out=np.zeros_like(diag), where=diag != 0)
  return sp.csr_matrix(sp.diags(inv) @ stiffness)


def _cotangents_f64(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
  tri = vertices[faces]
  out = np.zeros(faces.shape, dtype=np.float64)
  for c in range(3):
    e1 = tri[:, (c + 1) % 3] - tri[:, c]
    e2 = tri[:, (c + 2) % 3] - tri[:, c]
    cross = np.linalg.norm(np.cross(e1, e2), axis=1)
    dot = np.sum(e1 * e2, axis=1)
    out[:, c] = np.where(cross > 1e-12, dot / np.where(cross > 1e-12, cross,
                                                       1.0), 0.0)
  return out


def vertex_areas(vertices: jax.Array, faces: jax.Array, *,
                 num_vertices: int | None = None) -> jax.Array:
  """Lumped (barycentric) vertex areas: a third of each incident face area.

  Args:
    vertices: [..., V, 3].
    faces: [F, 3] int.
    num_vertices: V (defaults to vertices.shape[-2]).

  Returns:
    [..., V] areas.
  """
  vertices = jnp.asarray(vertices)
  faces = jnp.asarray(faces)
  _check_vertices(vertices, faces)
  v = vertices.shape[-2] if num_vertices is None else num_vertices
  tri = vertices[..., faces, :]
  cross = jnp.cross(tri[..., 1, :] - tri[..., 0, :],
                    tri[..., 2, :] - tri[..., 0, :])
  area = 0.5 * jnp.sqrt(jnp.maximum(jnp.sum(cross * cross, axis=-1), 1e-30))
  per_corner = jnp.repeat(area[..., None] / 3.0, 3, axis=-1)  # [..., F, 3]
  flat = jnp.moveaxis(per_corner.reshape(per_corner.shape[:-2] + (-1,)), -1, 0)
  out = jax.ops.segment_sum(flat, faces.reshape(-1), num_segments=v)
  return jnp.moveaxis(out, 0, -1)


def apply_cotangent_laplacian(x: jax.Array, vertices: jax.Array,
                              faces: jax.Array) -> jax.Array:
  """L(vertices) x with the cotangent stiffness matrix, in pure JAX.

  Differentiable in both `x` and `vertices` (the weights are recomputed from
  `vertices`), batched over leading dims. Equals
  `cotangent_laplacian_matrix(vertices, faces) @ x`.

  Args:
    x: [..., V, C] per-vertex values (often `vertices` itself).
    vertices: [..., V, 3] the mesh that defines the weights.
    faces: [F, 3] int.

  Returns:
    [..., V, C].
  """
  x = jnp.asarray(x)
  vertices = jnp.asarray(vertices)
  faces = jnp.asarray(faces)
  _check_vertices(vertices, faces)
  if x.shape[-2] != vertices.shape[-2]:
    raise ValueError(f"x has {x.shape[-2]} vertices, the mesh has "
                     f"{vertices.shape[-2]}")
  v = x.shape[-2]
  cot = cotangent_weights(vertices, faces)  # [..., F, 3]
  x = jnp.broadcast_to(
      x, jnp.broadcast_shapes(x.shape, cot.shape[:-2] + x.shape[-2:]))
  contributions, targets = [], []
  for c in range(3):
    i = faces[:, (c + 1) % 3]
    j = faces[:, (c + 2) % 3]
    w = 0.5 * cot[..., c][..., None]  # [..., F, 1]
    diff = x[..., i, :] - x[..., j, :]  # [..., F, C]
    contributions += [w * diff, -w * diff]
    targets += [i, j]
  msg = jnp.concatenate(contributions, axis=-2)
  idx = jnp.concatenate(targets)
  msg = jnp.moveaxis(msg, -2, 0)
  summed = jax.ops.segment_sum(msg, idx, num_segments=v)
  return jnp.moveaxis(summed, 0, -2)


def uniform_laplacian_operator(faces: np.ndarray, *, num_vertices: int,
                               format: graph.Format = "auto"  # pylint: disable=redefined-builtin
                               ) -> graph.GraphOperator:
  """The uniform (umbrella) Laplacian x_i - mean_{j in N(i)} x_j.

  This is I - D^-1 A on the edge graph, the operator of paper 003's
  smoothness term.

  Args:
    faces: [F, 3] int.
    num_vertices: V.
    format: `GraphOperator` storage format.

  Returns:
    A (non-symmetric) `GraphOperator`.
  """
  adj = graph.adjacency_from_faces(faces, num_vertices=num_vertices)
  return graph.graph_operator(graph.laplacian(adj, kind="random_walk"),
                              format=format)
