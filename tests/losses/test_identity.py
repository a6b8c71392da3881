"""Tests for disent_jax.losses.identity (numpy references, Wen et al.)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from disent_jax.losses import identity

from testutil.gradcheck import check_gradient


def _cos(a, b):
  return np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1)
                              * np.linalg.norm(b, axis=-1))


def test_cosine_identity_loss_against_numpy_and_margin():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(6, 8)).astype(np.float32)
  b = (a + rng.normal(size=(6, 8)) * 0.8).astype(np.float32)
  cos = _cos(a, b)
  np.testing.assert_allclose(identity.cosine_similarity(a, b), cos,
                             rtol=1e-5)
  np.testing.assert_allclose(jax.jit(identity.cosine_identity_loss)(a, b),
                             np.mean(1 - cos), rtol=1e-5)
  np.testing.assert_allclose(
      identity.cosine_identity_loss(a, b, margin=0.3, reduction="none"),
      np.maximum(1 - cos - 0.3, 0), rtol=1e-5, atol=1e-7)
  # By hand: orthogonal vectors have loss 1; within the margin, 0 and no
  # gradient.
  e1, e2 = jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 2.0]])
  assert float(identity.cosine_identity_loss(e1, e2)) == 1.0
  close = jnp.array([[1.0, 0.1]])
  assert float(identity.cosine_identity_loss(close, e1, margin=0.3)) == 0.0
  g = jax.grad(lambda x: identity.cosine_identity_loss(x, e1, margin=0.3))(
      close)
  np.testing.assert_array_equal(g, 0.0)
  # Scale invariant; zero vectors give finite values.
  np.testing.assert_allclose(identity.cosine_identity_loss(3 * a, b),
                             identity.cosine_identity_loss(a, b), rtol=1e-5)
  assert np.isfinite(float(identity.cosine_identity_loss(
      jnp.zeros((1, 4)), jnp.ones((1, 4)))))
  check_gradient(lambda x: identity.cosine_identity_loss(x, b, margin=0.1),
                 a)


def test_softmax_cross_entropy_against_scipy():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(5, 7)).astype(np.float32)
  labels = np.array([0, 6, 3, 3, 1])
  want = -special.log_softmax(logits, axis=-1)[np.arange(5), labels]
  np.testing.assert_allclose(
      identity.softmax_cross_entropy(logits, labels, reduction="none"), want,
      rtol=1e-5)
  np.testing.assert_allclose(
      jax.jit(identity.softmax_cross_entropy)(logits, labels), want.mean(),
      rtol=1e-5)
  # Uniform logits: log K.
  np.testing.assert_allclose(
      identity.softmax_cross_entropy(jnp.zeros((2, 4)), jnp.array([1, 2])),
      np.log(4.0), rtol=1e-6)
  check_gradient(lambda l: identity.softmax_cross_entropy(l, labels), logits)
  with pytest.raises(ValueError, match="labels"):
    identity.softmax_cross_entropy(logits, labels[:3])


def _wen_update(features, labels, centers, alpha):
  """Wen et al. 2016, eq. (4), written as a loop over classes."""
  new = centers.copy()
  for j in range(centers.shape[0]):
    sel = labels == j
    delta = (centers[j] - features[sel]).sum(0) / (1 + sel.sum())
    new[j] = centers[j] - alpha * delta
  return new


def test_center_loss_and_update_follow_wen_et_al():
  rng = np.random.default_rng(2)
  features = rng.normal(size=(7, 4)).astype(np.float32)
  labels = np.array([0, 2, 2, 2, 4, 0, 2])  # 1 and 3 are absent.
  centers = rng.normal(size=(5, 4)).astype(np.float32)
  want = 0.5 * np.sum((features - centers[labels]) ** 2)
  np.testing.assert_allclose(
      jax.jit(identity.center_loss)(features, labels, centers), want,
      rtol=1e-5)
  np.testing.assert_allclose(
      identity.center_loss(features, labels, centers, reduction="mean"),
      want / 7, rtol=1e-5)
  new = jax.jit(identity.center_update)(features, labels, centers)
  np.testing.assert_allclose(new, _wen_update(features, labels, centers, 0.5),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(new[1], centers[1])  # Absent classes stay.
  np.testing.assert_array_equal(new[3], centers[3])
  # With alpha = 1 a class seen n times moves n / (n + 1) of the way to its
  # batch mean (class 2, n = 4).
  moved = identity.center_update(features, labels, centers, alpha=1.0)
  mean2 = features[labels == 2].mean(0)
  np.testing.assert_allclose(moved[2],
                             centers[2] + 0.8 * (mean2 - centers[2]),
                             rtol=1e-5, atol=1e-6)
  # The loss pulls features to their centres and gives centres no gradient.
  g_f, g_c = jax.grad(identity.center_loss, argnums=(0, 2))(
      jnp.asarray(features), jnp.asarray(labels), jnp.asarray(centers))
  np.testing.assert_allclose(g_f, features - centers[labels], rtol=1e-5)
  np.testing.assert_array_equal(g_c, 0.0)
  check_gradient(lambda f: identity.center_loss(f, labels, centers),
                 features)


def test_center_update_converges_to_class_means():
  rng = np.random.default_rng(3)
  features = rng.normal(size=(6, 3)).astype(np.float32)
  labels = np.array([0, 0, 1, 1, 1, 2])
  centers = jnp.zeros((3, 3))
  for _ in range(60):
    centers = identity.center_update(features, labels, centers)
  for j in range(3):
    np.testing.assert_allclose(centers[j], features[labels == j].mean(0),
                               atol=1e-5)


def test_center_loss_rejects_bad_inputs():
  with pytest.raises(ValueError, match="integers"):
    identity.center_loss(jnp.zeros((2, 3)), jnp.zeros(2), jnp.zeros((4, 3)))
  with pytest.raises(ValueError, match="centers"):
    identity.center_update(jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32),
                           jnp.zeros((4, 5)))
