"""SynthFace occluders: an asymmetric hair fringe or a pair of glasses.

The occluder is a separate mesh with a fixed topology (a fringe sheet and two
lens disks joined by a bridge), placed from the subject's neutral surface.
`kind` selects what is shown: 0 none, 1 fringe, 2 glasses; the parts not
shown collapse to zero-area triangles, which the rasterizer skips, so the
arrays keep one shape for `jit`/`vmap`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.synthface import identity as idn
from disent_jax.synthface import template as tpl

KINDS = ("none", "fringe", "glasses")
NUM_OCCLUDER_PARAMS = 4  # slant, length, hair lightness, lens darkness

_FRINGE_NU, _FRINGE_NV = 24, 8
_LENS_RINGS, _LENS_SEGMENTS = 4, 16


@functools.lru_cache(maxsize=None)
def topology() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Occluder topology.

  Returns:
    (coords [N, 2], faces [F, 3] int32, part [N] int32) where coords are grid
    parameters: for the fringe (s, t) in [0, 1]^2; for a lens (radius
    fraction, angle / 2 pi); part is 1 fringe, 2 left lens, 3 right lens.
  """
  coords, faces, part = [], [], []

  def grid(nu, nv, kind):
    base = len(coords)
    for j in range(nv + 1):
      for i in range(nu + 1):
        coords.append((i / nu, j / nv))
        part.append(kind)
    for j in range(nv):
      for i in range(nu):
        a = base + j * (nu + 1) + i
        b, c, d = a + 1, a + nu + 1, a + nu + 2
        faces.extend([(a, b, d), (a, d, c)])

  grid(_FRINGE_NU, _FRINGE_NV, 1)
  for kind in (2, 3):
    base = len(coords)
    coords.append((0.0, 0.0))
    part.append(kind)
    for r in range(1, _LENS_RINGS + 1):
      for k in range(_LENS_SEGMENTS):
        coords.append((r / _LENS_RINGS, k / _LENS_SEGMENTS))
        part.append(kind)
    ring = lambda r, k: base + 1 + (r - 1) * _LENS_SEGMENTS + (
        k % _LENS_SEGMENTS)
    for k in range(_LENS_SEGMENTS):
      faces.append((base, ring(1, k), ring(1, k + 1)))
      for r in range(1, _LENS_RINGS):
        a, b = ring(r, k), ring(r, k + 1)
        c, d = ring(r + 1, k), ring(r + 1, k + 1)
        faces.extend([(a, c, d), (a, d, b)])
  # Bridge: a quad between the inner rims of the lenses.
  base = len(coords)
  for y in (0.0, 1.0):
    for x in (0.0, 1.0):
      coords.append((x, y))
      part.append(4)
  faces.extend([(base, base + 1, base + 3), (base, base + 3, base + 2)])
  return (np.array(coords, np.float32), np.array(faces, np.int32),
          np.array(part, np.int32))


def num_vertices() -> int:
  return int(topology()[0].shape[0])


def occluder_mesh(identity_params: jax.Array, kind: jax.Array,
                  occ_params: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Occluder vertices and albedo for a subject.

  Args:
    identity_params: [NUM_IDENTITY] identity parameters.
    kind: int scalar, index into `KINDS`.
    occ_params: [NUM_OCCLUDER_PARAMS] in [-1, 1]: fringe slant, fringe
      length, hair lightness, lens darkness.

  Returns:
    (vertices [N, 3] mm, albedo [N, 3]); parts not selected by `kind`
    collapse to one point.
  """
  occ_params = jnp.asarray(occ_params, jnp.float32)
  if occ_params.shape != (NUM_OCCLUDER_PARAMS,):
    raise ValueError(f"occ_params must have shape ({NUM_OCCLUDER_PARAMS},), "
                     f"got {occ_params.shape}")
  coords, _, part = topology()
  coords = jnp.asarray(coords)
  part = jnp.asarray(part)
  slant, length, light, dark = (occ_params[i] for i in range(4))
  s, t = coords[:, 0], coords[:, 1]
  # Fringe: over the forehead, the lower edge slanting to one side.
  u = -0.95 + 1.9 * s
  v_low = 0.52 - 0.1 * length + 0.16 * slant * u + 0.025 * jnp.sin(
      9.0 * u + 3.0 * slant)
  v = v_low + (1.02 - v_low) * t
  uv_f = jnp.stack([u * jnp.sqrt(jnp.maximum(1.0 - v * v, 0.05)), v], -1)
  fringe = idn.surface(uv_f, identity_params)
  fringe = fringe + jnp.asarray([0.0, 0.0, 5.0]) * (1.0 - 0.5 * t)[:, None]
  # Glasses: lens disks in front of the eyes, tilted a little.
  feats = idn.features(identity_params)
  p = idn.physical(identity_params)
  eye_uv = jnp.asarray([[-tpl.U_EYE, tpl.V_EYE], [tpl.U_EYE, tpl.V_EYE]])
  eyes3 = idn.surface(eye_uv, identity_params)
  front = jnp.max(eyes3[:, 2]) + p["nose_projection"] * 0.55 + 6.0
  ang = 2.0 * jnp.pi * t
  radius = 0.62 * jnp.abs(feats[45, 0] - feats[42, 0]) * s
  tilt = 0.04 * slant
  lens = []
  for k in range(2):
    c = feats[idn.EYE_CENTRE_L + k]
    lx = c[0] + radius * jnp.cos(ang) * 1.15
    ly = c[1] + radius * jnp.sin(ang) + tilt * (lx - c[0]) * (2 * k - 1)
    lens.append(jnp.stack([lx, ly, jnp.full_like(lx, front)], -1))
  rl = 0.62 * jnp.abs(feats[45, 0] - feats[42, 0]) * 1.15
  bx = feats[idn.EYE_CENTRE_L, 0] + rl + (
      feats[idn.EYE_CENTRE_R, 0] - feats[idn.EYE_CENTRE_L, 0] - 2 * rl) * s
  by = 0.5 * (feats[idn.EYE_CENTRE_L, 1] + feats[idn.EYE_CENTRE_R, 1]) + 3.0 * (
      t - 0.5)
  bridge = jnp.stack([bx, by, jnp.full_like(bx, front)], -1)
  verts = jnp.where((part == 1)[:, None], fringe,
                    jnp.where((part == 2)[:, None], lens[0],
                              jnp.where((part == 3)[:, None], lens[1],
                                        bridge)))
  shown = jnp.where(kind == 1, part == 1,
                    jnp.where(kind == 2, part >= 2, False))
  anchor = feats[idn.EYE_CENTRE_L]
  collapsed = jnp.asarray([anchor[0], anchor[1], -500.0])
  verts = jnp.where(shown[:, None], verts, collapsed[None, :])
  hair = (0.08 + 0.25 * (light + 1.0)) * jnp.asarray([1.0, 0.75, 0.55])
  lens_col = jnp.full((3,), 0.25 - 0.2 * (dark + 1.0) / 2.0)
  frame = jnp.asarray([0.05, 0.05, 0.06])
  rim = (s > 0.8) & (part >= 2) & (part <= 3)
  col = jnp.where((part == 1)[:, None], hair[None, :],
                  jnp.where(rim[:, None] | (part == 4)[:, None], frame,
                            lens_col[None, :]))
  return verts, col
