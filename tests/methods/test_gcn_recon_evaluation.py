"""Paper 003's linear baselines: pixel pooling and ridge regressions."""

import numpy as np

from disent_jax.data import onthefly
from disent_jax.methods.gcn_recon import evaluation


def test_ridge_features_average_pool_to_32_pixels():
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(3, 64, 64, 3))
  want = np.stack([[[images[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, c].mean()
                     for c in range(3)] for j in range(32)]
                   for i in range(32) for n in [0]]).reshape(1, -1)
  got = evaluation.ridge_features(images)
  assert got.shape == (3, 32 * 32 * 3)
  np.testing.assert_allclose(got[:1], want, rtol=1e-12)
  u8 = (images * 255).round().astype(np.uint8)
  np.testing.assert_allclose(evaluation.ridge_features(u8),
                             evaluation.ridge_features(u8 / 255.0))


def _linear_world(n, rng, mix, lm_map, coeff_map, num_identity):
  z = rng.normal(size=(n, mix.shape[0]))
  images = 0.5 + 0.05 * (z @ mix).reshape(n, 32, 32, 3)
  coeffs = z @ coeff_map
  return {"image": images,
          "landmarks_2d": (16 + z @ lm_map).reshape(n, 68, 2),
          "mm_identity": coeffs[:, :num_identity],
          "mm_expression": coeffs[:, num_identity:],
          "subject": np.arange(n) // 4,
          "labelled": np.arange(n) % 2 == 0}


def test_ridge_baselines_recover_a_linear_world_on_new_images():
  mm = onthefly.world_morphable("1k")
  rng = np.random.default_rng(1)
  k = 8
  mix = rng.normal(size=(k, 32 * 32 * 3))
  lm_map = rng.normal(size=(k, 136))
  coeff_map = rng.normal(size=(k, mm.num_identity + mm.num_expression))
  train = _linear_world(400, rng, mix, lm_map, coeff_map,
                        mm.num_identity)
  test = _linear_world(50, rng, mix, lm_map, coeff_map,
                        mm.num_identity)
  b = evaluation.Baselines.fit(train, mm)
  lm = b.ridge_landmarks_2d(evaluation.ridge_features(test["image"]))
  np.testing.assert_allclose(lm, test["landmarks_2d"], atol=0.05)
  feats = evaluation.ridge_features(test["image"])
  shapes = b.ridge_shapes(feats, mm)
  want = np.asarray(evaluation.mm_lib.reconstruct(
      mm, test["mm_identity"], test["mm_expression"]))
  assert shapes.shape == want.shape
  err = np.linalg.norm(shapes - want, axis=-1).mean()
  spread = np.linalg.norm(want - want.mean(0), axis=-1).mean()
  assert err < 0.02 * spread
  # Without labelled images there is no coefficient ridge.
  train["labelled"] = np.zeros(400, bool)
  assert evaluation.Baselines.fit(train, mm).ridge_shapes(
      feats, mm) is None
