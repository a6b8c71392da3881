"""The MICC Florence protocol on held-out SynthFace subjects (spec §4.1, §6.1).

Each subject, never a training or test subject of the image splits, is
rendered in three views (yaw −30°, 0°, +30°; pitch = roll = 0; neutral
expression) under two conditions:

  * cooperative: ambient-dominant, mildly frontal light, no occluder, the
    nominal framing (MICC's cooperative videos);
  * indoor: SynthFace's in-the-wild lights (`sampling.sample_sh`),
    occluders with probability 0.3 and the camera jitter.

The subject's "scan" is its exact neutral face on a denser template
(`scan_resolution`), as MICC's scans are denser than the reconstructions.
A method's prediction is the per-vertex mean of its three canonical
shapes; the error is `metrics.alignment.point_to_plane_error` (scaled ICP,
then point-to-plane distances of the scan points within 95 mm of the
scan's nose tip). Reported per condition as in paper Table 1: the mean
over subjects of each subject's mean distance, and the std over subjects;
plus the single-view errors (Fig. 5's setting), averaged over the views.
"""

import dataclasses
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.metrics import alignment
from disent_jax.ops import sh_lighting
from disent_jax.synthface import expression as expr
from disent_jax.synthface import identity as idn
from disent_jax.synthface import sampling
from disent_jax.synthface import world as world_lib

CONDITIONS = ("cooperative", "indoor")
YAWS_DEG = (-30.0, 0.0, 30.0)
NOSE_TIP = 30  # iBUG-68 landmark index (0-based).
RADIUS_MM = 95.0
_STREAM = 0x3C1CC  # Keys of the protocol's lights, occluders, backgrounds.

# [N, S, S, 3] images -> [N, V, 3] canonical shapes (mm).
ShapeFn = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Protocol:
  """Which subjects, at which sizes.

  Attributes:
    first_subject: the first subject id of world `seed` (after every
      subject of the image splits, so none is ever trained on).
    num_subjects: subjects in the protocol.
    seed: the SynthFace world seed (the image data's).
    size: image size.
    resolution: the image world's (and the predictions') mesh.
    scan_resolution: the scans' denser mesh.
  """
  first_subject: int
  num_subjects: int = 10
  seed: int = 0
  size: int = 64
  resolution: str = "1k"
  scan_resolution: str = "2.5k"


def cooperative_light() -> jax.Array:
  """SH [3, 9]: strong ambient and a weak light from slightly above."""
  direction = jnp.array([0.0, 0.3, 1.0]) / jnp.sqrt(1.09)
  return sh_lighting.directional_light_sh(direction, color=0.3,
                                          ambient=0.7)


def _view(world: world_lib.World, params: jax.Array, key: jax.Array,
          yaw: jax.Array, indoor: jax.Array, *, size: int
          ) -> dict[str, jax.Array]:
  k_sh, k_bg, k_occ, k_cam = jax.random.split(key, 4)
  pose = jnp.stack([0.0, yaw, 0.0]).astype(jnp.float32)
  sh = jnp.where(indoor, sampling.sample_sh(k_sh), cooperative_light())
  kind, occ_params = sampling.sample_occluder(k_occ, prob=0.3)
  kind = jnp.where(indoor, kind, 0)
  scale, shift = sampling.sample_camera_jitter(k_cam)
  scale = jnp.where(indoor, scale, 1.0)
  shift = jnp.where(indoor, shift, 0.0)
  expression = jnp.zeros((expr.NUM_EXPRESSIONS,), jnp.float32)
  return world.render_factors(
      params, expression, pose, sh, sampling.sample_background(k_bg, size),
      kind, occ_params, scale, shift, size=size)


