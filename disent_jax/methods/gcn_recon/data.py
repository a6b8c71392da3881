"""Paper 003's data on SynthFace (spec §6.1).

The 300W-LP / CelebA mix becomes SynthFace images (`synthface_images`,
with its 3DMM fits `mm_identity`, `mm_expression` as the labelled set's
pseudo ground truth) split by subject: subjects [0, num_subjects) train,
the next `num_test_subjects` are held out. Labelling is per subject (spec
§6.1's faithful setting: 300W-LP and CelebA share no identity): the first
`labelled_fraction` of the training subjects are "300W-LP", the rest
"CelebA", whose fits are never read. Training batches hold P subjects ×
K images (`GroupedSource`), which the center loss needs. The exact shapes
(`vertices`) are kept for evaluation only.
"""

import dataclasses
from typing import Any, Mapping

import jax
import ml_collections
import numpy as np
import tqdm

from disent_jax.data import onthefly
from disent_jax.synthface import world as world_lib

TRAIN_KEYS = ("image", "face_mask", "landmarks_2d", "subject", "labelled",
              "mm_identity", "mm_expression")
EVAL_KEYS = ("vertices", "pose", "sh", "near_frontal")


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """`config.data`; see the module docstring."""
  resolution: str = "1k"
  size: int = 64
  num_subjects: int = 40
  num_test_subjects: int = 8
  images_per_subject: int = 8
  labelled_fraction: float = 0.2
  occluder_prob: float = 0.3
  fit_noise: float = 0.1
  seed: int = 0

  @classmethod
  def from_config(cls, cfg: ml_collections.ConfigDict) -> "DataConfig":
    names = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(cfg.keys()) - names)
    if bad:
      raise ValueError(f"config data.{bad[0]}: unknown; expected one of "
                       f"{sorted(names)}")
    out = cls(**dict(cfg))
    if out.images_per_subject < 2:
      raise ValueError("config data.images_per_subject: the center loss "
                       f"needs >= 2, got {out.images_per_subject}")
    if not 0.0 <= out.labelled_fraction <= 1.0:
      raise ValueError("config data.labelled_fraction: expected [0, 1], got "
                       f"{out.labelled_fraction}")
    return out


def generate(cfg: DataConfig, *, progress: bool = True
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """(train, test) arrays [N, ...] of every image of both splits."""
  total = cfg.num_subjects + cfg.num_test_subjects
  image_cfg = onthefly.ImageConfig(
      resolution=cfg.resolution, size=cfg.size, num_subjects=total,
      images_per_subject=cfg.images_per_subject, labelled_fraction=0.0,
      fit_noise=cfg.fit_noise, occluder_prob=cfg.occluder_prob,
      seed=cfg.seed)
  gen = onthefly.image_generator(image_cfg, "synthface_images/gcn_recon")
  w = world_lib.world(cfg.resolution)
  rows = []
  for c in tqdm.tqdm(range(-(-gen.num_examples // onthefly.CHUNK)),
                     desc="gcn_recon data", disable=not progress,
                     leave=False):
    rows += gen.chunk(c)
  rows = rows[:gen.num_examples]
  arrays = {k: np.stack([r[k] for r in rows])
            for k in TRAIN_KEYS + EVAL_KEYS if k not in
            ("labelled", "vertices")}
  arrays["image"] = _float_image(arrays["image"])
  arrays["face_mask"] = np.asarray(arrays["face_mask"], np.float32).reshape(
      arrays["image"].shape[:-1])
  ids = np.stack([r["identity"] for r in rows])
  weights = np.stack([r["expression"] for r in rows])
  mesh = jax.jit(jax.vmap(w.mesh))
  arrays["vertices"] = np.concatenate([
      np.asarray(mesh(ids[i:i + 64], weights[i:i + 64]))
      for i in range(0, len(ids), 64)])
  n_lab = int(round(cfg.labelled_fraction * cfg.num_subjects))
  arrays["labelled"] = (arrays["subject"] < n_lab).astype(np.float32)
  train = arrays["subject"] < cfg.num_subjects
  split = lambda m: {k: v[m] for k, v in arrays.items()}
  return split(train), split(~train)


def _float_image(x: np.ndarray) -> np.ndarray:
  if x.dtype == np.uint8:
    return x.astype(np.float32) / 255.0
  return np.asarray(x, np.float32)


class GroupedSource:
  """Random access to groups of K images of one subject ([K, ...] arrays).

  Item j is subject `subjects[j % S]`'s images, K of them drawn without
  replacement by (seed, j); a batch of P items is P subjects × K images.
  """

  def __init__(self, arrays: Mapping[str, np.ndarray], *, k: int, seed: int,
               keys: tuple[str, ...] = TRAIN_KEYS, epoch_size: int = 0):
    self._arrays = {key: arrays[key] for key in keys}
    subject = np.asarray(arrays["subject"])
    self._subjects = np.unique(subject)
    self._rows = [np.flatnonzero(subject == s) for s in self._subjects]
    small = min(len(r) for r in self._rows)
    if small < k:
      raise ValueError(f"GroupedSource: K={k} images per subject, but a "
                       f"subject has {small}")
    self._k, self._seed = k, seed
    self._len = epoch_size or len(self._subjects) * max(1, small // k)

  def __len__(self) -> int:
    return self._len

  def __getitem__(self, j: int) -> dict[str, np.ndarray]:
    rows = self._rows[j % len(self._subjects)]
    rng = np.random.default_rng([self._seed, j])
    pick = np.sort(rng.choice(rows, self._k, replace=False))
    return {key: v[pick] for key, v in self._arrays.items()}


def flatten_groups(batch: Mapping[str, Any]) -> dict[str, Any]:
  """[P, K, ...] -> [P * K, ...] for every array of a batch."""
  return {k: v.reshape((-1,) + v.shape[2:]) for k, v in batch.items()}
