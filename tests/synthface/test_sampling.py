"""Tests of SynthFace samplers."""

import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.ops import sh_lighting
from disent_jax.synthface import expression as expr
from disent_jax.synthface import occluder as occ
from disent_jax.synthface import sampling

_KEYS = jax.random.split(jax.random.PRNGKey(0), 2000)


def test_keys_are_deterministic():
  a = sampling.example_key(5, 17)
  np.testing.assert_array_equal(a, sampling.example_key(5, 17))
  assert not np.array_equal(a, sampling.example_key(5, 18))
  assert not np.array_equal(sampling.subject_key(5, 17), a)


def test_pose_distribution_mostly_frontal():
  pose = jax.jit(jax.vmap(sampling.sample_pose))(_KEYS)
  pose = np.degrees(np.asarray(pose))
  yaw = pose[:, 1]
  assert np.all(np.abs(yaw) <= 60.0)
  assert np.all(np.abs(pose[:, 0]) <= 30.0)
  assert np.all(np.abs(pose[:, 2]) <= 25.0)
  # 0.7 * P(|N(0, 15)| < 15) + 0.3 * 30 / 120 = 0.553.
  frac = np.mean(np.abs(yaw) < 15.0)
  assert abs(frac - 0.553) < 0.05
  flags = np.asarray(sampling.near_frontal(jnp.radians(pose)))
  np.testing.assert_array_equal(
      flags, (np.abs(yaw) <= 15.0) & (np.abs(pose[:, 0]) <= 15.0))


def test_lights_are_plausible():
  sh = np.asarray(jax.jit(jax.vmap(sampling.sample_sh))(_KEYS[:300]))
  assert sh.shape == (300, 3, 9)
  # Irradiance over the frontal hemisphere is positive and bounded.
  rng = np.random.default_rng(0)
  n = rng.normal(size=(200, 3))
  n[:, 2] = np.abs(n[:, 2])
  n /= np.linalg.norm(n, axis=1, keepdims=True)
  irr = np.asarray(sh_lighting.irradiance(
      jnp.asarray(n, jnp.float32)[None], jnp.asarray(sh)[:, None]))
  assert irr.min() > 0.1 and irr.max() < 2.5


def test_expression_sampler_is_sparse():
  w = np.asarray(jax.jit(jax.vmap(sampling.sample_expression))(_KEYS[:1000]))
  active = (w > 0).sum(1)
  assert active.max() <= 2
  assert abs(np.mean(active == 0) - 0.1) < 0.04
  assert w.max() <= 1.0 and w[w > 0].min() >= 0.3
  assert np.all((w > 0).sum(0) > 10)
  assert w.shape[1] == expr.NUM_EXPRESSIONS


def test_background_and_occluder_and_jitter():
  bg = np.asarray(sampling.sample_background(_KEYS[0], 32))
  assert bg.shape == (32, 32, 3) and bg.min() >= 0 and bg.max() <= 1
  assert bg.std() > 0.01
  kinds, params = jax.jit(jax.vmap(sampling.sample_occluder))(_KEYS)
  kinds = np.asarray(kinds)
  assert set(np.unique(kinds)) == {0, 1, 2}
  assert abs(np.mean(kinds > 0) - 0.3) < 0.04
  assert np.asarray(params).shape == (2000, occ.NUM_OCCLUDER_PARAMS)
  scale, shift = jax.jit(jax.vmap(sampling.sample_camera_jitter))(_KEYS)
  assert np.all((np.asarray(scale) >= 0.9) & (np.asarray(scale) <= 1.1))
  assert np.abs(np.asarray(shift)).max() <= 0.04