def generate(protocol: Protocol) -> dict[str, np.ndarray]:
  """The protocol's data.

  Returns:
    images [S, C, 3, size, size, 3] in [0, 1] (C conditions as
    `CONDITIONS`, 3 views as `YAWS_DEG`), landmarks_2d [S, C, 3, 68, 2],
    scan [S, M, 3] (the neutral on the scan mesh), nose_tip [S, 3],
    neutral [S, V, 3] (the exact neutral on the image mesh) and subject
    [S].
  """
  world = world_lib.world(protocol.resolution)
  scan_world = world_lib.world(protocol.scan_resolution)
  yaws = jnp.deg2rad(jnp.asarray(YAWS_DEG, jnp.float32))
  indoor = jnp.asarray([c == "indoor" for c in CONDITIONS])

  def subject(s):
    params = sampling.subject_identity(protocol.seed, s)
    key = jax.random.fold_in(jax.random.fold_in(
        jax.random.PRNGKey(protocol.seed), _STREAM), s)

    def cond(c, ind):
      keys = jax.random.split(jax.random.fold_in(key, c), len(YAWS_DEG))
      return jax.vmap(lambda k, y: _view(world, params, k, y, ind,
                                         size=protocol.size))(keys, yaws)

    out = jax.vmap(cond)(jnp.arange(len(CONDITIONS)), indoor)
    scan = idn.neutral(params, scan_world.template)
    return {"images": out["image"], "landmarks_2d": out["landmarks_2d"],
            "scan": scan, "nose_tip": scan[scan_world.landmarks[NOSE_TIP]],
            "neutral": out["neutral"][0, 0]}

  fn = jax.jit(subject)
  ids = protocol.first_subject + np.arange(protocol.num_subjects)
  rows = [jax.tree.map(np.asarray, fn(int(s))) for s in ids]
  data = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
  data["images"] = np.clip(data["images"], 0.0, 1.0).astype(np.float32)
  data["subject"] = ids
  return data


def subject_errors(shapes: np.ndarray, faces: np.ndarray,
                   data: Mapping[str, np.ndarray]) -> np.ndarray:
  """Per-subject mean point-to-plane errors (mm) of shapes [S, V, 3]."""
  out = np.empty(len(shapes))
  for i, shape in enumerate(shapes):
    out[i] = alignment.point_to_plane_error(
        shape, faces, data["scan"][i], nose_tip=data["nose_tip"][i],
        radius=RADIUS_MM, icp=True, scale=True)["mean"]
  return out


def evaluate(methods: Mapping[str, ShapeFn], faces: np.ndarray,
             data: Mapping[str, np.ndarray], *, single_view: bool = True
             ) -> dict[str, dict[str, float]]:
  """Table 1 for every method.

  Args:
    methods: {name: images [N, S, S, 3] -> canonical shapes [N, V, 3]}.
    faces: [F, 3] the predictions' triangles.
    data: `generate`'s arrays.
    single_view: also score each view alone (the mean over views).

  Returns:
    {name: {"<condition>/mean", "<condition>/std" (over subjects),
    "<condition>/single_view_mean"}}.
  """
  s, c, v = data["images"].shape[:3]
  flat = data["images"].reshape((s * c * v,) + data["images"].shape[3:])
  table = {}
  for name, fn in methods.items():
    shapes = np.asarray(fn(flat), np.float64)
    shapes = shapes.reshape((s, c, v) + shapes.shape[1:])
    row = {}
    for j, cond in enumerate(CONDITIONS):
      err = subject_errors(shapes[:, j].mean(axis=1), faces, data)
      row[f"{cond}/mean"] = float(err.mean())
      row[f"{cond}/std"] = float(err.std())
      if single_view:
        views = [subject_errors(shapes[:, j, k], faces, data)
                 for k in range(v)]
        row[f"{cond}/single_view_mean"] = float(np.mean(views))
    table[name] = row
  return table


def markdown(table: Mapping[str, Mapping[str, float]]) -> str:
  """Table 1's layout: Method | Cooperative Mean | Std. | Indoor ..."""
  head = "| Method | " + " | ".join(
      f"{c.capitalize()} Mean | {c.capitalize()} Std." for c in CONDITIONS)
  lines = [head + " |", "|---" * (1 + 2 * len(CONDITIONS)) + "|"]
  for name, row in table.items():
    cells = " | ".join(f"{row[f'{c}/mean']:.3f} | {row[f'{c}/std']:.3f}"
                       for c in CONDITIONS)
    lines.append(f"| {name} | {cells} |")
  return "\n".join(lines)
