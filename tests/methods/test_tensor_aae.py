"""Paper 000 method: networks, objective and data against references."""

import logging

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from disent_jax.methods.tensor_aae import baselines
from disent_jax.methods.tensor_aae import data as data_lib
from disent_jax.methods.tensor_aae import model as model_lib
from disent_jax.methods.tensor_aae import objective
from disent_jax.ops import sh_lighting


def _np_pool(x):
  b, h, w, c = x.shape
  pooled = np.zeros((b, h // 2, w // 2, c), x.dtype)
  arg = np.zeros((b, h // 2, w // 2, c), int)
  for bi in range(b):
    for i in range(h // 2):
      for j in range(w // 2):
        for ci in range(c):
          win = x[bi, 2 * i:2 * i + 2, 2 * j:2 * j + 2, ci].reshape(4)
          pooled[bi, i, j, ci] = win.max()
          arg[bi, i, j, ci] = int(np.argmax(win))
  return pooled, arg


def test_max_pool_and_unpool_match_a_loop():
  x = np.random.default_rng(0).normal(size=(2, 4, 6, 3)).astype(np.float32)
  pooled, switches = model_lib.max_pool_with_switches(jnp.asarray(x))
  ref, arg = _np_pool(x)
  np.testing.assert_array_equal(np.asarray(pooled), ref)
  np.testing.assert_array_equal(np.argmax(np.asarray(switches), axis=3), arg)
  up = np.asarray(model_lib.max_unpool(pooled, switches))
  # The maxima go back where they were; everything else is zero.
  np.testing.assert_array_equal(up[up != 0], x[up != 0])
  np.testing.assert_array_equal(np.sort(up[up != 0]), np.sort(ref.ravel()))
  with pytest.raises(ValueError, match="even"):
    model_lib.max_pool_with_switches(jnp.zeros((1, 3, 4, 1)))


def test_normal_head_is_unit_inside_the_disc():
  out = jnp.array([[0.3, -0.4], [0.0, 0.0], [2.0, 0.0]])
  n = np.asarray(model_lib.normals_from_xy(out))
  np.testing.assert_allclose(np.linalg.norm(n[:2], axis=-1), 1.0, atol=1e-4)
  assert n[1, 2] == pytest.approx(1.0, abs=1e-4)
  np.testing.assert_allclose(n[2], [1.0, 0.0, 1e-4], atol=1e-6)


_SIZES = model_lib.Sizes(image_size=16, widths=(4, 4, 2), code=8,
                         background=4, mask=4, light=9, identity=4,
                         expression=3, num_vertices=5, fit_identity=6,
                         fit_expression=2)


@pytest.fixture(scope="module")
def tiny_ae():
  ae = model_lib.TensorAutoencoder(_SIZES)
  x = jax.random.uniform(jax.random.PRNGKey(0), (3, 16, 16, 3))
  params = ae.init(jax.random.PRNGKey(1), x)["params"]
  return ae, params, x


def test_frontal_streams_are_eq_1_and_eq_5(tiny_ae):
  ae, params, x = tiny_ae
  out, lat = ae.apply({"params": params}, x)
  q = np.asarray(params["texture_core"], np.float64)  # [3 S^2, 9 * 3 * 4]
  z_l, z_e, z_i = (np.asarray(lat[k], np.float64)
                   for k in ("light", "expression", "identity"))
  kr = np.einsum("bl,be,bi->blei", z_l, z_e, z_i).reshape(3, -1)
  np.testing.assert_allclose(np.asarray(out["frontal"]).reshape(3, -1),
                             kr @ q.T, rtol=1e-4, atol=1e-5)
  # Eq. 5: the light latent replaced by (1/k_l) 1.
  ones = np.full_like(z_l, 1.0 / 9.0)
  kr5 = np.einsum("bl,be,bi->blei", ones, z_e, z_i).reshape(3, -1)
  np.testing.assert_allclose(np.asarray(out["frontal_normals"]).reshape(3, -1),
                             kr5 @ q.T, rtol=1e-4, atol=1e-5)
  b = np.asarray(params["shape_core"], np.float64)
  np.testing.assert_allclose(
      np.asarray(out["shape"]),
      np.einsum("be,bi->bei", z_e, z_i).reshape(3, -1) @ b.T,
      rtol=1e-4, atol=1e-5)


def test_image_is_the_composite_and_the_shading_the_sh_irradiance(tiny_ae):
  ae, params, x = tiny_ae
  out, _ = ae.apply({"params": params}, x)
  m = np.asarray(out["mask"])
  expected = np.clip(m * np.asarray(out["face"])
                     + (1 - m) * np.asarray(out["background"]), 0, 1)
  np.testing.assert_allclose(np.asarray(out["image"]), expected, atol=1e-6)
  irr = np.asarray(sh_lighting.irradiance(out["normals"],
                                          out["sh"][:, None, None]))
  np.testing.assert_allclose(np.asarray(out["shading"]),
                             np.maximum(irr, 0), atol=1e-5)


def test_pose_latent_rotates_the_feature(tiny_ae):
  ae, params, x = tiny_ae
  lat, switches = ae.apply({"params": params}, x,
                           method=model_lib.TensorAutoencoder.encode)
  # R = reshape(z_p) rotates f = z_exp ⊙ z_id before the image decoders;
  # the frontal and shape streams do not see it.
  eye = dict(lat, pose=jnp.broadcast_to(jnp.eye(3).reshape(1, 9), (3, 9)))
  rot = jnp.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
  turned = dict(lat, pose=jnp.broadcast_to(rot.reshape(1, 9), (3, 9)))
  dec = lambda l: ae.apply({"params": params}, l, switches,
                           method=model_lib.TensorAutoencoder.decode)
  a, b = dec(eye), dec(turned)
  np.testing.assert_allclose(np.asarray(a["rotation"][0]), np.eye(3))
  assert not np.allclose(np.asarray(a["normals"]), np.asarray(b["normals"]))
  # The frontal and shape streams ignore the pose.
  np.testing.assert_allclose(np.asarray(a["frontal"]),
                             np.asarray(b["frontal"]))
  np.testing.assert_allclose(np.asarray(a["shape"]), np.asarray(b["shape"]))


def test_decoders_unpool_with_the_edited_images_switches(tiny_ae):
  ae, params, x = tiny_ae
  lat, sw = ae.apply({"params": params}, x,
                     method=model_lib.TensorAutoencoder.encode)
  lat2, sw2 = ae.apply({"params": params}, x[::-1],
                       method=model_lib.TensorAutoencoder.encode)
  dec = lambda l, s: ae.apply({"params": params}, l, s,
                              method=model_lib.TensorAutoencoder.decode)
  mixed = dict(lat, mask=lat2["mask"])
  own, other = dec(mixed, sw), dec(mixed, sw2)
  assert not np.allclose(np.asarray(own["mask"]), np.asarray(other["mask"]))
  with pytest.raises(ValueError, match="images must be"):
    ae.apply({"params": params}, jnp.zeros((1, 8, 8, 3)))


def test_sizes_reject_a_feature_that_cannot_be_rotated():
  with pytest.raises(ValueError, match="multiple of 3"):
    model_lib.Sizes(identity=4, expression=5).validate()


def _batch(b=4, s=16, v=5, near=(1, 0, 1, 0)):
  rng = np.random.default_rng(1)
  return {
      "image": jnp.asarray(rng.uniform(size=(b, s, s, 3)), jnp.float32),
      "fit_rotation": jnp.broadcast_to(jnp.eye(3), (b, 3, 3)),
      "fit_identity": jnp.asarray(rng.normal(size=(b, 6)), jnp.float32),
      "fit_expression": jnp.asarray(rng.normal(size=(b, 2)), jnp.float32),
      "fit_shape": jnp.asarray(rng.normal(size=(b, 3 * v)), jnp.float32),
      "fit_normals": jnp.asarray(rng.normal(size=(b, s, s, 3)), jnp.float32),
      "fit_mask": jnp.asarray(rng.uniform(size=(b, s, s, 1)) > 0.3,
                              jnp.float32),
      "fit_sh": jnp.asarray(rng.normal(size=(b, 27)), jnp.float32),
      "near_frontal": jnp.asarray(near, jnp.float32),
  }


def _targets(batch):
  return objective.Targets.from_arrays(
      {k: np.asarray(v) for k, v in batch.items()})


def test_targets_standardise_with_training_statistics():
  batch = _batch()
  t = _targets(batch)
  z = np.asarray(t.identity(batch["fit_identity"]))
  np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
  np.testing.assert_allclose(z.std(0), 1, atol=1e-4)
  shape = np.asarray(t.shape(batch["fit_shape"]))
  assert np.sqrt(np.mean(shape ** 2)) == pytest.approx(1.0, rel=1e-4)
  np.testing.assert_allclose(np.asarray(t.unshape(t.shape(
      batch["fit_shape"]))), np.asarray(batch["fit_shape"]), atol=1e-5)


def test_frontal_terms_use_near_frontal_images_only(tiny_ae):
  ae, params, _ = tiny_ae
  batch = _batch()
  targets = _targets(batch)

  def frontal_terms(p, b):
    out, lat = ae.apply({"params": p}, b["image"])
    t = objective.generator_terms(out, lat, b, targets=targets)
    return t["frontal"] + t["frontal_normals"], (t, out)

  (_, (terms, out)) = frontal_terms(params, batch)
  x, m = np.asarray(batch["image"]), np.asarray(batch["fit_mask"])
  sq = np.square(np.asarray(out["frontal"]) - x)
  per = (sq * m).sum((1, 2, 3)) / np.maximum(3 * m.sum((1, 2, 3)), 1e-9)
  # The masked mean over channels counts each pixel's three channels.
  expected = per[[0, 2]].mean()
  assert float(terms["frontal"]) == pytest.approx(expected, rel=1e-4)
  # No near-frontal sample: E_f = E_n = 0 with zero gradient to Q.
  none = dict(batch, near_frontal=jnp.zeros(4))
  grads, (terms0, _) = jax.grad(frontal_terms, has_aux=True)(params, none)
  assert float(terms0["frontal"]) == 0.0
  assert float(terms0["frontal_normals"]) == 0.0
  assert float(jnp.abs(grads["texture_core"]).max()) == 0.0


def test_weights_name_the_bad_key():
  cfg = ml_collections.ConfigDict({"recon": 1.0, "frontl": 1.0})
  with pytest.raises(ValueError, match="loss.frontl"):
    objective.Weights.from_config(cfg)
  cfg = ml_collections.ConfigDict({"recon": -1.0})
  with pytest.raises(ValueError, match="loss.recon"):
    objective.Weights.from_config(cfg)
  w = objective.Weights()
  terms = {"recon": jnp.float32(2.0), "adversarial": jnp.float32(3.0)}
  assert float(objective.weighted_total(terms, w, adversarial_scale=0.0)
               ) == pytest.approx(2.0)
  assert float(objective.weighted_total(terms, w)) == pytest.approx(2.3)


# ---------------------------------------------------------------- data


def test_sh_fit_recovers_the_light_of_a_lambertian_hemisphere():
  rng = np.random.default_rng(3)
  s = 24
  n = rng.normal(size=(s, s, 3))
  n[..., 2] = np.abs(n[..., 2]) + 0.2
  n /= np.linalg.norm(n, axis=-1, keepdims=True)
  albedo = rng.uniform(0.3, 0.9, size=(s, s, 3))
  light = np.asarray(data_lib.sh_prior()) + 0.05 * rng.normal(size=(3, 9))
  image = albedo * np.asarray(sh_lighting.irradiance(
      jnp.asarray(n, jnp.float32), jnp.asarray(light, jnp.float32)))
  mask = np.ones((s, s, 1), np.float32)
  fit = data_lib.fit_sh(*(jnp.asarray(a, jnp.float32)
                          for a in (image, albedo, n, mask)), ridge=1e-6)
  np.testing.assert_allclose(np.asarray(fit).reshape(3, 9), light,
                             atol=2e-3)
  # A strong prior pulls the fit to the prior mean.
  far = data_lib.fit_sh(*(jnp.asarray(a, jnp.float32)
                          for a in (image, albedo, n, mask)), ridge=1e6)
  np.testing.assert_allclose(np.asarray(far).reshape(3, 9),
                             data_lib.sh_prior(), atol=1e-4)


def test_downsample_is_a_box_average():
  x = np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1)
  y = data_lib.downsample_images(x, size=2)
  np.testing.assert_allclose(y[0, 0, 0, 0], x[0, :2, :2, 0].mean())
  np.testing.assert_allclose(y[1, 1, 0, 0], x[1, 2:, :2, 0].mean())
  with pytest.raises(ValueError, match="downsample"):
    data_lib.downsample_images(x, size=3)


def test_data_config_names_the_bad_key():
  with pytest.raises(ValueError, match="data.size"):
    data_lib.DataConfig(size=24, render_size=64).validate()
  with pytest.raises(ValueError, match="data.render_size"):
    data_lib.DataConfig(render_size=48).validate()
  with pytest.raises(ValueError, match="data.colour"):
    data_lib.DataConfig.from_config(ml_collections.ConfigDict({"colour": 1}))


_DATA = dict(num_subjects=3, num_test_subjects=2, images_per_subject=4)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
  cache = tmp_path_factory.mktemp("taae_cache")
  cfg = data_lib.DataConfig(cache_dir=str(cache), **_DATA)
  return cfg, data_lib.make_sources(cfg, progress=False)


def test_splits_hold_disjoint_subjects(sources):
  cfg, src = sources
  tr, te = src.train_arrays, src.test_arrays
  assert len(src.train) == 12 and len(src.test) == 8
  np.testing.assert_array_equal(np.unique(tr["subject"]), [0, 1, 2])
  np.testing.assert_array_equal(np.unique(te["subject"]), [3, 4])
  assert not np.isin(tr["identity"][:, 0], te["identity"][:, 0]).any()
  for k in data_lib.TRAIN_KEYS + data_lib.EVAL_KEYS:
    assert k in tr, k
  assert tr["image"].shape == (12, cfg.size, cfg.size, 3)
  assert tr["fit_shape"].shape == (12, 3 * src.num_vertices)


def _angle(a, b, mask):
  cos = np.clip(np.sum(a * b, -1), -1, 1)
  return np.degrees(np.arccos(cos))[mask]


def test_pseudo_ground_truth_is_close_to_the_exact_answer(sources):
  cfg, src = sources
  a = src.train_arrays
  face = a["face_mask"][..., 0] > 0
  fit = a["fit_mask"][..., 0] > 0
  iou = (face & fit).sum() / (face | fit).sum()
  assert 0.85 < iou < 1.0
  err = _angle(a["normals"], a["fit_normals"], face & fit)
  # Close, not exact: the 3DMM fit has coefficient and pose noise.
  assert 1.0 < err.mean() < 12.0
  sh_err = np.abs(a["fit_sh"] - a["sh"]).mean()
  assert sh_err < 0.3 * np.abs(a["sh"]).mean()
  shading = np.asarray(sh_lighting.irradiance(
      jnp.asarray(a["fit_normals"]),
      jnp.asarray(a["fit_sh"]).reshape(-1, 1, 1, 3, 9)))
  rel = np.abs(shading - a["shading"])[face & fit].mean() / a["shading"][
      face].mean()
  assert rel < 0.15
  # The near-frontal flags follow the (fitted or exact) pose.
  lim = np.radians(cfg.near_frontal_deg)
  gt = (np.abs(a["pose"][:, 1]) <= lim) & (np.abs(a["pose"][:, 0]) <= lim)
  np.testing.assert_array_equal(a["gt_near_frontal"] > 0.5, gt)
  np.testing.assert_allclose(np.linalg.det(a["fit_rotation"]), 1.0,
                             atol=1e-4)


def test_cache_round_trips_and_a_corrupt_one_is_rebuilt(sources, caplog):
  cfg, src = sources
  again = data_lib.make_sources(cfg, progress=False)
  for k, v in src.train_arrays.items():
    np.testing.assert_array_equal(again.train_arrays[k], v)
  (path,) = [p for p in data_lib.pathlib.Path(cfg.cache_dir).glob(
      "test-*.npz")]
  path.write_bytes(b"not an npz")
  with caplog.at_level(logging.WARNING):
    rebuilt = data_lib.load_split(cfg, "test", progress=False)
  assert "unreadable" in caplog.text
  np.testing.assert_array_equal(rebuilt["image"], src.test_arrays["image"])
  assert data_lib.load_split(cfg, "test", progress=False)["image"].shape


# ----------------------------------------------------------- baselines


def test_plain_autoencoder_learns_and_pca_is_exact_on_its_span():
  rng = np.random.default_rng(0)
  s = 16
  yy, xx = np.mgrid[0:s, 0:s] / s
  base = np.stack([np.sin(3 * xx), np.cos(2 * yy), xx * yy], -1)
  images = np.clip(0.5 + 0.4 * base[None] * rng.uniform(
      -1, 1, size=(64, 1, 1, 3)), 0, 1).astype(np.float32)
  fit = baselines.fit_plain_autoencoder(
      images, widths=(8, 8, 4), code=16, latent=8, steps=150,
      batch_size=16, learning_rate=3e-3)
  mean_mse = np.mean(np.square(images - images.mean(0)))
  recon = fit.reconstruct(images)
  assert np.mean(np.square(recon - images)) < 0.5 * mean_mse
  assert fit.encode(images).shape == (64, 8)
  mean, basis = baselines.linear_decomposition(images, 3)
  codes = baselines.linear_codes(images, mean, basis)
  np.testing.assert_allclose(codes @ basis.T + mean,
                             images.reshape(64, -1), atol=1e-5)
  np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-8)
