"""Tests of SynthFace expressions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.synthface import expression as expr
from disent_jax.synthface import identity as idn
from disent_jax.synthface import sampling
from disent_jax.synthface import template as tpl

K = expr.NUM_EXPRESSIONS


@pytest.fixture(scope="module")
def t1k():
  return tpl.template("1k")


@pytest.fixture(scope="module")
def fns(t1k):
  neutral = jax.jit(jax.vmap(lambda p: idn.neutral(p, t1k)))

  def both(p, w):
    n = idn.neutral(p, t1k)
    return n, expr.apply_expression(n, p, w, t1k)

  pair = jax.jit(jax.vmap(both))
  return neutral, pair


@pytest.fixture(scope="module")
def subjects():
  rng = np.random.default_rng(0)
  trunc = sampling.IDENTITY_TRUNCATION
  sampled = np.asarray(jax.vmap(sampling.subject_identity, in_axes=(None, 0))(
      0, jnp.arange(8)))
  corners = trunc * np.sign(rng.normal(size=(8, idn.NUM_IDENTITY)))
  return np.concatenate([sampled, corners]).astype(np.float32)


def _normals(v, faces):
  tri = v[..., faces, :].astype(np.float64)
  return np.cross(tri[..., 1, :] - tri[..., 0, :],
                  tri[..., 2, :] - tri[..., 0, :])


def test_names_cover_coma():
  assert set(expr.COMA_EXPRESSIONS) <= set(expr.EXPRESSIONS)
  assert len(expr.COMA_EXPRESSIONS) == 12
  assert set(expr.ASYMMETRIC_EXPRESSIONS) <= set(expr.EXPRESSIONS)


def test_zero_expression_is_exact_neutral(t1k, fns, subjects):
  _, pair = fns
  n, e = pair(jnp.asarray(subjects), jnp.zeros((len(subjects), K)))
  np.testing.assert_array_equal(np.asarray(n), np.asarray(e))
  # Any neutral input comes back bit for bit, not only a recomputed one.
  shifted = np.asarray(n)[0] + np.float32(0.125)
  out = jax.jit(lambda v, p: expr.apply_expression(v, p, jnp.zeros(K), t1k))(
      shifted, subjects[0])
  np.testing.assert_array_equal(np.asarray(out), shifted)


def test_activations_budget_and_clip():
  eye = np.eye(K, dtype=np.float32)
  a = np.asarray(expr.activations(eye))
  np.testing.assert_allclose(a, np.clip(expr.MIXING, -1.0, 1.0), atol=1e-6)
  assert np.all(np.asarray(expr.activations(np.zeros(K))) == 0.0)
  many = np.asarray(expr.activations(np.ones(K, np.float32)))
  group = expr._MOUTH_GROUP > 0
  np.testing.assert_allclose(np.abs(many[group]).sum(), expr.MOUTH_BUDGET,
                             rtol=1e-5)
  assert many.max() <= 1.0 and many.min() >= -1.0


def test_mesh_stays_valid_over_the_range(t1k, fns, subjects):
  _, pair = fns
  rng = np.random.default_rng(1)
  weights = [np.eye(K, dtype=np.float32), np.ones((1, K), np.float32),
             rng.uniform(0, 1, (6, K)).astype(np.float32),
             (rng.uniform(0, 1, (8, K)) *
              (rng.uniform(size=(8, K)) < 0.15)).astype(np.float32)]
  weights = np.concatenate(weights)
  faces = t1k.faces
  for w in weights:
    n, e = pair(jnp.asarray(subjects), jnp.tile(w, (len(subjects), 1)))
    n0, n1 = _normals(np.asarray(n), faces), _normals(np.asarray(e), faces)
    cos = np.sum(n0 * n1, -1) / (
        np.linalg.norm(n0, axis=-1) * np.linalg.norm(n1, axis=-1))
    area = 0.5 * np.linalg.norm(n1, axis=-1)
    ratio = area / (0.5 * np.linalg.norm(n0, axis=-1))
    assert cos.min() > 0.0, (w, cos.min())
    assert area.min() > 0.05, (w, area.min())
    assert ratio.min() > 0.02, (w, ratio.min())
    assert np.all(np.isfinite(np.asarray(e)))


def test_smile_corner_moves_with_mouth_width(t1k, fns, subjects):
  """Closed form: the corner moves by (0.22, 0.32, -0.12) x half width."""
  _, pair = fns
  w = np.tile(expr.one_hot("smile_right"), (len(subjects), 1))
  n, e = pair(jnp.asarray(subjects), jnp.asarray(w))
  n, e = np.asarray(n, np.float64), np.asarray(e, np.float64)
  lm = t1k.landmarks
  half = 0.5 * (n[:, lm[54], 0] - n[:, lm[48], 0])
  moved = e[:, lm[54]] - n[:, lm[54]]
  expected = half[:, None] * np.array([0.22, 0.32, -0.12])
  # The other corner's Gaussian leaves exp(-2^2 / (2 * 0.6^2)) ~ 0.4%.
  np.testing.assert_allclose(moved, expected, atol=0.01 * half.max())
  assert half.max() / half.min() > 1.2


def test_identity_and_expression_interact(t1k, fns, subjects):
  _, pair = fns
  face = ~t1k.cavity
  for name in expr.EXPRESSIONS:
    w = np.tile(expr.one_hot(name), (len(subjects), 1))
    n, e = pair(jnp.asarray(subjects), jnp.asarray(w))
    d = np.asarray(e - n)[:, face]
    diff = np.linalg.norm(d[0] - d[1], axis=-1).mean()
    size = np.linalg.norm(d[0], axis=-1).mean()
    assert diff > 0.05 * size, (name, diff, size)


def test_jaw_rotates_about_the_pivot(t1k, fns, subjects):
  """Closed form for the chin under mouth_open (weight 1 at the chin)."""
  _, pair = fns
  w = np.tile(expr.one_hot("mouth_open"), (len(subjects), 1))
  n, e = pair(jnp.asarray(subjects), jnp.asarray(w))
  n, e = np.asarray(n, np.float64), np.asarray(e, np.float64)
  lm = t1k.landmarks
  assert expr.jaw_weight(t1k)[lm[8]] == pytest.approx(1.0)
  theta = 0.55 * expr.JAW_MAX_ANGLE
  for nv, ev in zip(n, e):
    py, pz = nv[lm[33], 1] + 15.0, nv[lm[33], 2] - 90.0
    dy, dz = nv[lm[8], 1] - py, nv[lm[8], 2] - pz
    y = py + np.cos(theta) * dy - np.sin(theta) * dz
    z = pz + np.sin(theta) * dy + np.cos(theta) * dz + 0.55 * expr.JAW_GLIDE
    np.testing.assert_allclose(ev[lm[8]], [nv[lm[8], 0], y, z], atol=1e-3)


def test_lips_part_and_eyes_close(t1k, fns, subjects):
  _, pair = fns
  lm = t1k.landmarks
  gap = lambda v, a, b: np.linalg.norm(v[:, lm[a]] - v[:, lm[b]], axis=-1)
  w = np.tile(expr.one_hot("mouth_open"), (len(subjects), 1))
  n, e = map(np.asarray, pair(jnp.asarray(subjects), jnp.asarray(w)))
  np.testing.assert_array_equal(gap(n, 62, 66), 0.0)
  assert np.all(gap(e, 62, 66) > 10.0)
  w = np.tile(expr.one_hot("blink"), (len(subjects), 1))
  n, e = map(np.asarray, pair(jnp.asarray(subjects), jnp.asarray(w)))
  for up, lo in ((37, 41), (38, 40), (43, 47), (44, 46)):
    ratio = gap(e, up, lo) / gap(n, up, lo)
    assert np.all(ratio < 0.3), ratio


def test_symmetry_of_expressions(t1k, fns, subjects):
  _, pair = fns
  m = t1k.mirror
  flip = np.array([-1.0, 1.0, 1.0])
  tile = lambda name: jnp.tile(expr.one_hot(name), (len(subjects), 1))
  _, e = pair(jnp.asarray(subjects), tile("smile"))
  e = np.asarray(e)
  np.testing.assert_allclose(e[:, m] * flip, e, atol=2e-3)
  _, el = pair(jnp.asarray(subjects), tile("smile_left"))
  _, er = pair(jnp.asarray(subjects), tile("smile_right"))
  el, er = np.asarray(el), np.asarray(er)
  np.testing.assert_allclose(el[:, m] * flip, er, atol=2e-3)
  assert np.abs(el[:, m] * flip - el).max() > 1.0


@pytest.mark.slow
@pytest.mark.parametrize("resolution", ["2.5k", "5k"])
def test_mesh_stays_valid_at_higher_resolutions(resolution):
  t = tpl.template(resolution)
  rng = np.random.default_rng(2)
  trunc = sampling.IDENTITY_TRUNCATION
  subjects = np.concatenate([
      np.asarray(jax.vmap(sampling.subject_identity, in_axes=(None, 0))(
          1, jnp.arange(4))),
      trunc * np.sign(rng.normal(size=(4, idn.NUM_IDENTITY)))]).astype(
          np.float32)

  def both(p, w):
    n = idn.neutral(p, t)
    return n, expr.apply_expression(n, p, w, t)

  pair = jax.jit(jax.vmap(both))
  weights = np.concatenate([np.eye(K, dtype=np.float32),
                            np.ones((1, K), np.float32),
                            rng.uniform(0, 1, (3, K)).astype(np.float32)])
  for w in weights:
    n, e = pair(jnp.asarray(subjects), jnp.tile(w, (len(subjects), 1)))
    n0, n1 = _normals(np.asarray(n), t.faces), _normals(np.asarray(e), t.faces)
    cos = np.sum(n0 * n1, -1) / (
        np.linalg.norm(n0, axis=-1) * np.linalg.norm(n1, axis=-1))
    assert cos.min() > 0.0
    assert 0.5 * np.linalg.norm(n1, axis=-1).min() > 0.01
