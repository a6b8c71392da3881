"""CoMA-style mesh hierarchies: decimation, sampling matrices, a disk cache.

* Quadric-error decimation to a target vertex count (edge collapses from the
  `fast-simplification` package, replayed onto the original vertices so each
  coarse mesh keeps a subset of the fine vertices at their original
  positions).
* Down-sampling by vertex selection, up-sampling by barycentric coordinates
  in the nearest coarse triangle.
* `build_hierarchy` repeats the decimation level by level and caches the
  result on disk as plain arrays; `hierarchy_operators` gives each level's
  Chebyshev operator.

Sampling matrices are stored with a fixed number of non-zeros per row as a
`Sampling` (indices [V_out, k], weights [V_out, k]): k = 1 for down-sampling,
k = 3 for up-sampling. `apply_sampling` is a gather and a weighted sum.
"""

import dataclasses
import hashlib
import math
import pathlib
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
import scipy.spatial

from disent_jax.ops import graph
from disent_jax.ops.mesh import validate_mesh


class Decimation(NamedTuple):
  """A coarse mesh made of a subset of the fine mesh's vertices.

  Attributes:
    kept: [M] int, sorted indices of the fine vertices that survive.
    faces: [F_c, 3] int, coarse triangles indexing the coarse vertex list
      (i.e. positions in `kept`).
  """
  kept: np.ndarray
  faces: np.ndarray


class Sampling(NamedTuple):
  """A sparse [V_out, V_in] sampling matrix with k non-zeros per row.

  Attributes:
    indices: [V_out, k] int32 input vertex indices.
    weights: [V_out, k] float32 weights (each row sums to 1).
  """
  indices: np.ndarray
  weights: np.ndarray


def _find(parent: np.ndarray, i: int) -> int:
  root = i
  while parent[root] != root:
    root = parent[root]
  while parent[i] != root:
    parent[i], i = root, parent[i]
  return root


