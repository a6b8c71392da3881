"""Tests of the world's linear 3DMM."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.synthface import identity as idn
from disent_jax.synthface import morphable
from disent_jax.synthface import sampling
from disent_jax.synthface import template as tpl


def _toy_model(rng, v=50, ki=6, ke=4, kt=3):
  q, _ = np.linalg.qr(rng.normal(size=(3 * v, ki + ke + kt)))
  return morphable.Morphable(
      mean=rng.normal(size=(v, 3)).astype(np.float32),
      id_basis=q[:, :ki].astype(np.float32),
      id_std=np.linspace(5, 1, ki).astype(np.float32),
      exp_basis=q[:, ki:ki + ke].astype(np.float32),
      exp_std=np.linspace(3, 1, ke).astype(np.float32),
      tex_mean=rng.uniform(size=(v, 3)).astype(np.float32),
      tex_basis=q[:, ki + ke:].astype(np.float32),
      tex_std=np.linspace(0.3, 0.1, kt).astype(np.float32),
      faces=np.array([[0, 1, 2]], np.int32),
      landmarks=np.arange(68, dtype=np.int32) % v)


def test_pca_matches_covariance_eigen():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(40, 12)) @ rng.normal(size=(12, 12))
  mean, basis, std = morphable.pca(x, 5)
  np.testing.assert_allclose(mean, x.mean(0), atol=1e-12)
  np.testing.assert_allclose(basis.T @ basis, np.eye(5), atol=1e-10)
  evals = np.sort(np.linalg.eigvalsh(np.cov(x.T)))[::-1][:5]
  np.testing.assert_allclose(std**2, evals, rtol=1e-8)
  full = morphable.explained_fraction(x, mean, morphable.pca(x, 12)[1])
  assert full == pytest.approx(1.0, abs=1e-10)
  part = morphable.explained_fraction(x, mean, basis)
  np.testing.assert_allclose(part, np.sum(evals) / np.trace(np.cov(x.T)),
                             rtol=1e-8)
  with pytest.raises(ValueError):
    morphable.pca(x, 0)


def test_fit_inverts_reconstruct_and_noise_knob():
  rng = np.random.default_rng(1)
  m = _toy_model(rng)
  a = rng.normal(size=(8, m.num_identity)).astype(np.float32)
  b = rng.normal(size=(8, m.num_expression)).astype(np.float32)
  shapes = morphable.reconstruct(m, a, b)
  fa, fb = morphable.fit(m, shapes, ridge=0.0)
  np.testing.assert_allclose(fa, a, atol=1e-3)
  np.testing.assert_allclose(fb, b, atol=1e-3)
  na, nb = morphable.fit(m, jnp.tile(shapes[:1], (4000, 1, 1)), noise=0.5,
                         key=jax.random.PRNGKey(0), ridge=0.0)
  np.testing.assert_allclose(np.std(np.asarray(na), axis=0), 0.5, rtol=0.1)
  np.testing.assert_allclose(np.mean(np.asarray(nb), axis=0), b[0], atol=0.05)
  with pytest.raises(ValueError, match="key"):
    morphable.fit(m, shapes, noise=0.1)
  t = rng.normal(size=(3, m.num_texture)).astype(np.float32)
  np.testing.assert_allclose(
      morphable.fit_texture(m, morphable.reconstruct_texture(m, t)), t,
      atol=1e-3)


def test_save_load_roundtrip(tmp_path):
  m = _toy_model(np.random.default_rng(2))
  path = tmp_path / "model.npz"
  m.save(path)
  back = morphable.Morphable.load(path)
  np.testing.assert_array_equal(back.id_basis, m.id_basis)
  assert back.num_texture == m.num_texture
  np.savez(tmp_path / "bad.npz", mean=np.zeros(3))
  with pytest.raises(ValueError, match="missing"):
    morphable.Morphable.load(tmp_path / "bad.npz")


def test_world_identity_is_not_exactly_linear():
  t = tpl.template("1k")
  params = jax.vmap(sampling.subject_identity, in_axes=(None, 0))(
      99, jnp.arange(240))
  shapes = np.asarray(jax.jit(jax.vmap(lambda p: idn.neutral(p, t)))(params))
  shapes = shapes.reshape(240, -1)
  mean, basis, _ = morphable.pca(shapes[:180], idn.NUM_GEOMETRY)
  frac = morphable.explained_fraction(shapes[180:], mean, basis)
  # Most, but measurably not all, of the variance: as many components as
  # geometric parameters leave a nonlinear residual.
  assert 0.99 < frac < 0.99995
  resid = (shapes[180:] - mean) - ((shapes[180:] - mean) @ basis) @ basis.T
  assert np.sqrt(np.mean(resid**2)) > 0.02


@pytest.mark.slow
def test_build_reports_explained_fractions(tmp_path):
  m = morphable.build("1k", seed=7, num_subjects=80, num_expressions=120,
                      num_identity=20, num_expression=16, num_texture=4)
  assert 0.9 < m.identity_explained < 1.0
  assert 0.9 < m.expression_explained < 1.0
  t = tpl.template("1k")
  p = sampling.subject_identity(1000, 0)
  n = idn.neutral(p, t)
  a, b = morphable.fit(m, n)
  rec = morphable.reconstruct(m, a, b)
  assert np.abs(np.asarray(rec - n)).mean() < 0.3 * np.abs(
      np.asarray(n - m.mean)).mean()
