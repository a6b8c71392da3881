"""Paper 000's data: SynthFace images with 3DMM-fit pseudo ground truth.

The paper trains on CelebA with the outputs of a 3DMM fitting pipeline as
supervision (§4): the fitted shape, expression and identity coefficients,
normals rendered from the fitted shape, least-squares SH lighting and the
fitted face mask. Here the world's 3DMM (`onthefly.world_morphable`) plays
that role on SynthFace: each image's true mesh is fitted by least squares
with coefficient noise, its pose is perturbed, the fitted shape is rendered
for normals and mask, and the SH lighting is fitted to the image under the
fitted normals and texture. The exact maps and factors are kept for
evaluation only (`EVAL_KEYS`).

Subjects [0, num_subjects) train; the next `num_test_subjects` are held
out. Example i of subject s is SynthFace example s * images_per_subject + i,
so the two splits share no subject and no example. The arrays are written
once to an npz cache keyed by the config.
"""

import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import pathlib
import zipfile
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from disent_jax.data import onthefly
from disent_jax.data import pipeline
from disent_jax.nets import align
from disent_jax.ops import camera
from disent_jax.ops import sh_lighting
from disent_jax.synthface import albedo as alb
from disent_jax.synthface import morphable
from disent_jax.synthface import render as rnd
from disent_jax.synthface import sampling
from disent_jax.synthface import world as world_lib
from disent_jax.train import compile_cache

# The pseudo ground truth a training batch carries.
TRAIN_KEYS = ("image", "fit_rotation", "fit_identity", "fit_expression",
              "fit_shape", "fit_normals", "fit_mask", "fit_sh",
              "fit_five_points", "near_frontal")
# The exact answers, for evaluation only.
EVAL_KEYS = ("normals", "albedo", "shading", "face_mask", "sh", "pose",
             "subject", "expression", "identity", "gt_near_frontal")
