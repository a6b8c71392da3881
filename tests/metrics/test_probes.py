"""Tests for disent_jax.metrics.probes (JAX linear SVM / logistic probe)."""

import jax
import numpy as np
import pytest

from disent_jax.metrics import probes


def _np_objective_grad(w, b, x, y, c, loss, l2):
  """Plain numpy gradient of the probe objective (unit sample weights)."""
  f = x @ w + b
  onehot = np.eye(c)[y]
  n = x.shape[0]
  if loss == "svm":
    sign = 2 * onehot - 1
    margin = np.maximum(0.0, 1 - sign * f)
    df = -2 * sign * margin / n
  else:
    p = np.exp(f - f.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    df = (p - onehot) / n
  return x.T @ df + l2 * w, df.sum(0)


@pytest.mark.parametrize("loss", ["svm", "logistic"])
def test_fit_reaches_the_optimum_of_a_numpy_objective(loss):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(120, 5))
  y = rng.integers(0, 3, size=120)
  x[np.arange(120), y] += 1.0  # overlapping classes: a non-trivial optimum
  clf = jax.jit(probes.fit_linear_classifier,
                static_argnames=("num_classes", "loss"))(
                    x, y, num_classes=3, loss=loss, l2=1e-2, tolerance=1e-5)
  xs = (x - x.mean(0)) / x.std(0)
  np.testing.assert_allclose(clf.mean, x.mean(0), atol=1e-5)
  np.testing.assert_allclose(clf.scale, x.std(0), rtol=1e-4)
  gw, gb = _np_objective_grad(np.asarray(clf.weights, np.float64),
                              np.asarray(clf.bias, np.float64), xs, y, 3,
                              loss, 1e-2)
  # Stationary point of the convex objective = its minimiser.
  assert np.abs(gw).max() < 1e-3 and np.abs(gb).max() < 1e-3
  assert np.abs(np.asarray(clf.weights)).max() > 0.1


def test_probe_recovers_a_planted_linear_factor():
  rng = np.random.default_rng(1)
  z = rng.normal(size=(400, 8))
  a = rng.normal(size=(8, 4))
  labels = np.argmax(z @ a, -1) * 10 + 3  # arbitrary label values
  res = probes.probe_accuracy(z, labels, num_folds=5)
  assert res["mean"] > 0.9, res
  assert res["folds"].shape == (5,)


def test_probe_is_at_chance_on_noise():
  rng = np.random.default_rng(2)
  z = rng.normal(size=(400, 8))
  labels = rng.integers(0, 4, size=400)
  res = probes.probe_accuracy(z, labels, num_folds=5)
  assert 0.12 < res["mean"] < 0.38, res
  assert res["chance"] == pytest.approx(np.bincount(labels).max() / 400)


def test_stratified_folds_partition_and_balance():
  labels = np.repeat(np.arange(3), [20, 30, 50])
  folds = probes.stratified_folds(labels, num_folds=10, seed=3)
  assert folds.shape == labels.shape
  assert set(folds.tolist()) == set(range(10))
  for c, count in zip(range(3), [20, 30, 50]):
    per_fold = np.bincount(folds[labels == c], minlength=10)
    assert per_fold.max() - per_fold.min() <= 1
    assert per_fold.sum() == count


def test_fold_held_out_samples_do_not_leak():
  # Samples with weight zero must not influence the fit: replacing them by
  # garbage (other features, other labels) leaves the classifier unchanged.
  rng = np.random.default_rng(4)
  x = rng.normal(size=(60, 3))
  y = (x[:, 0] > 0).astype(int)
  w = np.r_[np.ones(30), np.zeros(30)]
  x2, y2 = x.copy(), y.copy()
  x2[30:] = 1e3
  y2[30:] = 1 - y2[30:]
  fit = jax.jit(probes.fit_linear_classifier,
                static_argnames=("num_classes", "loss"))
  a = fit(x, y, num_classes=2, sample_weight=w)
  b = fit(x2, y2, num_classes=2, sample_weight=w)
  np.testing.assert_allclose(a.weights, b.weights, atol=1e-4)
  np.testing.assert_allclose(a.bias, b.bias, atol=1e-4)
  with pytest.raises(ValueError):
    probes.probe_accuracy(x, y[:10])
