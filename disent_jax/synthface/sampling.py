"""SynthFace samplers: identities, expressions, poses, lights, backgrounds.

Every sampler is a pure function of a PRNG key. `subject_key(seed, subject)`
and `example_key(seed, index)` derive keys deterministically from integers
(threefry, identical on every backend), so a dataset is a function of its
seed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from disent_jax.ops import sh_lighting
from disent_jax.synthface import expression as expr
from disent_jax.synthface import identity as idn
from disent_jax.synthface import occluder as occ

IDENTITY_TRUNCATION = 2.5
_SUBJECT_STREAM = 1
_EXAMPLE_STREAM = 2


def subject_key(seed: int | jax.Array, subject: int | jax.Array) -> jax.Array:
  """The key of subject `subject` of world `seed`."""
  root = jax.random.fold_in(jax.random.PRNGKey(seed), _SUBJECT_STREAM)
  return jax.random.fold_in(root, subject)


def example_key(seed: int | jax.Array, index: int | jax.Array) -> jax.Array:
  """The key of example `index` (expression, pose, light...) of `seed`."""
  root = jax.random.fold_in(jax.random.PRNGKey(seed), _EXAMPLE_STREAM)
  return jax.random.fold_in(root, index)


def sample_identity(key: jax.Array) -> jax.Array:
  """Identity parameters [NUM_IDENTITY], truncated standard normal."""
  return jax.random.truncated_normal(
      key, -IDENTITY_TRUNCATION, IDENTITY_TRUNCATION, (idn.NUM_IDENTITY,),
      jnp.float32)


def subject_identity(seed: int | jax.Array,
                     subject: int | jax.Array) -> jax.Array:
  """Identity parameters of subject `subject` in world `seed`."""
  return sample_identity(subject_key(seed, subject))


def sample_expression(key: jax.Array, *, max_active: int = 2,
                      neutral_prob: float = 0.1) -> jax.Array:
  """A random blend of up to `max_active` expressions, [NUM_EXPRESSIONS].

  Each active expression gets a weight in [0.3, 1]; with probability
  `neutral_prob` the result is the neutral face (all zeros).
  """
  k_sel, k_w, k_n, k_neu = jax.random.split(key, 4)
  num = jax.random.randint(k_n, (), 1, max_active + 1)
  order = jax.random.permutation(k_sel, expr.NUM_EXPRESSIONS)
  rank = jnp.argsort(order)
  active = rank < num
  w = jax.random.uniform(k_w, (expr.NUM_EXPRESSIONS,), minval=0.3, maxval=1.0)
  w = jnp.where(active, w, 0.0)
  neutral = jax.random.uniform(k_neu) < neutral_prob
  return jnp.where(neutral, 0.0, w).astype(jnp.float32)


def sample_pose(key: jax.Array) -> jax.Array:
  """Head pose angles (pitch, yaw, roll) [3] in radians, in-the-wild-like.

  Mostly near frontal: yaw is N(0, 15 deg) with probability 0.7 and uniform
  in [-60, 60] deg otherwise; pitch N(0, 8 deg) clipped to +-30 deg; roll
  N(0, 6 deg) clipped to +-25 deg.
  """
  k_mix, k_near, k_far, k_p, k_r = jax.random.split(key, 5)
  deg = jnp.pi / 180.0
  near = jnp.clip(15.0 * jax.random.normal(k_near), -60.0, 60.0)
  far = jax.random.uniform(k_far, minval=-60.0, maxval=60.0)
  yaw = jnp.where(jax.random.uniform(k_mix) < 0.7, near, far)
  pitch = jnp.clip(8.0 * jax.random.normal(k_p), -30.0, 30.0)
  roll = jnp.clip(6.0 * jax.random.normal(k_r), -25.0, 25.0)
  return (jnp.stack([pitch, yaw, roll]) * deg).astype(jnp.float32)


NEAR_FRONTAL_DEG = 15.0


def near_frontal(pose: jax.Array) -> jax.Array:
  """True where |yaw| and |pitch| are within `NEAR_FRONTAL_DEG`, [...]."""
  lim = NEAR_FRONTAL_DEG * jnp.pi / 180.0
  return (jnp.abs(pose[..., 1]) <= lim) & (jnp.abs(pose[..., 0]) <= lim)


def sample_sh(key: jax.Array) -> jax.Array:
  """Plausible SH lighting [3, 9] (discofacegan convention).

  An ambient term, one directional light from the front hemisphere (mostly
  from above), a slight colour tint and small higher-order perturbations.
  """
  k_amb, k_dir, k_int, k_tint, k_noise = jax.random.split(key, 5)
  ambient = jax.random.uniform(k_amb, minval=0.45, maxval=0.8)
  az, el = jax.random.uniform(k_dir, (2,), minval=-1.0, maxval=1.0)
  azimuth = 1.1 * az
  elevation = 0.35 + 0.55 * el
  direction = jnp.stack([
      jnp.sin(azimuth) * jnp.cos(elevation), jnp.sin(elevation),
      jnp.cos(azimuth) * jnp.cos(elevation)])
  intensity = jax.random.uniform(k_int, minval=0.35, maxval=0.8)
  tint = 1.0 + 0.08 * jax.random.uniform(k_tint, (3,), minval=-1.0,
                                         maxval=1.0)
  coeffs = sh_lighting.directional_light_sh(
      direction, color=intensity * tint, ambient=ambient * tint)
  noise = 0.02 * jax.random.normal(k_noise, (3, 9))
  noise = noise.at[:, 0].set(0.0)
  return (coeffs + noise).astype(jnp.float32)


def sample_background(key: jax.Array, size: int) -> jax.Array:
  """A procedural background [size, size, 3] in [0, 1].

  A linear gradient between two random colours plus a few soft blobs and
  stripes.
  """
  k_c, k_dir, k_blob, k_freq = jax.random.split(key, 4)
  cols = jax.random.uniform(k_c, (4, 3), minval=0.05, maxval=0.95)
  yy, xx = jnp.meshgrid(jnp.linspace(0.0, 1.0, size),
                        jnp.linspace(0.0, 1.0, size), indexing="ij")
  ang = jax.random.uniform(k_dir, minval=0.0, maxval=2.0 * jnp.pi)
  g = 0.5 + (jnp.cos(ang) * (xx - 0.5) + jnp.sin(ang) * (yy - 0.5))
  img = cols[0] * (1.0 - g[..., None]) + cols[1] * g[..., None]
  centres = jax.random.uniform(k_blob, (3, 3))
  for i in range(3):
    d2 = (xx - centres[i, 0])**2 + (yy - centres[i, 1])**2
    blob = jnp.exp(-d2 / (2.0 * (0.08 + 0.2 * centres[i, 2])**2))
    img = img + 0.35 * blob[..., None] * (cols[2 + i % 2] - img)
  freq = jax.random.uniform(k_freq, (2,), minval=2.0, maxval=9.0)
  stripes = 0.04 * jnp.sin(2 * jnp.pi * (freq[0] * xx + freq[1] * yy))
  return jnp.clip(img + stripes[..., None], 0.0, 1.0).astype(jnp.float32)


def sample_occluder(key: jax.Array, *, prob: float = 0.3
                    ) -> tuple[jax.Array, jax.Array]:
  """(kind int32 scalar, params [NUM_OCCLUDER_PARAMS]) of an occluder.

  With probability `prob` a fringe or glasses (equally likely), else none.
  """
  k_on, k_kind, k_p = jax.random.split(key, 3)
  on = jax.random.uniform(k_on) < prob
  kind = jnp.where(on, 1 + jax.random.randint(k_kind, (), 0, 2), 0)
  params = jax.random.uniform(k_p, (occ.NUM_OCCLUDER_PARAMS,), minval=-1.0,
                              maxval=1.0)
  return kind.astype(jnp.int32), params.astype(jnp.float32)


def sample_camera_jitter(key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(scale factor [], translation offset [2] as a fraction of the size)."""
  k_s, k_t = jax.random.split(key)
  scale = jax.random.uniform(k_s, minval=0.9, maxval=1.1)
  shift = jax.random.uniform(k_t, (2,), minval=-0.04, maxval=0.04)
  return scale.astype(jnp.float32), shift.astype(jnp.float32)