_FIT_STREAM = 13  # fold_in stream of the fit noise (apart from the world's).
_CHUNK = 16
_SH_RIDGE = 0.01
_PRIOR_SEED = 7
_CACHE_VERSION = 2


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """The data of a config (`config.data`).

  Attributes:
    resolution: the SynthFace template ("1k", "2.5k", ...).
    render_size: the renderer's image size (one of `render.SIZES`).
    size: the training image size; render_size / size is an integer.
    num_subjects, num_test_subjects: subjects of the two splits.
    images_per_subject: SynthFace examples per subject.
    occluder_prob, neutral_prob: SynthFace sampling.
    fit_noise: std of the 3DMM coefficient noise (component std units).
    pose_noise_deg: std of the fitted Euler angles' noise.
    near_frontal_deg: |yaw| and |pitch| limit of a near-frontal image (A7).
    seed: the world seed.
    cache_dir: where the arrays are cached; "" is the user cache,
      "off" disables it.
  """
  resolution: str = "1k"
  render_size: int = 64
  size: int = 32
  num_subjects: int = 120
  num_test_subjects: int = 20
  images_per_subject: int = 12
  occluder_prob: float = 0.0
  neutral_prob: float = 0.1
  fit_noise: float = 0.1
  pose_noise_deg: float = 3.0
  near_frontal_deg: float = 15.0
  seed: int = 0
  cache_dir: str = ""

  def validate(self) -> "DataConfig":
    """Raises ValueError naming the first bad key."""
    def bad(key, expected):
      raise ValueError(f"config data.{key}={getattr(self, key)!r}: "
                       f"expected {expected}")
    if self.render_size not in rnd.SIZES:
      bad("render_size", f"one of {rnd.SIZES}")
    if (self.size <= 0 or self.render_size % self.size
        or self.size % 8):
      bad("size", f"a multiple of 8 dividing render_size={self.render_size}")
    for key in ("num_subjects", "num_test_subjects", "images_per_subject"):
      if getattr(self, key) < 1:
        bad(key, "a positive integer")
    for key in ("occluder_prob", "neutral_prob"):
      if not 0.0 <= getattr(self, key) <= 1.0:
        bad(key, "a probability in [0, 1]")
    for key in ("fit_noise", "pose_noise_deg", "near_frontal_deg"):
      if getattr(self, key) < 0:
        bad(key, "a non-negative number")
    return self

  @classmethod
  def from_config(cls, cfg: ml_collections.ConfigDict) -> "DataConfig":
    """Reads `config.data`; unknown keys are errors."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in cfg.items():
      if key not in names:
        raise ValueError(f"config data.{key}: unknown; expected one of "
                         f"{sorted(names)}")
      values[key] = value
    return cls(**values).validate()

  def split_subjects(self, split: str) -> np.ndarray:
    """Subject ids [n] of "train" or "test"."""
    if split == "train":
      return np.arange(self.num_subjects)
    if split == "test":
      return self.num_subjects + np.arange(self.num_test_subjects)
    raise ValueError(f"split={split!r}: expected train or test")


@dataclasses.dataclass
class Sources:
  """Both splits as random-access sources and as arrays."""
  train: pipeline.ArraySource
  test: pipeline.ArraySource
  train_arrays: dict[str, np.ndarray]
  test_arrays: dict[str, np.ndarray]
  num_vertices: int
  faces: np.ndarray


def downsample_images(x: Any, *, size: int) -> np.ndarray:
  """Box-average [N, R, R, C] (or [R, R, C]) images to size x size."""
  x = np.asarray(x, np.float32)
  r = x.shape[-2]
  if r % size:
    raise ValueError(f"cannot downsample {r} px to {size} px")
  f = r // size
  shape = x.shape[:-3] + (size, f, size, f, x.shape[-1])
  return x.reshape(shape).mean(axis=(-4, -2))


def _box(x: jax.Array, factor: int) -> jax.Array:
  """[R, R, C] -> [R/f, R/f, C] box average."""
  r, _, c = x.shape
  s = r // factor
  return x.reshape(s, factor, s, factor, c).mean(axis=(1, 3))


def _normals_down(n: jax.Array, factor: int) -> jax.Array:
  m = _box(n, factor)
  norm = jnp.linalg.norm(m, axis=-1, keepdims=True)
  return jnp.where(norm > 1e-6, m / jnp.maximum(norm, 1e-12), 0.0)


def _mask_down(m: jax.Array, factor: int) -> jax.Array:
  return (_box(m.astype(jnp.float32)[..., None], factor) >= 0.5).astype(
      jnp.float32)


@functools.cache
def sh_prior() -> np.ndarray:
  """[3, 9] the mean of SynthFace's SH lighting (4096 draws, fixed key)."""
  with jax.ensure_compile_time_eval():
    keys = jax.random.split(jax.random.PRNGKey(_PRIOR_SEED), 4096)
    mean = jax.vmap(sampling.sample_sh)(keys).mean(0)
  return np.asarray(mean, np.float32)


def fit_sh(image: jax.Array, albedo: jax.Array, normals: jax.Array,
           mask: jax.Array, *, prior: Any = None,
           ridge: float = _SH_RIDGE) -> jax.Array:
  """MAP fit of the SH lighting of an image under given albedo and normals.

  Per channel c, minimises the mean over the masked pixels p of
  (a_pc sum_k Y_k(n_p) l_ck - x_pc)^2 plus ridge ||l_c - prior_c||^2, with
  Y the discofacegan-convention basis, so `sh_lighting.irradiance(n, l)` is
  sum_k Y_k(n) l_ck. Normals of one face span a hemisphere, where Y_0, Y_z
  and Y_{3z^2-1} are nearly collinear; the prior pulls that ambiguity to
  the mean light (a 3DMM fit's lighting prior) instead of to large
  cancelling coefficients.

  Args:
    image, albedo, normals: [S, S, 3].
    mask: [S, S, 1] pixels used.
    prior: [3, 9] (or [27]) prior mean; None is `sh_prior()`.
    ridge: weight of the prior, relative to the mean squared residual.

  Returns:
    [27] the coefficients [3, 9] flattened.
  """
  prior = jnp.asarray(sh_prior() if prior is None else prior,
                      jnp.float32).reshape(3, 9)
  basis = sh_lighting.sh_basis(normals)  # [S, S, 9]
  design = albedo[..., :, None] * basis[..., None, :]  # [S, S, 3, 9]
  w = mask[..., None] / jnp.maximum(jnp.sum(mask), 1.0)
  hi = jax.lax.Precision.HIGHEST
  residual = image - jnp.einsum("hwck,ck->hwc", design, prior, precision=hi)
  gram = jnp.einsum("hwck,hwcj->ckj", design * w, design, precision=hi)
  rhs = jnp.einsum("hwck,hwc->ck", design * w, residual, precision=hi)
  gram = gram + ridge * jnp.eye(9)[None]
  delta = jnp.linalg.solve(gram, rhs[..., None])[..., 0]
  return (prior + delta).reshape(27)


