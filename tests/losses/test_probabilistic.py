"""Tests for disent_jax.losses.probabilistic (scipy references)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate
from scipy import stats

from disent_jax.losses import probabilistic as prob

from testutil.gradcheck import check_gradient


def _kl_by_quadrature(mq, sq, mp, sp):
  q, p = stats.norm(mq, sq), stats.norm(mp, sp)
  value, _ = integrate.quad(lambda z: q.pdf(z) * (q.logpdf(z) - p.logpdf(z)),
                            -40, 40, limit=200)
  return value


def test_gaussian_kl_matches_numerical_integration():
  mean = np.array([[0.3, -1.2, 0.0], [2.0, 0.5, -0.7]], dtype=np.float32)
  log_var = np.array([[0.1, -0.8, 0.0], [1.2, -2.0, 0.4]], dtype=np.float32)
  got = np.asarray(jax.jit(prob.gaussian_kl)(mean, log_var))
  expected = np.zeros(2)
  for b in range(2):
    for d in range(3):
      expected[b] += _kl_by_quadrature(mean[b, d],
                                       np.exp(0.5 * log_var[b, d]), 0.0, 1.0)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(prob.gaussian_kl(np.zeros(4), np.zeros(4)), 0)
  # By hand: N(1, 1) -> 1/2; N(0, 2) -> (2 - 1 - log 2) / 2.
  np.testing.assert_allclose(
      prob.gaussian_kl(jnp.array([1.0, 0.0]), jnp.array([0.0, np.log(2.0)])),
      0.5 + 0.5 * (1 - np.log(2.0)), rtol=1e-6)
  check_gradient(lambda m: jnp.sum(prob.gaussian_kl(m, log_var)), mean)
  check_gradient(lambda lv: jnp.sum(prob.gaussian_kl(mean, lv)), log_var)


def test_gaussian_kl_between_matches_integration_and_prior_case():
  rng = np.random.default_rng(0)
  mq, mp = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
  lq, lp = rng.normal(size=(2, 3)) * 0.5, rng.normal(size=(2, 3)) * 0.5
  got = prob.gaussian_kl_between(mq, lq, mp, lp)
  expected = np.zeros(2)
  for b in range(2):
    for d in range(3):
      expected[b] += _kl_by_quadrature(mq[b, d], np.exp(0.5 * lq[b, d]),
                                       mp[b, d], np.exp(0.5 * lp[b, d]))
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
  # Against the standard normal it is gaussian_kl; zero for equal inputs.
  np.testing.assert_allclose(
      prob.gaussian_kl_between(mq, lq, np.zeros(3), np.zeros(3)),
      prob.gaussian_kl(mq, lq), rtol=1e-5)
  np.testing.assert_allclose(prob.gaussian_kl_between(mq, lq, mq, lq), 0,
                             atol=1e-6)
  check_gradient(lambda m: jnp.sum(prob.gaussian_kl_between(m, lq, mp, lp)),
                 mq)
  with pytest.raises(ValueError, match="same shape"):
    prob.gaussian_kl(jnp.zeros(3), jnp.zeros(4))


def test_linear_decay_is_the_public_code_schedule():
  np.testing.assert_allclose(prob.linear_decay(0.0, duration=350.0), 1.0)
  np.testing.assert_allclose(prob.linear_decay(175.0, duration=350.0), 0.5)
  np.testing.assert_allclose(prob.linear_decay(400.0, duration=350.0), 0.0)
  np.testing.assert_allclose(prob.linear_decay(10.0, duration=0.0), 1.0)
  t = jnp.arange(0.0, 10.0)
  np.testing.assert_allclose(jax.jit(lambda s: prob.linear_decay(
      s, duration=4.0))(t), np.maximum(0, (4 - np.arange(10)) / 4))


def test_linear_warmup_and_cyclical_annealing():
  t = np.arange(0.0, 12.0)
  np.testing.assert_allclose(prob.linear_warmup(t, duration=4.0, delay=2.0),
                             np.clip((t - 2) / 4, 0, 1))
  np.testing.assert_allclose(prob.linear_warmup(t, duration=0.0, delay=3.0),
                             (t >= 3).astype(float))
  # Period 4, ramp over the first half: 0, .5, 1, 1, 0, .5, ...
  np.testing.assert_allclose(prob.cyclical_annealing(t, period=4.0),
                             np.tile([0.0, 0.5, 1.0, 1.0], 3))
  with pytest.raises(ValueError, match="period"):
    prob.cyclical_annealing(t, period=0.0)
  with pytest.raises(ValueError, match="ramp_fraction"):
    prob.cyclical_annealing(t, period=2.0, ramp_fraction=0.0)
