"""Tests for disent_jax.losses.adversarial (numpy references, definitions)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from disent_jax.losses import adversarial as adv

from testutil.gradcheck import check_gradient


def _sig(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def _softplus(x):
  return np.log1p(np.exp(np.asarray(x, np.float64)))


def test_bce_matches_optax_and_numpy():
  logits = jnp.array([-30.0, -2.0, 0.0, 0.7, 30.0])
  labels = jnp.array([0.0, 1.0, 0.5, 1.0, 0.0])
  got = jax.jit(adv.sigmoid_binary_cross_entropy)(logits, labels)
  np.testing.assert_allclose(
      got, optax.sigmoid_binary_cross_entropy(logits, labels), rtol=1e-6)
  p = _sig(logits[1:4])
  y = np.asarray(labels[1:4])
  np.testing.assert_allclose(got[1:4],
                             -y * np.log(p) - (1 - y) * np.log(1 - p),
                             rtol=1e-5)
  assert np.isfinite(got).all()
  np.testing.assert_allclose(got[2], np.log(2.0), rtol=1e-6)


def test_logistic_gan_losses_against_numpy_and_by_hand():
  real = np.array([2.0, -1.0, 0.5], np.float32)
  fake = np.array([-3.0, 0.2, 1.0, 0.1], np.float32)
  np.testing.assert_allclose(
      jax.jit(adv.logistic_discriminator_loss)(real, fake),
      _softplus(-real).mean() + _softplus(fake).mean(), rtol=1e-6)
  np.testing.assert_allclose(adv.nonsaturating_generator_loss(fake),
                             -np.log(_sig(fake)).mean(), rtol=1e-6)
  # At logit 0 both terms are log 2.
  zero = jnp.zeros(2)
  np.testing.assert_allclose(adv.logistic_discriminator_loss(zero, zero),
                             2 * np.log(2.0), rtol=1e-6)
  check_gradient(lambda r: adv.logistic_discriminator_loss(r, fake), real)
  check_gradient(adv.nonsaturating_generator_loss, fake)
  np.testing.assert_allclose(adv.discriminator_accuracy(real, fake[:3]),
                             0.5 * (2 / 3 + 1 / 3))


def _mlp_discriminator(params):
  """A per-sample discriminator [B, 4, 3] -> [B] (smooth, nonlinear)."""
  w1, w2 = params

  def d(x):
    h = jnp.tanh(x.reshape(x.shape[0], -1) @ w1)
    return jnp.sum(jnp.sin(h) * w2, axis=-1)
  return d


def _params(seed=0):
  rng = np.random.default_rng(seed)
  return (jnp.asarray(rng.normal(size=(12, 5)) * 0.5, jnp.float32),
          jnp.asarray(rng.normal(size=(5,)), jnp.float32))


def _per_sample_squared_grad_norms(d, x):
  norms = []
  for b in range(x.shape[0]):
    g = jax.grad(lambda xb: d(xb[None])[0])(x[b])
    norms.append(float(jnp.sum(g * g)))
  return np.asarray(norms)


def test_r1_matches_explicit_per_sample_gradients():
  params = _params(0)
  d = _mlp_discriminator(params)
  x = jnp.asarray(np.random.default_rng(1).normal(size=(5, 4, 3)),
                  jnp.float32)
  want = 0.5 * 10.0 * _per_sample_squared_grad_norms(d, x).mean()
  np.testing.assert_allclose(adv.r1_penalty(d, x), want, rtol=1e-5)
  np.testing.assert_allclose(
      jax.jit(lambda xx: adv.r1_penalty(d, xx, gamma=2.0))(x), want / 5,
      rtol=1e-5)
  # Closed form for a linear critic D(x) = <w, x>: gamma / 2 ||w||^2.
  w = jnp.arange(12.0).reshape(4, 3) / 10
  lin = lambda xx: jnp.sum(xx * w, axis=(1, 2))
  np.testing.assert_allclose(adv.r1_penalty(lin, x, gamma=4.0),
                             2.0 * float(jnp.sum(w * w)), rtol=1e-6)
  # Differentiable in the discriminator's parameters (double backprop).
  check_gradient(
      lambda w1, w2, xx: adv.r1_penalty(_mlp_discriminator((w1, w2)), xx),
      params[0], params[1], x)


def test_wgan_div_penalty_matches_its_definition():
  params = _params(2)
  d = _mlp_discriminator(params)
  rng = np.random.default_rng(3)
  real = jnp.asarray(rng.normal(size=(6, 4, 3)), jnp.float32)
  fake = jnp.asarray(rng.normal(size=(6, 4, 3)), jnp.float32)
  key = jax.random.key(7)
  eps = jax.random.uniform(key, (6, 1, 1))
  points = eps * real + (1 - eps) * fake
  np.testing.assert_allclose(adv.random_interpolates(real, fake, key),
                             points, rtol=1e-6)
  norms = _per_sample_squared_grad_norms(d, points)
  want = 2.0 * np.mean(norms ** 3)  # k = 2, p = 6: ||g||^6.
  np.testing.assert_allclose(adv.wgan_div_penalty(d, real, fake, key=key),
                             want, rtol=1e-4)
  np.testing.assert_allclose(
      adv.wgan_div_penalty(d, real, fake, key=key, k=1.0, p=2.0),
      norms.mean(), rtol=1e-4)
  # Interpolates lie between the pairs.
  assert (eps >= 0).all() and (eps <= 1).all()
  # Closed form for a linear critic: k ||w||^p wherever it is evaluated.
  w = jnp.full((4, 3), 0.5)
  lin = lambda xx: jnp.sum(xx * w, axis=(1, 2))
  np.testing.assert_allclose(adv.wgan_div_penalty(lin, real, fake, key=key),
                             2.0 * 3.0 ** 3, rtol=1e-5)
  # The critic and generator terms.
  rs, fs = jnp.array([1.0, 3.0]), jnp.array([-1.0, 0.0, 2.0])
  np.testing.assert_allclose(adv.wasserstein_discriminator_loss(rs, fs),
                             1 / 3 - 2.0, rtol=1e-6)
  np.testing.assert_allclose(adv.wasserstein_generator_loss(fs), -1 / 3,
                             rtol=1e-6)
  check_gradient(
      lambda w1, w2, r, f: adv.wgan_div_penalty(
          _mlp_discriminator((w1, w2)), r, f, key=key),
      params[0], params[1], real, fake)


def test_began_losses_and_controller():
  rng = np.random.default_rng(4)
  x = rng.random((3, 4, 4, 3)).astype(np.float32)
  dx = rng.random((3, 4, 4, 3)).astype(np.float32)
  err = adv.began_autoencoder_error(x, dx)
  np.testing.assert_allclose(err, np.abs(x - dx).mean(axis=(1, 2, 3)),
                             rtol=1e-6)
  real_err, fake_err = jnp.array([0.2, 0.4]), jnp.array([0.1, 0.3])
  state = adv.BeganState(k=jnp.asarray(0.25))
  np.testing.assert_allclose(
      adv.began_discriminator_loss(real_err, fake_err, state),
      0.3 - 0.25 * 0.2, rtol=1e-6)
  np.testing.assert_allclose(adv.began_generator_loss(fake_err), 0.2,
                             rtol=1e-6)
  # No gradient flows into k.
  g = jax.grad(lambda k: adv.began_discriminator_loss(
      real_err, fake_err, adv.BeganState(k=k)))(jnp.asarray(0.5))
  assert float(g) == 0.0
  # The update rule, step by step, against a Python loop; k stays in [0, 1].
  state = adv.began_init()
  k = 0.0
  update = jax.jit(lambda s, r, f: adv.began_update(s, r, f, gamma=0.5,
                                                    lambda_k=0.3))
  for step in range(60):
    real = rng.random(4).astype(np.float32)
    fake = rng.random(4).astype(np.float32) * (0.1 if step < 30 else 3.0)
    state, m_global = update(state, jnp.asarray(real), jnp.asarray(fake))
    balance = 0.5 * real.mean() - fake.mean()
    k = min(max(k + 0.3 * balance, 0.0), 1.0)
    np.testing.assert_allclose(float(state.k), k, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(float(m_global),
                               real.mean() + abs(balance), rtol=1e-5)
    assert 0.0 <= float(state.k) <= 1.0
  assert float(state.k) == 0.0  # Driven down to the lower bound at the end.


def test_began_controller_reaches_the_upper_bound():
  state = adv.began_init(0.9)
  for _ in range(5):
    state, _ = adv.began_update(state, jnp.ones(2), jnp.zeros(2),
                                lambda_k=0.1)
  assert float(state.k) == 1.0


def test_hinge_and_patch_losses_against_numpy():
  rng = np.random.default_rng(5)
  real = rng.normal(size=(2, 4, 4)).astype(np.float32)
  fake = rng.normal(size=(2, 4, 4)).astype(np.float32)
  np.testing.assert_allclose(
      adv.hinge_discriminator_loss(real, fake),
      np.maximum(0, 1 - real).mean() + np.maximum(0, 1 + fake).mean(),
      rtol=1e-6)
  np.testing.assert_allclose(adv.hinge_generator_loss(fake), -fake.mean(),
                             rtol=1e-6)
  bce_real, bce_fake = _softplus(-real), _softplus(fake)
  np.testing.assert_allclose(adv.patch_discriminator_loss(real, fake),
                             bce_real.mean() + bce_fake.mean(), rtol=1e-5)
  np.testing.assert_allclose(
      adv.patch_discriminator_loss(real, fake, reduction="sum"),
      bce_real.sum() + bce_fake.sum(), rtol=1e-5)
  mask = (rng.random((2, 4, 4)) > 0.4).astype(np.float32)
  np.testing.assert_allclose(
      adv.patch_discriminator_loss(real, fake, real_mask=mask,
                                   fake_mask=mask),
      (bce_real * mask).sum() / mask.sum()
      + (bce_fake * mask).sum() / mask.sum(), rtol=1e-5)
  np.testing.assert_allclose(adv.patch_generator_loss(fake, mask=mask),
                             (_softplus(-fake) * mask).sum() / mask.sum(),
                             rtol=1e-5)
  empty = np.zeros_like(mask)
  assert float(adv.patch_generator_loss(fake, mask=empty)) == 0.0
  check_gradient(lambda f: adv.patch_generator_loss(f, mask=mask), fake)
  with pytest.raises(ValueError, match="reduction"):
    adv.patch_generator_loss(fake, reduction="none")