def _example(index: jax.Array, subject: jax.Array, cfg: DataConfig,
             mm: morphable.Morphable) -> dict[str, jax.Array]:
  """One example's image, pseudo ground truth and exact answers."""
  w = world_lib.world(cfg.resolution)
  r, factor = cfg.render_size, cfg.render_size // cfg.size
  ex = w.example(cfg.seed, index, subject, size=r,
                 occluder_prob=cfg.occluder_prob,
                 neutral_prob=cfg.neutral_prob)
  f = w.example_factors(cfg.seed, index, occluder_prob=cfg.occluder_prob,
                        neutral_prob=cfg.neutral_prob)
  key = jax.random.fold_in(sampling.example_key(cfg.seed, index),
                           _FIT_STREAM)
  k_shape, k_pose, k_tex = jax.random.split(key, 3)
  # The 3DMM fit of the shape and of the texture (the paper's pipeline).
  id_c, exp_c = morphable.fit(mm, ex["vertices"], noise=cfg.fit_noise,
                              key=k_shape)
  shape = morphable.reconstruct(mm, id_c, exp_c)
  tex = morphable.fit_texture(mm, alb.albedo(ex["identity"], w.template),
                              noise=cfg.fit_noise, key=k_tex)
  fit_albedo = jnp.clip(morphable.reconstruct_texture(mm, tex), 0.0, 1.0)
  pose_fit = ex["pose"] + math.radians(cfg.pose_noise_deg) * (
      jax.random.normal(k_pose, (3,)))
  fit_render = rnd.render(
      shape, fit_albedo, mm.faces, landmarks=mm.landmarks,
      num_face_faces=mm.faces.shape[0], pose=pose_fit,
      sh=ex["sh"].reshape(3, 9), background=jnp.zeros((r, r, 3)),
      centre=rnd.framing(morphable.reconstruct(mm, id_c,
                                               jnp.zeros_like(exp_c))),
      size=r, scale_factor=f["scale"], shift=f["shift"])

  image = _box(ex["image"], factor)
  fit_mask = _mask_down(fit_render["face_mask"], factor)
  fit_normals = _normals_down(fit_render["normals"], factor) * fit_mask
  fit_albedo_map = _box(fit_render["albedo"], factor)
  face_mask = _mask_down(ex["face_mask"], factor)
  lim = math.radians(cfg.near_frontal_deg)
  # The fitted face's five alignment points (what a landmark detector gives
  # the paper's pipeline) in training-image pixels, pixel centres at
  # integers (the convention of `nets.align`): render pixel i covers
  # [i, i + 1).
  five = align.five_points_from_ibug68(fit_render["landmarks_2d"])
  fit_five_points = five / factor - 0.5

  def frontal(p):
    return ((jnp.abs(p[1]) <= lim) & (jnp.abs(p[0]) <= lim)).astype(
        jnp.float32)

  return {
      "image": image,
      "fit_rotation": camera.euler_to_rotation(pose_fit),
      "fit_identity": id_c,
      "fit_expression": exp_c,
      "fit_shape": shape.reshape(-1),
      "fit_normals": fit_normals,
      "fit_mask": fit_mask,
      "fit_sh": fit_sh(image, fit_albedo_map, fit_normals, fit_mask),
      "fit_five_points": fit_five_points,
      "near_frontal": frontal(pose_fit),
      "normals": _normals_down(ex["normals"], factor) * face_mask,
      "albedo": _box(ex["albedo"], factor),
      "shading": _box(ex["shading"], factor),
      "face_mask": face_mask,
      "sh": ex["sh"],
      "pose": ex["pose"],
      "subject": ex["subject"],
      "expression": ex["expression"],
      "identity": ex["identity"],
      "gt_near_frontal": frontal(ex["pose"]),
  }


