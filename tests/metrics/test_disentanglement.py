"""Tests for disent_jax.metrics.disentanglement: DS, W-consistency, MIG, DCI."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import ortho_group

from disent_jax.metrics import disentanglement as dm

_DIMS = {"id": 4, "exp": 3, "light": 2, "pose": 3}


def _sample(key, n):
  keys = jax.random.split(key, len(_DIMS))
  return {k: jax.random.normal(kk, (n, d))
          for kk, (k, d) in zip(keys, _DIMS.items())}


def _separable_generate(f):
  # Each factor drives its own output block through a different
  # invertible nonlinearity.
  return jnp.concatenate([f["id"] ** 3, jnp.tanh(f["exp"]), 2.0 * f["light"],
                          jnp.sinh(f["pose"])], -1)


def _separable_estimate(x):
  i, e, l = 4, 7, 9
  return {"id": jnp.cbrt(x[:, :i]), "exp": jnp.arctanh(x[:, i:e]),
          "light": x[:, e:l] / 2.0, "pose": jnp.arcsinh(x[:, l:])}


def _mixing_generate(f):
  # Every output block depends on every factor (first 2 dims of each).
  s = sum(f[k][:, :2] for k in _DIMS)
  return jnp.concatenate([f[k][:, :2] + 0.8 * (s - f[k][:, :2])
                          for k in _DIMS], -1)


def _mixing_estimate(x):
  return {k: x[:, 2 * j:2 * j + 2] for j, k in enumerate(_DIMS)}


def test_group_variance_and_ds_hand_values():
  rng = np.random.default_rng(0)
  e = rng.normal(size=(7, 5, 3))
  ref_var = np.array([1.0, 2.0, 4.0])
  want = (e.var(axis=1) / ref_var).mean()
  assert float(dm.group_variance(e, ref_var)) == pytest.approx(want, 1e-5)
  # sigma_a = 4, sigma_b = 1, sigma_c = 2: DS_a = 4/1 * 4/2 = 8.
  g = lambda s: np.sqrt(s) * np.array([[[1.0], [-1.0]]])  # var over K = s
  est = {"a": g(4.0), "b": g(1.0), "c": g(2.0)}
  assert float(dm.ds_from_estimates(est, varied="a")) == pytest.approx(8.0)
  assert float(dm.ds_from_estimates(est, varied="b")) == pytest.approx(
      1 / 8.0)
  with pytest.raises(ValueError):
    dm.ds_from_estimates(est, varied="z")


def test_ds_high_for_separable_low_for_mixing():
  key = jax.random.PRNGKey(0)
  kw = dict(sample_factors=_sample, num_groups=50, group_size=10)
  sep = dm.disentanglement_score(key, generate=_separable_generate,
                                 estimate=_separable_estimate, **kw)
  mix = dm.disentanglement_score(
      key, generate=_mixing_generate, estimate=_mixing_estimate, **kw)
  assert set(sep) == {f"DS/{k}" for k in _DIMS}
  assert min(sep.values()) > 1e6, sep
  assert max(mix.values()) < 10.0, mix
  # Mixing weight 0.8: sigma_j / sigma_i = 0.64 for each j, so DS is
  # (1 / 0.64) ** 3 ~ 3.8 up to sampling noise.
  for v in mix.values():
    assert v == pytest.approx(0.64 ** -3, rel=0.35)


def test_mean_pairwise_cosine_matches_loop():
  rng = np.random.default_rng(1)
  d = rng.normal(size=(3, 6, 5))
  d[0, 2] = 0.0  # a zero direction counts as orthogonal
  got = jax.jit(dm.mean_pairwise_cosine)(d)
  for p in range(3):
    vals = []
    for i in range(6):
      for j in range(6):
        if i != j:
          ni, nj = np.linalg.norm(d[p, i]), np.linalg.norm(d[p, j])
          vals.append(0.0 if ni == 0 or nj == 0 else
                      d[p, i] @ d[p, j] / (ni * nj))
    assert float(got[p]) == pytest.approx(np.mean(vals), abs=1e-5)


@pytest.mark.parametrize("mode", ["endpoints", "offset"])
def test_direction_consistency_linear_vs_bilinear(mode):
  key = jax.random.PRNGKey(1)
  a_mat = jax.random.normal(jax.random.PRNGKey(2), (12, 16))
  linear = lambda f: jnp.concatenate([f[k] for k in _DIMS], -1) @ a_mat
  # Bilinear: the direction of change of "exp" depends on "id".
  bilinear = lambda f: jnp.einsum("ni,nj->nij", f["exp"], f["id"]).reshape(
      f["id"].shape[0], -1)
  kw = dict(sample_factors=_sample, factor="exp", num_pairs=10,
            num_others=20, mode=mode)
  lin = dm.direction_consistency(key, mapping=linear, **kw)
  bil = dm.direction_consistency(key, mapping=bilinear, **kw)
  assert lin["mean"] == pytest.approx(1.0, abs=1e-4)
  assert lin["std"] < 1e-4
  assert bil["mean"] < 0.3, bil


def _np_mi(a, b):
  joint = np.zeros((a.max() + 1, b.max() + 1))
  np.add.at(joint, (a, b), 1.0)
  joint /= joint.sum()
  pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
  nz = joint > 0
  return (joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum()


def test_mutual_information_and_entropy_match_numpy():
  rng = np.random.default_rng(2)
  codes = rng.integers(0, 5, size=(300, 3))
  factors = np.stack([codes[:, 0] % 3, rng.integers(0, 4, 300)], -1)
  got = dm.mutual_information(codes, factors, num_code_bins=5,
                              num_factor_bins=4)
  for d in range(3):
    for k in range(2):
      assert float(got[d, k]) == pytest.approx(
          _np_mi(codes[:, d], factors[:, k]), abs=1e-5)
  ent = dm.discrete_entropy(factors, num_bins=4)
  p = np.bincount(factors[:, 1], minlength=4) / 300
  assert float(ent[1]) == pytest.approx(-(p * np.log(p)).sum(), abs=1e-5)
  x = np.array([[0.0], [0.49], [0.5], [1.0]])
  np.testing.assert_array_equal(dm.discretize(x, num_bins=2)[:, 0],
                                [0, 0, 1, 1])


def _np_discretize(x, bins):
  lo, hi = x.min(0), x.max(0)
  return np.clip(np.floor((x - lo) / ((hi - lo) / bins)), 0,
                 bins - 1).astype(int)


def test_mig_matches_numpy_reference_on_random_data():
  rng = np.random.default_rng(6)
  v = rng.normal(size=(500, 2))
  z = np.c_[v[:, 0] + 0.3 * rng.normal(size=500), v[:, 1] ** 3,
            rng.normal(size=500)]
  got = dm.mig(z, v, num_bins=10)
  zc, vc = _np_discretize(z, 10), _np_discretize(v, 10)
  mi = np.array([[_np_mi(zc[:, d], vc[:, k]) for k in range(2)]
                 for d in range(3)])
  ent = np.array([_np_mi(vc[:, k], vc[:, k]) for k in range(2)])
  top = np.sort(mi, axis=0)[::-1]
  np.testing.assert_allclose(got["mi"], mi, atol=1e-4)
  np.testing.assert_allclose(got["per_factor"], (top[0] - top[1]) / ent,
                             atol=1e-4)
  assert got["MIG"] == pytest.approx(((top[0] - top[1]) / ent).mean(),
                                     abs=1e-4)


def test_mig_and_dci_separable_vs_mixing():
  rng = np.random.default_rng(3)
  v = rng.uniform(-1, 1, size=(3000, 4))
  separable = v[:, [2, 0, 3, 1]] * np.array([2.0, -1.0, 0.5, 3.0])
  separable = np.c_[separable, rng.normal(size=(3000, 2)) * 0.01]
  mixing = v @ ortho_group.rvs(4, random_state=4)
  m_sep = dm.mig(separable, v)
  m_mix = dm.mig(mixing, v)
  assert m_sep["MIG"] > 0.8, m_sep["MIG"]
  assert m_mix["MIG"] < 0.3, m_mix["MIG"]
  d_sep = dm.dci(separable, v)
  d_mix = dm.dci(mixing, v)
  assert d_sep["disentanglement"] > 0.95 and d_sep["completeness"] > 0.95
  assert d_mix["disentanglement"] < 0.6 and d_mix["completeness"] < 0.6
  assert d_sep["informativeness"] > 0.99
  assert d_mix["informativeness"] > 0.99  # mixing loses no information
  # Discrete factors (labels) are accepted as they are.
  labels = rng.integers(0, 5, size=(3000, 2))
  m = dm.mig(labels + rng.normal(size=labels.shape) * 0.01, labels,
             discrete_factors=True)
  assert m["MIG"] > 0.8


def test_dci_from_importance_hand_values():
  dci_fn = jax.jit(dm.dci_from_importance)
  eye = dci_fn(np.eye(3))
  assert float(eye["disentanglement"]) == pytest.approx(1.0)
  assert float(eye["completeness"]) == pytest.approx(1.0)
  flat = dci_fn(np.ones((3, 3)))
  assert float(flat["disentanglement"]) == pytest.approx(0.0, abs=1e-6)
  assert float(flat["completeness"]) == pytest.approx(0.0, abs=1e-6)
  # One code informs both of two factors equally, the other nothing:
  # D = 0 (weight 1 on an entropy-1 row); C = 1 (each factor uses 1 code).
  r = np.array([[1.0, 1.0], [0.0, 0.0]])
  half = dci_fn(r)
  assert float(half["disentanglement"]) == pytest.approx(0.0, abs=1e-6)
  assert float(half["completeness"]) == pytest.approx(1.0)
  # Ridge importances against numpy least squares on standardised data.
  rng = np.random.default_rng(5)
  z, f = rng.normal(size=(200, 3)), rng.normal(size=(200, 2))
  _, coef = jax.jit(dm.ridge_importance)(z, f, l2=0.0)
  zs = (z - z.mean(0)) / z.std(0)
  fs = (f - f.mean(0)) / f.std(0)
  np.testing.assert_allclose(coef, np.linalg.lstsq(zs, fs, rcond=None)[0],
                             atol=1e-5)
