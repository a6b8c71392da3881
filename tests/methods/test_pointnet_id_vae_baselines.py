"""Paper 002's baselines and recognition protocol against numpy."""

import numpy as np

from disent_jax.methods.pointnet_id_vae import baselines as bl
from disent_jax.methods.pointnet_id_vae import evaluation


def test_ridge_matches_the_normal_equations():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(40, 6))
  y = rng.normal(size=(40, 4))
  alpha = 0.3
  xc, yc = x - x.mean(0), y - y.mean(0)
  s = np.linalg.svd(xc, compute_uv=False)
  lam = alpha * np.mean(s ** 2)
  w = np.linalg.solve(xc.T @ xc + lam * np.eye(6), xc.T @ yc)
  want = y.mean(0) + (x[:5] - x.mean(0)) @ w
  np.testing.assert_allclose(bl.fit_ridge(x, y, alpha=alpha)(x[:5]), want,
                             rtol=1e-8, atol=1e-10)
  # Wide inputs (N < D) go through the other Gram matrix; alpha -> 0 is
  # least squares, which interpolates the training targets.
  xw = rng.normal(size=(10, 30))
  np.testing.assert_allclose(bl.fit_ridge(xw, y[:10], alpha=0.0)(xw),
                             y[:10], atol=1e-6)


def test_pca_reconstruction_matches_a_truncated_svd():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(30, 12)) @ np.diag(np.linspace(3, 0.1, 12))
  u, s, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
  want = x.mean(0) + (u[:, :4] * s[:4]) @ vt[:4]
  np.testing.assert_allclose(bl.fit_pca(x, components=4)(x), want,
                             atol=1e-8)


def test_subject_means_and_expressive_mask():
  v = np.arange(4 * 2 * 3, dtype=np.float64).reshape(4, 2, 3)
  subjects = np.array([0, 1, 0, 1])
  means = bl.subject_means(v, subjects)
  np.testing.assert_allclose(means[0], (v[0] + v[2]) / 2)
  np.testing.assert_allclose(means[3], (v[1] + v[3]) / 2)
  neutral = v.copy()
  neutral[1] += 0.5
  np.testing.assert_array_equal(bl.expressive_mask(v, neutral),
                                [False, True, False, False])


def _linear_world(seed=0, subjects=12, per=6, v=20):
  """Faces = neutral(identity) + expression, both linear in few factors."""
  bases = np.random.default_rng(100)  # One world; seeds pick its faces.
  id_basis = bases.normal(size=(4, v * 3))
  ex_basis = bases.normal(size=(3, v * 3))
  rng = np.random.default_rng(seed)
  subj = np.repeat(np.arange(subjects), per)
  neutral = (rng.normal(size=(subjects, 4)) @ id_basis)[subj]
  weights = rng.normal(size=(len(subj), 3))
  faces = neutral + weights @ ex_basis
  return {"vertices": faces.reshape(-1, v, 3),
          "neutral": neutral.reshape(-1, v, 3), "subject": subj}


def test_baselines_on_a_linear_world():
  train = _linear_world(0)
  test = _linear_world(1, subjects=4)
  b = bl.Baselines.fit(train, components=7)
  m = b.metrics(test)
  # The world is exactly linear: 7 components reconstruct it, and the
  # neutral is a linear function of the face.
  assert m["baseline_pca/E_rec/mean"] < 1e-6
  assert m["baseline_ridge_neutral/AVD_neu/mean"] < 1e-3
  assert m["baseline_mean_face/E_dis/mean"] < 1e-6
  # The input-as-neutral error is the expression's size.
  want = np.linalg.norm(test["vertices"] - test["neutral"], axis=-1).mean()
  np.testing.assert_allclose(m["baseline_input_as_neutral/AVD_neu/mean"],
                             want, rtol=1e-6)
  assert "baseline_input_as_neutral/E_rec/mean" not in m
  assert "baseline_pca/AVD_neu/mean" not in m


def test_rank1_across_expressions_excludes_the_probe_sequence():
  # Subject 0's two sequences are far apart; each probe's nearest face is
  # a same-sequence copy, which the cross-expression protocol excludes.
  codes = np.array([[1.0, 0.0], [1.0, 0.01],     # subject 0, sequence a
                    [0.0, 1.0], [0.01, 1.0],     # subject 0, sequence b
                    [0.7, 0.7], [0.71, 0.7]])    # subject 1, one sequence
  subjects = np.array([0, 0, 0, 0, 1, 1])
  groups = evaluation.sequence_groups(subjects, np.array([0, 0, 1, 1, 0, 0]))
  assert evaluation.rank1_accuracy(codes, subjects) == 1.0
  # Across expressions the nearest other-sequence face of subject 0's
  # probes is subject 1's (cosine 0.7 > 0.01); subject 1 has no other
  # sequence, so its probes do not count.
  assert evaluation.rank1_accuracy(codes, subjects, groups=groups) == 0.0
