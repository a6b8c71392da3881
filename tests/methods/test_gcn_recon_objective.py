"""Paper 003's objective terms: zero at the answer, masks, labels, weights."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from disent_jax.data import onthefly
from disent_jax.methods.gcn_recon import objective
from disent_jax.ops import laplacian
from disent_jax.synthface import template as tpl

B, S = 4, 16


@pytest.fixture(scope="module")
def setup():
  t = tpl.template("1k")
  mm = onthefly.world_morphable("1k")
  op = laplacian.uniform_laplacian_operator(
      mm.faces, num_vertices=mm.mean.shape[0])
  return mm.mean, op, np.asarray(t.mirror)


def _case(setup, seed=0):
  template, _, _ = setup
  rng = np.random.default_rng(seed)
  v = template.shape[0]
  shape = jnp.asarray(template + rng.normal(size=(B, v, 3)), jnp.float32)
  image = jnp.asarray(rng.uniform(size=(B, S, S, 3)), jnp.float32)
  lm = jnp.asarray(rng.uniform(0, S, size=(B, 68, 2)), jnp.float32)
  outputs = {"codes": {"identity": jnp.asarray(rng.normal(size=(B, 128)),
                                               jnp.float32)},
             "shape": shape, "albedo": jnp.full((B, v, 3), 0.5)}
  rendered = {"image": image, "mask": jnp.ones((B, S, S)),
              "landmarks_2d": lm}
  batch = {"image": image, "face_mask": jnp.ones((B, S, S)),
           "landmarks_2d": lm, "subject": jnp.asarray([0, 0, 1, 1]),
           "labelled": jnp.asarray([1.0, 1.0, 0.0, 0.0])}
  kw = dict(pseudo_shape=shape, pair_shape=shape, pair_target=shape,
            logits=jnp.zeros((B, 2)), centers=outputs["codes"]["identity"][
                jnp.asarray([0, 2])], fake_scores=jnp.zeros(B))
  return outputs, rendered, batch, kw


def _terms(setup, outputs, rendered, batch, kw):
  template, op, mirror = setup
  return objective.generator_terms(outputs, rendered, batch, template=template,
                                   smooth_operator=op, mirror=mirror, **kw)


def test_every_term_vanishes_at_the_answer(setup):
  outputs, rendered, batch, kw = _case(setup)
  # The template itself is smooth relative to itself.
  outputs["shape"] = jnp.broadcast_to(jnp.asarray(setup[0]),
                                      outputs["shape"].shape)
  kw.update(pseudo_shape=outputs["shape"], pair_shape=outputs["shape"],
            pair_target=outputs["shape"])
  t = _terms(setup, outputs, rendered, batch, kw)
  for name in ("recon", "landmarks", "shape", "pair", "smooth", "symmetry"):
    assert float(t[name]) == pytest.approx(0.0, abs=1e-5), name
  # Uniform logits: log K; centres of the images 0 and 2 themselves.
  assert float(t["softmax"]) == pytest.approx(np.log(2), rel=1e-5)
  c = outputs["codes"]["identity"]
  expect = 0.5 * (np.sum((c[1] - c[0]) ** 2) + np.sum((c[3] - c[2]) ** 2)) / B
  assert float(t["center"]) == pytest.approx(float(expect), rel=1e-4)


def test_reconstruction_counts_only_the_face_the_render_covers(setup):
  outputs, rendered, batch, kw = _case(setup)
  mask = np.zeros((B, S, S))
  mask[:, 4:12, 4:12] = 1
  batch["face_mask"] = jnp.asarray(mask)
  wrong = np.asarray(rendered["image"]).copy()
  wrong[:, :4] = 0.0  # Outside M: ignored.
  rendered["image"] = jnp.asarray(wrong)
  assert float(_terms(setup, outputs, rendered, batch, kw)["recon"]) == 0.0
  wrong[:, 6, 6] += 0.3
  rendered["image"] = jnp.asarray(wrong)
  assert float(_terms(setup, outputs, rendered, batch, kw)["recon"]) > 0.0
  # Pixels the render does not cover do not count either.
  cover = np.ones((B, S, S))
  cover[:, 6, 6] = 0
  rendered["mask"] = jnp.asarray(cover)
  r = float(_terms(setup, outputs, rendered, batch, kw)["recon"])
  assert r == pytest.approx(0.0, abs=1e-6)


def test_shape_terms_use_labelled_images_only(setup):
  outputs, rendered, batch, kw = _case(setup)
  target = np.asarray(kw["pseudo_shape"]).copy()
  target[2:] += 5.0  # Unlabelled images' (meaningless) targets.
  kw["pseudo_shape"] = jnp.asarray(target)
  assert float(_terms(setup, outputs, rendered, batch, kw)["shape"]) == 0.0
  target[0] += 1.0
  kw["pseudo_shape"] = jnp.asarray(target)
  # Mean over the two labelled images of mean |ds| = (1 + 0) / 2.
  assert float(_terms(setup, outputs, rendered, batch, kw)["shape"]) == (
      pytest.approx(0.5))
  # Pairs need both images labelled: (0, 1) only, not (1, 2) or (3, 0).
  pair = np.asarray(kw["pair_target"]).copy()
  pair[1:] += 3.0
  kw["pair_target"] = jnp.asarray(pair)
  assert float(_terms(setup, outputs, rendered, batch, kw)["pair"]) == 0.0
  batch["labelled"] = jnp.zeros(B)
  g = jax.grad(lambda s: _terms(setup, dict(outputs, shape=s), rendered,
                                batch, kw)["shape"])(outputs["shape"])
  assert float(jnp.abs(g).max()) == 0.0


def test_landmarks_are_in_image_units_with_the_distance_term(setup):
  outputs, rendered, batch, kw = _case(setup)
  rendered["landmarks_2d"] = batch["landmarks_2d"] + 1.6  # 0.1 image, x, y.
  t = _terms(setup, outputs, rendered, batch, kw)
  # A pure shift: the Euclidean error only, distances are unchanged.
  assert float(t["landmarks"]) == pytest.approx(0.1 * np.sqrt(2), rel=1e-4)


def test_symmetry_and_weights(setup):
  outputs, rendered, batch, kw = _case(setup)
  v = setup[0].shape[0]
  x = np.asarray(setup[0])[:, 0]
  albedo = np.full((B, v, 3), 0.5, np.float32)
  albedo[:, x > 5, 0] = 0.9  # One cheek redder.
  outputs["albedo"] = jnp.asarray(albedo)
  t = _terms(setup, outputs, rendered, batch, kw)
  assert float(t["symmetry"]) > 0.0
  w = objective.Weights()
  total = objective.weighted_total(t, w)
  manual = sum(w.of(k) * float(v) for k, v in t.items())
  assert float(total) == pytest.approx(manual, rel=1e-5)
  assert w.of("center") == pytest.approx(w.softmax * w.center)
  cfg = ml_collections.ConfigDict({"recon": 2.0, "shapes": 1.0})
  with pytest.raises(ValueError, match="loss.shapes"):
    objective.Weights.from_config(cfg)
  with pytest.raises(ValueError, match="non-negative"):
    objective.Weights.from_config(ml_collections.ConfigDict({"pair": -1.0}))
