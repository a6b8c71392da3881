"""Paper 003's train step on SynthFace images: updates, critic, centres."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from disent_jax.data import onthefly
from disent_jax.methods.gcn_recon import model as model_lib
from disent_jax.methods.gcn_recon import objective
from disent_jax.methods.gcn_recon import steps
from disent_jax.ops import laplacian
from disent_jax.synthface import template as tpl


@pytest.fixture(scope="module")
def setup():
  mm = onthefly.world_morphable("1k")
  mesh = model_lib.MeshSetup.build(mm.mean, mm.faces, mm.landmarks,
                                   factors=(2, 2, 2, 2, 2))
  enc = model_lib.ResNetEncoder(stage_widths=(8, 16), stage_blocks=(1, 1),
                                bottleneck=False, stem_width=8,
                                branch_hidden=16)
  net = model_lib.GcnReconstructor(mesh=mesh, encoder=enc,
                                   decoder_filters=(16, 16, 8, 8, 8), K=3)
  ctx = steps.Context(
      net=net, classifier=steps.IdentityClassifier(4),
      critic=steps.ShapeCritic(mesh, filters=(8, 8, 8, 8, 8), K=3),
      tx=optax.adam(1e-3), disc_tx=optax.rmsprop(5e-5),
      weights=objective.Weights(), morphable=mm,
      smooth_operator=laplacian.uniform_laplacian_operator(
          mm.faces, num_vertices=mm.mean.shape[0]),
      mirror=np.asarray(tpl.template("1k").mirror), size=64)
  gen = onthefly.generator("synthface_images", "tiny")
  src = onthefly.OnTheFlySource(gen, "train")
  rows = [src[i] for i in range(8)]
  keys = ("image", "face_mask", "landmarks_2d", "subject", "labelled",
          "mm_identity", "mm_expression")
  batch = {k: jnp.asarray(np.stack([r[k] for r in rows])) for k in keys}
  batch["image"] = batch["image"].astype(jnp.float32) / (
      255.0 if batch["image"].dtype == jnp.uint8 else 1.0)
  batch["face_mask"] = batch["face_mask"].astype(jnp.float32)
  batch["labelled"] = batch["labelled"].astype(jnp.float32)
  return ctx, batch


def test_one_step_updates_everything_and_logs_every_term(setup):
  ctx, batch = setup
  state = steps.init_state(jax.random.PRNGKey(0), batch, ctx=ctx,
                           num_classes=4)
  step = jax.jit(functools.partial(steps.train_step, ctx=ctx))
  new, metrics = step(state, batch, jax.random.PRNGKey(1))
  for name in ("recon", "landmarks", "shape", "pair", "smooth", "symmetry",
               "softmax", "center", "adversarial"):
    assert np.isfinite(float(metrics[f"terms/{name}"])), name
  assert np.isfinite(float(metrics["disc/loss"]))
  for part in ("model", "classifier", "disc"):
    before = jax.tree_util.tree_leaves(state["params"][part])
    after = jax.tree_util.tree_leaves(new["params"][part])
    assert any(not np.array_equal(a, b) for a, b in zip(before, after)), part
  # The centres of the batch's subjects move towards their c_id; others
  # stay.
  moved = np.abs(np.asarray(new["centers"])).sum(-1) > 0
  seen = np.zeros(4, bool)
  seen[np.asarray(batch["subject"])] = True
  np.testing.assert_array_equal(moved, seen)
  assert int(new["step"]) == 1


def test_a_few_steps_lower_the_photometric_and_landmark_terms(setup):
  ctx, batch = setup
  state = steps.init_state(jax.random.PRNGKey(0), batch, ctx=ctx,
                           num_classes=4)
  step = jax.jit(functools.partial(steps.train_step, ctx=ctx))
  first = None
  for i in range(25):
    state, m = step(state, batch, jax.random.PRNGKey(i))
    if first is None:
      first = m
  assert float(m["terms/recon"]) < 0.9 * float(first["terms/recon"])
  # The landmarks move through c_pose and the shape, both of which start
  # at zero offsets (frontal pose, the template): slower than the albedo.
  assert float(m["terms/landmarks"]) < 0.95 * float(
      first["terms/landmarks"])
