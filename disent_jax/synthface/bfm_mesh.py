"""The mesh of the BFM world: crop, triangulation, mouth cut, clean-up.

3DDFA's BFM-derived arrays (`synthface.bfm`) have vertices but no
triangles. These pure numpy functions make an oriented disk of them: the
face crop (`face_region`), a Delaunay triangulation with the outline's
bridges peeled off and the lips cut (`triangulate`, `mouth_region`), an oral
cavity closing the lips' gap (`close_mouth`), and the clean-up a decimated
mesh needs (`clean`, `boundary_loops`).
"""

import numpy as np
import scipy.spatial


def face_region(mean: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
  """[V] bool: the face as SynthFace's template covers it.

  An ellipse in the frontal view, cheek to cheek (the jaw landmarks 0 and
  16, plus 4 mm) and chin to forehead (chin landmark 8 less 4 mm up to 0.62
  eye-to-chin distances above the eyes, SynthFace's proportion), on the
  front of the head (in front of the jaw landmarks' depth less 20 mm), so
  ears and neck fall outside.
  """
  lm = mean[landmarks]
  half_w = 0.5 * (lm[16, 0] - lm[0, 0]) + 4.0
  eye_y = lm[36:48, 1].mean()
  bottom = lm[8, 1] - 4.0
  top = eye_y + 0.62 * (eye_y - lm[8, 1])
  cx, cy = 0.5 * (lm[0, 0] + lm[16, 0]), 0.5 * (top + bottom)
  r = ((mean[:, 0] - cx) / half_w) ** 2 + (
      (mean[:, 1] - cy) / (0.5 * (top - bottom))) ** 2
  front = mean[:, 2] > min(lm[0, 2], lm[16, 2]) - 20.0
  return (r <= 1.0) & front


def _edges(faces: np.ndarray) -> np.ndarray:
  return np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]],
                                 faces[:, [2, 0]]]), axis=1)


def _prune_dangling(faces: np.ndarray) -> np.ndarray:
  """Removes, until none is left, triangles with two or three boundary
  edges and triangles at vertices where the boundary pinches (a vertex on
  more than two boundary edges), so that every boundary is a simple loop."""
  while True:
    e, inverse, counts = np.unique(_edges(faces), axis=0,
                                   return_inverse=True, return_counts=True)
    open_edges = counts[inverse.reshape(3, -1)] == 1
    degree = np.bincount(e[counts == 1].ravel(),
                         minlength=int(faces.max()) + 1)
    bad = (open_edges.sum(axis=0) >= 2) | (
        (degree[faces] > 2).any(axis=1) & open_edges.any(axis=0))
    if not bad.any():
      return faces
    faces = faces[~bad]


def clean(faces: np.ndarray, *, max_hole: int = 8) -> np.ndarray:
  """A decimated mesh's faces without folds: triangles on one vertex set
  (a fold pair, or a copy) and then every triangle that shares a directed
  edge with another (a flip) are removed, then `_prune_dangling`, and the
  inner holes of at most `max_hole` vertices this leaves are filled."""
  f = np.asarray(faces, np.int64)
  f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
  _, inverse, counts = np.unique(np.sort(f, axis=1), axis=0,
                                 return_inverse=True, return_counts=True)
  f = f[counts[inverse.ravel()] == 1]
  directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
  _, inverse, counts = np.unique(directed, axis=0, return_inverse=True,
                                 return_counts=True)
  flipped = (counts[inverse.ravel()].reshape(3, -1) > 1).any(axis=0)
  f = _prune_dangling(f[~flipped])
  # The small holes this leaves are closed with fans from a loop vertex.
  directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
  patches = [f]
  for loop in boundary_loops(f)[1:]:
    if len(loop) > max_hole:
      continue
    fan = np.stack([np.full(len(loop) - 2, loop[0]), loop[1:-1], loop[2:]],
                   axis=1)
    if (directed == (int(loop[0]), int(loop[1]))).all(axis=1).any():
      fan = fan[:, [0, 2, 1]]
    patches.append(fan)
  return np.concatenate(patches)


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
  """The boundary loops of a triangle mesh as ordered vertex ids, longest
  first (each boundary vertex on one loop)."""
  e, counts = np.unique(_edges(np.asarray(faces)), axis=0,
                        return_counts=True)
  nxt = {}
  for a, b in e[counts == 1]:
    nxt.setdefault(int(a), []).append(int(b))
    nxt.setdefault(int(b), []).append(int(a))
  loops, seen = [], set()
  for start in nxt:
    if start in seen:
      continue
    loop, prev, cur = [start], None, start
    seen.add(start)
    while True:
      step = [n for n in nxt[cur] if n != prev and n not in seen]
      if not step:
        break
      prev, cur = cur, step[0]
      loop.append(cur)
      seen.add(cur)
    loops.append(np.asarray(loop))
  return sorted(loops, key=len, reverse=True)


def mouth_region(vertices: np.ndarray, landmark_points: np.ndarray
                 ) -> np.ndarray:
  """[V] bool: vertices near the line between the lips, an ellipse around
  the inner-lip landmarks (60-67) 3 mm wider than the mouth and 8 mm high
  in the frontal view."""
  inner = np.asarray(landmark_points)[60:68]
  c = inner.mean(0)
  half_w = 0.5 * (inner[4, 0] - inner[0, 0]) + 3.0
  v = np.asarray(vertices)
  r = ((v[:, 0] - c[0]) / half_w) ** 2 + ((v[:, 1] - c[1]) / 8.0) ** 2
  return (r <= 1.0) & (v[:, 2] > c[2] - 15.0)


