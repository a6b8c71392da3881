"""SynthFace albedo: per-vertex RGB reflectance from identity only.

Patterns (lips, brows, eyes, nostrils, cheeks, the oral cavity and teeth) are
fixed in the template domain and depend on |u|, so the albedo is left-right
symmetric; colours come from the appearance parameters of the identity
vector. Expressions move vertices, never their albedo.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.synthface import identity as idn
from disent_jax.synthface import template as tpl

_LIGHT_SKIN = np.array([0.92, 0.74, 0.62], np.float32)
_MID_SKIN = np.array([0.76, 0.54, 0.40], np.float32)
_DARK_SKIN = np.array([0.40, 0.26, 0.18], np.float32)
_SCLERA = np.array([0.88, 0.86, 0.84], np.float32)
_BROWN_IRIS = np.array([0.28, 0.16, 0.08], np.float32)
_BLUE_IRIS = np.array([0.30, 0.42, 0.55], np.float32)
_BROW = np.array([0.16, 0.10, 0.07], np.float32)
_CAVITY = np.array([0.30, 0.07, 0.07], np.float32)
_TEETH = np.array([0.90, 0.88, 0.80], np.float32)


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def region_masks(template: tpl.Template) -> dict[str, np.ndarray]:
  """Soft albedo pattern masks [V] in [0, 1] (numpy, template only)."""
  uv = template.uv.astype(np.float64)
  au, v = np.abs(uv[:, 0]), uv[:, 1]
  lm = tpl.LANDMARKS_UV
  # Lips: between the outer lip lines; the cut lies inside.
  up_u, up_v = lm[[51, 52, 53, 54], 0], lm[[51, 52, 53, 54], 1]
  lo_u, lo_v = lm[[57, 56, 55, 54], 0], lm[[57, 56, 55, 54], 1]
  v_up = np.interp(au, up_u, up_v)
  v_lo = np.interp(au, lo_u, lo_v)
  edge = 0.012
  lips = (_sigmoid((v_up - v) / edge) * _sigmoid((v - v_lo) / edge)
          * _sigmoid((tpl.U_MOUTH_CORNER + 0.01 - au) / edge))
  # Brows: a band over the brow landmarks, thicker inside.
  bu, bv = lm[22:27, 0], lm[22:27, 1]
  v_b = np.interp(au, bu, bv)
  thick = 0.035 - 0.015 * np.clip((au - bu[0]) / (bu[-1] - bu[0]), 0, 1)
  brows = (_sigmoid((thick - np.abs(v - v_b + 0.005)) / 0.008)
           * _sigmoid((au - bu[0] + 0.02) / 0.015)
           * _sigmoid((bu[-1] + 0.02 - au) / 0.015))
  # Eyes: sclera inside the lid margins, iris, pupil, upper lash line.
  xi = (au - tpl.U_EYE) / tpl.EYE_HALF_WIDTH
  up, lo = tpl.eye_lid_offsets(xi)
  vl = v - tpl.V_EYE
  inside = (np.abs(xi) < 1.0) & (vl < up + 1e-6) & (vl > lo - 1e-6)
  eye = np.where(inside, 1.0, 0.0)
  r_iris = np.hypot((au - tpl.U_EYE), vl - 0.004)
  iris = eye * _sigmoid((0.085 - r_iris) / 0.008)
  pupil = eye * _sigmoid((0.035 - r_iris) / 0.006)
  lash = (np.abs(xi) < 1.05) * _sigmoid(
      (0.014 - np.abs(vl - up - 0.008)) / 0.005) * (1.0 - eye)
  nostrils = np.exp(-0.5 * (((au - 0.085) / 0.03)**2 + (
      (v + 0.31) / 0.02)**2))
  cheeks = np.exp(-0.5 * (((au - 0.5) / 0.16)**2 + ((v + 0.22) / 0.14)**2))
  masks = {"lips": lips, "brows": brows, "eye": eye, "iris": iris,
           "pupil": pupil, "lash": lash, "nostrils": nostrils,
           "cheeks": cheeks, "teeth": template.teeth.astype(np.float64),
           "cavity": template.cavity.astype(np.float64)}
  for name in ("lips", "brows", "lash", "nostrils", "cheeks"):
    masks[name] = masks[name] * (1.0 - masks["cavity"])
  return {k: m.astype(np.float32) for k, m in masks.items()}


def _lerp(a, b, t):
  return a + (b - a) * t


def albedo(params: jax.Array, template: tpl.Template) -> jax.Array:
  """Per-vertex albedo of a subject.

  Args:
    params: [NUM_IDENTITY] identity parameters (only the appearance part is
      used).
    template: the template.

  Returns:
    [V, 3] RGB albedo in [0, 1].
  """
  params = jnp.asarray(params, jnp.float32)
  if params.shape != (idn.NUM_IDENTITY,):
    raise ValueError(f"params must have shape ({idn.NUM_IDENTITY},), got "
                     f"{params.shape}")
  q = jnp.clip(params[idn.NUM_GEOMETRY:], -idn.PARAM_CLIP, idn.PARAM_CLIP)
  tone, warmth, lip_c, brow_d, blush, iris_c = (q[i] for i in range(6))
  m = {k: jnp.asarray(v)[:, None] for k, v in region_masks(template).items()}
  t = 0.5 + 0.5 * jnp.tanh(tone / 1.6)
  skin = jnp.where(t < 0.5, _lerp(_LIGHT_SKIN, _MID_SKIN, 2.0 * t),
                   _lerp(_MID_SKIN, _DARK_SKIN, 2.0 * t - 1.0))
  skin = skin * (1.0 + 0.05 * jnp.tanh(warmth) * jnp.asarray([1.0, 0.0, -1.5]))
  red = 0.5 + 0.25 * jnp.tanh(lip_c)
  lip_rgb = skin * _lerp(jnp.asarray([0.92, 0.72, 0.72]),
                         jnp.asarray([0.95, 0.45, 0.45]), red)
  brow_rgb = _lerp(skin, _BROW, 0.55 + 0.3 * jnp.tanh(brow_d))
  iris_rgb = _lerp(_BROWN_IRIS, _BLUE_IRIS, 0.5 + 0.5 * jnp.tanh(iris_c - 0.8))
  col = skin[None, :] * (1.0 - (0.08 + 0.05 * jnp.tanh(blush)) * m["cheeks"]
                         * jnp.asarray([0.0, 1.0, 1.0]))
  col = _lerp(col, skin * 0.55, 0.6 * m["nostrils"])
  col = _lerp(col, lip_rgb[None, :], m["lips"])
  col = _lerp(col, brow_rgb[None, :], m["brows"])
  col = _lerp(col, skin * 0.35, 0.7 * m["lash"])
  col = _lerp(col, _SCLERA[None, :], m["eye"])
  col = _lerp(col, iris_rgb[None, :], m["iris"])
  col = _lerp(col, jnp.full((3,), 0.03), m["pupil"])
  cav = _lerp(_CAVITY[None, :], _TEETH[None, :], m["teeth"])
  col = _lerp(col, cav, m["cavity"])
  return jnp.clip(col, 0.0, 1.0)