def decimate(vertices: np.ndarray, faces: np.ndarray, *, num_vertices: int,
             aggressiveness: float = 7.0) -> Decimation:
  """Quadric-error decimation to exactly `num_vertices` kept vertices.

  Runs the quadric edge-collapse simplifier of `fast-simplification` and
  replays its first V - M collapses on the connectivity only: every removed
  vertex is merged into the vertex it collapsed onto, triangles that lose a
  corner are dropped, and the survivors keep their original positions (a
  CoMA-style subset of the fine vertices).

  Args:
    vertices: [V, 3] fine vertices.
    faces: [F, 3] fine triangles.
    num_vertices: M, the target number of kept vertices (M <= V).
    aggressiveness: the simplifier's `agg` (lower: better quality, slower).

  Returns:
    The `Decimation` (kept indices, coarse faces).
  """
  import fast_simplification  # pylint: disable=g-import-not-at-top

  vertices = np.asarray(vertices, dtype=np.float64)
  faces = np.asarray(faces, dtype=np.int64)
  v = vertices.shape[0]
  if not 3 <= num_vertices <= v:
    raise ValueError(f"num_vertices must be in [3, {v}], got {num_vertices}")
  need = v - num_vertices
  collapses = np.zeros((0, 2), dtype=np.int64)
  if need > 0:
    target = max(int(1.8 * num_vertices) - 4, 4)
    agg = aggressiveness
    for _ in range(8):
      _, _, collapses = fast_simplification.simplify(
          vertices, faces, target_count=min(target, faces.shape[0]),
          agg=agg, return_collapses=True)
      if collapses.shape[0] >= need:
        break
      target = max(target // 2, 1)
      agg += 2.0
    else:
      raise ValueError(
          f"quadric decimation reached only {v - collapses.shape[0]} "
          f"vertices, not {num_vertices}")
  parent = np.arange(v)
  for keep, remove in collapses[:need]:
    parent[_find(parent, int(remove))] = _find(parent, int(keep))
  root = np.array([_find(parent, i) for i in range(v)])
  kept = np.flatnonzero(root == np.arange(v))
  if kept.shape[0] != num_vertices:
    raise ValueError(f"decimation kept {kept.shape[0]} vertices, expected "
                     f"{num_vertices}")
  new_index = np.full(v, -1, dtype=np.int64)
  new_index[kept] = np.arange(kept.shape[0])
  coarse = new_index[root[faces]]
  ok = ((coarse[:, 0] != coarse[:, 1]) & (coarse[:, 1] != coarse[:, 2])
        & (coarse[:, 0] != coarse[:, 2]))
  coarse = coarse[ok]
  _, first = np.unique(np.sort(coarse, axis=1), axis=0, return_index=True)
  coarse = coarse[np.sort(first)]
  return Decimation(kept=kept.astype(np.int64), faces=coarse.astype(np.int64))


def _closest_barycentrics(p: np.ndarray, a: np.ndarray, b: np.ndarray,
                          c: np.ndarray) -> np.ndarray:
  """Barycentrics of the closest point on triangles (a, b, c) to points p.

  Ericson, Real-Time Collision Detection, 5.1.5; all arrays broadcast to
  [..., 3]; returns [..., 3].
  """
  ab, ac, ap = b - a, c - a, p - a
  d1 = np.sum(ab * ap, -1)
  d2 = np.sum(ac * ap, -1)
  bp = p - b
  d3 = np.sum(ab * bp, -1)
  d4 = np.sum(ac * bp, -1)
  cp = p - c
  d5 = np.sum(ab * cp, -1)
  d6 = np.sum(ac * cp, -1)
  va = d3 * d6 - d5 * d4
  vb = d5 * d2 - d1 * d6
  vc = d1 * d4 - d3 * d2

  def safe_div(num, den):
    return num / np.where(np.abs(den) > 1e-30, den, 1.0)

  denom = va + vb + vc
  v_in = safe_div(vb, denom)
  w_in = safe_div(vc, denom)
  bary = np.stack([1.0 - v_in - w_in, v_in, w_in], -1)

  def put(mask, u, v, w):
    new = np.stack(np.broadcast_arrays(u, v, w), -1)
    return np.where(mask[..., None], new, bary)

  zero = np.zeros_like(d1)
  one = np.ones_like(d1)
  # Lowest priority first: later assignments win, as in Ericson's order.
  t = safe_div(d4 - d3, (d4 - d3) + (d5 - d6))
  bary = put((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), zero, 1 - t, t)
  t = safe_div(d2, d2 - d6)
  bary = put((vb <= 0) & (d2 >= 0) & (d6 <= 0), 1 - t, zero, t)
  bary = put((d6 >= 0) & (d5 <= d6), zero, zero, one)
  t = safe_div(d1, d1 - d3)
  bary = put((vc <= 0) & (d1 >= 0) & (d3 <= 0), 1 - t, t, zero)
  bary = put((d3 >= 0) & (d4 <= d3), zero, one, zero)
  bary = put((d1 <= 0) & (d2 <= 0), one, zero, zero)
  return np.clip(bary, 0.0, 1.0)


def _closest_among(points: np.ndarray, tri: np.ndarray, cand: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Closest triangle among candidates [P, k]: (index, barycentrics, dist^2)."""
  t = tri[cand]  # [P, k, 3, 3]
  p = points[:, None, :]
  bary = _closest_barycentrics(p, t[:, :, 0], t[:, :, 1], t[:, :, 2])
  closest = np.einsum("pkc,pkcd->pkd", bary, t)
  dist = np.sum((closest - p) ** 2, axis=-1)
  best = np.argmin(dist, axis=1)
  rows = np.arange(points.shape[0])
  return cand[rows, best], bary[rows, best], dist[rows, best]


def downsampling(kept: np.ndarray) -> Sampling:
  """Down-sampling by vertex selection: row m picks fine vertex kept[m]."""
  kept = np.asarray(kept)
  return Sampling(indices=kept.astype(np.int32)[:, None],
                  weights=np.ones((kept.shape[0], 1), dtype=np.float32))


def upsampling(vertices: np.ndarray, kept: np.ndarray,
               coarse_faces: np.ndarray) -> Sampling:
  """Up-sampling by barycentric placement in the nearest coarse triangle.

  A kept vertex copies its coarse value; every other fine vertex is
  projected onto the closest triangle of the coarse mesh (the kept vertices
  at their fine positions, `coarse_faces`) and interpolates its corners'
  values with the barycentrics of that closest point.

  Args:
    vertices: [V, 3] fine vertex positions.
    kept: [M] indices of the coarse vertices in the fine mesh.
    coarse_faces: [F_c, 3] coarse triangles (indices into `kept`).

  Returns:
    A `Sampling` with k = 3 (indices into the coarse vertices).
  """
  vertices = np.asarray(vertices, dtype=np.float64)
  kept = np.asarray(kept)
  coarse_faces = np.asarray(coarse_faces)
  v = vertices.shape[0]
  if coarse_faces.ndim != 2 or coarse_faces.shape[0] == 0:
    raise ValueError(
        f"upsampling: the coarse mesh of {kept.shape[0]} vertices has no "
        "triangles; decimate less (fewer levels or smaller factors)")
  tri = vertices[kept][coarse_faces]  # [F_c, 3, 3]
  num_tri = tri.shape[0]
  centroid = tri.mean(axis=1)
  radius = np.linalg.norm(tri - centroid[:, None], axis=-1).max()
  # Candidates: the triangles with the k nearest centroids. A triangle t
  # outside them is at least |p - c_k| - radius away, so the candidate
  # answer is exact when it is closer than that; for the other points every
  # triangle whose centroid lies within best distance + radius is checked.
  k = min(num_tri, 16)
  tree = scipy.spatial.cKDTree(centroid)
  _, cand = tree.query(vertices, k=k)
  cand = cand.reshape(v, k)
  kth = np.linalg.norm(vertices - centroid[cand[:, -1]], axis=-1)
  best_tri, best_bary, best_dist = _closest_among(vertices, tri, cand)
  unsure = np.flatnonzero(
      (np.sqrt(best_dist) > kth - radius) & (k < num_tri))
  if unsure.shape[0]:
    balls = tree.query_ball_point(
        vertices[unsure], r=np.sqrt(best_dist[unsure]) + radius + 1e-12)
    lengths = np.array([len(b) for b in balls])
    owner = np.repeat(np.arange(unsure.shape[0]), lengths)
    flat = np.concatenate([np.asarray(b, dtype=np.int64) for b in balls])
    t = tri[flat]
    p = vertices[unsure][owner]
    bary = _closest_barycentrics(p, t[:, 0], t[:, 1], t[:, 2])
    dist = np.sum((np.einsum("nc,ncd->nd", bary, t) - p) ** 2, axis=-1)
    order = np.lexsort((dist, owner))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pick = order[starts]
    best_tri[unsure] = flat[pick]
    best_bary[unsure] = bary[pick]
  indices = coarse_faces[best_tri].astype(np.int32)
  weights = best_bary
  weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
  indices[kept] = np.arange(kept.shape[0])[:, None]
  weights[kept] = np.array([1.0, 0.0, 0.0])
  return Sampling(indices=indices, weights=weights.astype(np.float32))


def sampling_matrix(sampling: Sampling, *, num_in: int) -> sp.csr_matrix:
  """The [V_out, V_in] scipy matrix of a `Sampling`."""
  idx = np.asarray(sampling.indices)
  w = np.asarray(sampling.weights, dtype=np.float64)
  rows = np.repeat(np.arange(idx.shape[0]), idx.shape[1])
  return sp.csr_matrix((w.ravel(), (rows, idx.ravel())),
                       shape=(idx.shape[0], num_in))


def apply_sampling(x: jax.Array, sampling: Sampling) -> jax.Array:
  """Applies a sampling matrix: out[.., o, :] = sum_k w[o, k] x[.., i[o, k], :].

  Args:
    x: [..., V_in, C].
    sampling: a `Sampling` with indices/weights [V_out, k].

  Returns:
    [..., V_out, C].
  """
  indices = jnp.asarray(sampling.indices)
  weights = jnp.asarray(sampling.weights, dtype=x.dtype)
  if indices.shape[1] == 1:
    return x[..., indices[:, 0], :]
  gathered = x[..., indices, :]  # [..., V_out, k, C]
  return jnp.sum(gathered * weights[:, :, None], axis=-2)


_CACHE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class MeshHierarchy:
  """A CoMA-style mesh hierarchy; level 0 is the input mesh.

  Attributes:
    vertices: L+1 arrays [V_l, 3] (coarse levels: the kept fine vertices).
    faces: L+1 arrays [F_l, 3].
    down: L `Sampling`s, level l -> l+1 ([V_{l+1}, 1]).
    up: L `Sampling`s, level l+1 -> l ([V_l, 3]).
  """
  vertices: tuple[np.ndarray, ...]
  faces: tuple[np.ndarray, ...]
  down: tuple[Sampling, ...]
  up: tuple[Sampling, ...]

  @property
  def num_vertices(self) -> tuple[int, ...]:
    return tuple(int(v.shape[0]) for v in self.vertices)

  def to_arrays(self) -> dict[str, np.ndarray]:
    """Flat dict of arrays (the on-disk layout)."""
    out = {"num_levels": np.asarray(len(self.down))}
    for l, (v, f) in enumerate(zip(self.vertices, self.faces)):
      out[f"vertices_{l}"] = v
      out[f"faces_{l}"] = f
    for l, (d, u) in enumerate(zip(self.down, self.up)):
      out[f"down_indices_{l}"] = d.indices
      out[f"down_weights_{l}"] = d.weights
      out[f"up_indices_{l}"] = u.indices
      out[f"up_weights_{l}"] = u.weights
    return out

  @classmethod
  def from_arrays(cls, arrays) -> "MeshHierarchy":
    """Inverse of `to_arrays`."""
    n = int(arrays["num_levels"])
    return cls(
        vertices=tuple(np.asarray(arrays[f"vertices_{l}"])
                       for l in range(n + 1)),
        faces=tuple(np.asarray(arrays[f"faces_{l}"]) for l in range(n + 1)),
        down=tuple(Sampling(np.asarray(arrays[f"down_indices_{l}"]),
                            np.asarray(arrays[f"down_weights_{l}"]))
                   for l in range(n)),
        up=tuple(Sampling(np.asarray(arrays[f"up_indices_{l}"]),
                          np.asarray(arrays[f"up_weights_{l}"]))
                 for l in range(n)))


def content_key(vertices: np.ndarray, faces: np.ndarray, settings: str
                ) -> str:
  """A hex digest of a mesh's arrays and a settings string (cache keys)."""
  h = hashlib.sha256()
  h.update(settings.encode())
  h.update(np.ascontiguousarray(vertices, dtype=np.float64).tobytes())
  h.update(np.ascontiguousarray(faces, dtype=np.int64).tobytes())
  return h.hexdigest()[:24]


def hierarchy_cache_key(vertices: np.ndarray, faces: np.ndarray, *,
                        factors: Sequence[int],
                        aggressiveness: float = 7.0) -> str:
  """A hex digest of the mesh and the hierarchy settings."""
  return content_key(vertices, faces,
                     f"v{_CACHE_VERSION};{list(factors)};{aggressiveness}")


def save_hierarchy(hierarchy: MeshHierarchy, path: str | pathlib.Path) -> None:
  """Writes the hierarchy as an uncompressed .npz of plain arrays."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(path.name + ".tmp.npz")
  np.savez(tmp, **hierarchy.to_arrays())
  tmp.replace(path)


def load_hierarchy(path: str | pathlib.Path) -> MeshHierarchy:
  """Reads a hierarchy written by `save_hierarchy`."""
  with np.load(path) as data:
    return MeshHierarchy.from_arrays(dict(data))


def build_hierarchy(vertices: np.ndarray, faces: np.ndarray, *,
                    factors: Sequence[int] = (4, 4, 4, 4),
                    aggressiveness: float = 7.0,
                    cache_dir: str | pathlib.Path | None = None
                    ) -> MeshHierarchy:
  """Decimates repeatedly (V_{l+1} = ceil(V_l / factor_l)), CoMA style.

  With `cache_dir`, the result is stored as
  `<cache_dir>/mesh_hierarchy_<key>.npz` (`hierarchy_cache_key`) and
  re-read on the next call with the same mesh and settings.

  Args:
    vertices: [V, 3] template vertices.
    faces: [F, 3] template faces.
    factors: down-sampling factor per level, fine to coarse.
    aggressiveness: passed to `decimate`.
    cache_dir: optional cache directory.

  Returns:
    The `MeshHierarchy`.
  """
  vertices = np.asarray(vertices, dtype=np.float64)
  faces = np.asarray(faces, dtype=np.int64)
  validate_mesh(vertices, faces)
  path = None
  if cache_dir is not None:
    key = hierarchy_cache_key(vertices, faces, factors=factors,
                              aggressiveness=aggressiveness)
    path = pathlib.Path(cache_dir) / f"mesh_hierarchy_{key}.npz"
    if path.exists():
      return load_hierarchy(path)
  verts, tris, down, up = [vertices], [faces], [], []
  for factor in factors:
    if factor < 1:
      raise ValueError(f"factors must be >= 1, got {list(factors)}")
    target = math.ceil(verts[-1].shape[0] / factor)
    dec = decimate(verts[-1], tris[-1], num_vertices=target,
                   aggressiveness=aggressiveness)
    down.append(downsampling(dec.kept))
    up.append(upsampling(verts[-1], dec.kept, dec.faces))
    verts.append(verts[-1][dec.kept])
    tris.append(dec.faces)
  hierarchy = MeshHierarchy(vertices=tuple(verts), faces=tuple(tris),
                            down=tuple(down), up=tuple(up))
  if path is not None:
    save_hierarchy(hierarchy, path)
  return hierarchy


def hierarchy_operators(hierarchy: MeshHierarchy, *,
                        kind: graph.LaplacianKind = "symmetric",
                        lambda_max: float | None = 2.0,
                        format: graph.Format = "auto"  # pylint: disable=redefined-builtin
                        ) -> tuple[graph.GraphOperator, ...]:
  """The Chebyshev operator L~ of every level (CoMA defaults).

  Args:
    hierarchy: a `MeshHierarchy`.
    kind: Laplacian kind (see `graph.laplacian`).
    lambda_max: spectral bound (2.0: CoMA / PyG "sym"); None estimates it.
    format: storage format per level ("auto" picks by size).

  Returns:
    One `GraphOperator` per level, fine to coarse.
  """
  return tuple(
      graph.chebyshev_operator(f, num_vertices=v.shape[0], kind=kind,
                               lambda_max=lambda_max, format=format)
      for v, f in zip(hierarchy.vertices, hierarchy.faces))