def triangulate(vertices: np.ndarray, exp_basis: np.ndarray,
                exp_std: np.ndarray, *, mouth: np.ndarray | None = None,
                max_edge_ratio: float = 4.0,
                max_stretch: float = 2.5) -> np.ndarray:
  """Triangles [F, 3] over a face-shaped point set.

  A Delaunay triangulation of the vertices' (azimuth, elevation) seen from
  a point 90 mm behind the nose tip; then triangles on the outline whose
  longest edge exceeds `max_edge_ratio` times the median edge are peeled
  off (bridges across the outline's concavities; interior triangles stay,
  so no hole opens), and the triangles inside `mouth` that any single
  expression component at +-2 sd stretches by more than `max_stretch` are
  dropped (bridges across the lips, which part when the mouth opens), with
  any triangle left hanging by one edge into that gap. Every
  triangle is wound the same way in the (azimuth, elevation) chart, so the
  normals point away from the head.

  Args:
    vertices: [V, 3] the mean face (mm).
    exp_basis: [3V, K] expression directions; exp_std: [K].
    mouth: [V] bool, where the lips may part (`mouth_region`); None: none.
  """
  v = np.asarray(vertices, np.float64)
  centre = np.array([0.0, 0.0, v[:, 2].max() - 90.0])
  d = v - centre
  az = np.arctan2(d[:, 0], d[:, 2])
  el = np.arctan2(d[:, 1], np.hypot(d[:, 0], d[:, 2]))
  faces = scipy.spatial.Delaunay(np.stack([az, el], 1)).simplices
  faces = faces.astype(np.int64)

  def longest(x, f):
    e = [np.linalg.norm(x[f[:, i]] - x[f[:, (i + 1) % 3]], axis=1)
         for i in range(3)]
    return np.max(e, axis=0)

  limit = max_edge_ratio * np.median(longest(v, faces))
  while True:
    e, inverse, counts = np.unique(_edges(faces), axis=0,
                                   return_inverse=True, return_counts=True)
    on_outline = (counts[inverse.reshape(3, -1)] == 1).any(axis=0)
    peel = on_outline & (longest(v, faces) > limit)
    if not peel.any():
      break
    faces = faces[~peel]
  if mouth is not None:
    rest = longest(v, faces)
    tear = np.zeros(len(faces), bool)
    for k in range(exp_basis.shape[1]):
      for sign in (-2.0, 2.0):
        moved = v + (sign * exp_std[k] * exp_basis[:, k]).reshape(-1, 3)
        tear |= longest(moved, faces) > max_stretch * rest
    faces = faces[~(tear & np.asarray(mouth)[faces].all(axis=1))]
    faces = _prune_dangling(faces)
  # One orientation in the (azimuth, elevation) chart, which is the
  # surface's own; then all flipped together if it points inwards.
  uv = np.stack([az, el], 1)
  a, b, c = uv[faces[:, 0]], uv[faces[:, 1]], uv[faces[:, 2]]
  signed = (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]
  faces[signed < 0] = faces[signed < 0][:, [0, 2, 1]]
  n = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
  if np.einsum("fi,fi->f", n, v[faces].mean(1) - centre).sum() < 0:
    faces = faces[:, [0, 2, 1]]
  return faces.astype(np.int32)


def close_mouth(vertices: np.ndarray, basis_rows: list[np.ndarray],
                faces: np.ndarray, *, depth_mm: float = 12.0
                ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray,
                           np.ndarray]:
  """Closes each inner boundary loop (the lips' gap) with an oral cavity.

  Adds one vertex per loop, `depth_mm` behind the loop's mean, whose basis
  rows are the mean of the loop's (so the model stays linear and the
  cavity follows the lips), and fans triangles from it to the loop.

  Args:
    vertices: [V, 3]; basis_rows: bases [3V, K] to extend; faces: [F, 3].

  Returns:
    (vertices [V', 3], extended bases, faces [F', 3], cavity [V'] bool).
  """
  v = np.asarray(vertices, np.float64)
  loops = boundary_loops(faces)[1:]  # The longest is the outline.
  directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]],
                             faces[:, [2, 0]]])
  new_v, new_rows, new_f = [v], [[] for _ in basis_rows], [faces]
  cavity = [np.zeros(len(v), bool)]
  nv = len(v)
  for loop in loops:
    centre = v[loop].mean(0) - [0.0, 0.0, depth_mm]
    new_v.append(centre[None])
    cavity.append(np.ones(1, bool))
    for out, b in zip(new_rows, basis_rows):
      rows = b.reshape(-1, 3, b.shape[-1])[loop].mean(0)
      out.append(rows)
    fan = np.stack([loop, np.roll(loop, -1), np.full(len(loop), nv)], 1)
    # Wind the fan against the lip triangle on its first edge, so each
    # directed edge appears once (the orientation stays consistent).
    a, b = int(loop[0]), int(loop[1])
    if (directed == (a, b)).all(axis=1).any():
      fan = fan[:, [1, 0, 2]]
    new_f.append(fan)
    nv += 1
  bases = [np.concatenate([b] + [r.reshape(3, -1) for r in rows])
           for b, rows in zip(basis_rows, new_rows)]
  return (np.concatenate(new_v).astype(np.float32), bases,
          np.concatenate(new_f).astype(np.int32), np.concatenate(cavity))