@functools.lru_cache(maxsize=8)
def _batched_example(cfg: DataConfig):
  """jit(vmap(_example)) of a config (its sizes and counts ignored)."""
  mm = onthefly.world_morphable(cfg.resolution)
  return jax.jit(jax.vmap(functools.partial(_example, cfg=cfg, mm=mm)))


def generate(cfg: DataConfig, split: str, *, progress: bool = True
             ) -> dict[str, np.ndarray]:
  """Every example of a split as arrays [N, ...] (float32; subject int32)."""
  subjects = cfg.split_subjects(split)
  ipp = cfg.images_per_subject
  subject = np.repeat(subjects, ipp).astype(np.int32)
  index = (subject * ipp + np.tile(np.arange(ipp), len(subjects))).astype(
      np.int32)
  fn = _batched_example(dataclasses.replace(
      cfg, num_subjects=1, num_test_subjects=1, images_per_subject=1,
      cache_dir=""))
  n = len(index)
  pad = (-n) % _CHUNK
  index_p = np.concatenate([index, np.repeat(index[-1:], pad)])
  subject_p = np.concatenate([subject, np.repeat(subject[-1:], pad)])
  parts = []
  bar = tqdm.tqdm(total=n, desc=f"tensor_aae data ({split})", unit="img",
                  disable=not progress, leave=False)
  for start in range(0, len(index_p), _CHUNK):
    out = fn(index_p[start:start + _CHUNK], subject_p[start:start + _CHUNK])
    parts.append(jax.device_get(out))
    bar.update(min(_CHUNK, n - start))
  bar.close()
  arrays = {k: np.concatenate([p[k] for p in parts])[:n] for k in parts[0]}
  for k, v in arrays.items():
    arrays[k] = v.astype(np.int32 if k == "subject" else np.float32)
  bad = [k for k, v in arrays.items() if not np.all(np.isfinite(v))]
  if bad:
    raise FloatingPointError(f"tensor_aae data ({split}): non-finite "
                             f"values in {bad}")
  return arrays


def _cache_path(cfg: DataConfig, split: str) -> pathlib.Path | None:
  if cfg.cache_dir.lower() == "off":
    return None
  base = (pathlib.Path(cfg.cache_dir).expanduser() if cfg.cache_dir
          else compile_cache.user_cache_dir() / "tensor_aae")
  desc = dataclasses.asdict(cfg)
  desc.pop("cache_dir")
  desc["version"] = _CACHE_VERSION
  digest = hashlib.sha256(json.dumps(desc, sort_keys=True).encode())
  return base / f"{split}-{digest.hexdigest()[:16]}.npz"


def _read_cache(path: pathlib.Path) -> dict[str, np.ndarray] | None:
  if not path.exists():
    return None
  try:
    with np.load(path) as z:
      arrays = {k: z[k] for k in z.files}
  except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
    logging.warning("tensor_aae data cache %s is unreadable (%s); "
                    "generating it again", path, e)
    return None
  missing = set(TRAIN_KEYS + EVAL_KEYS) - set(arrays)
  if missing:
    logging.warning("tensor_aae data cache %s lacks %s; generating it "
                    "again", path, sorted(missing))
    return None
  return arrays


def _write_cache(path: pathlib.Path, arrays: Mapping[str, np.ndarray]
                 ) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
  with open(tmp, "wb") as fh:
    np.savez(fh, **arrays)
  os.replace(tmp, path)


def load_split(cfg: DataConfig, split: str, *, progress: bool = True
               ) -> dict[str, np.ndarray]:
  """A split's arrays, from the cache when it has them."""
  path = _cache_path(cfg, split)
  if path is not None:
    arrays = _read_cache(path)
    if arrays is not None:
      return arrays
  arrays = generate(cfg, split, progress=progress)
  if path is not None:
    _write_cache(path, arrays)
  return arrays


def make_sources(cfg: DataConfig, *, progress: bool = True) -> Sources:
  """Both splits of a validated `DataConfig`."""
  cfg.validate()
  train = load_split(cfg, "train", progress=progress)
  test = load_split(cfg, "test", progress=progress)
  mm = onthefly.world_morphable(cfg.resolution)
  return Sources(train=pipeline.ArraySource(train),
                 test=pipeline.ArraySource(test), train_arrays=train,
                 test_arrays=test, num_vertices=int(mm.mean.shape[0]),
                 faces=np.asarray(mm.faces))
