"""Tests for disent_jax.nn.pointnet."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.losses import geometry
from disent_jax.nn import pointnet


def _points(shape, seed=0):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_encoder_widths_and_batch_stats_collection():
  model = pointnet.PointNetEncoder()  # 3 -> 64 -> 64 -> 64 -> 128 -> 1024
  x = _points((2, 50, 3))
  variables = jax.jit(
      lambda k, x: model.init(k, x, use_running_average=False))(
          jax.random.key(0), x)
  assert set(variables) == {"params", "batch_stats"}
  shapes = [variables["params"]["mlp"][f"dense_{i}"]["kernel"].shape
            for i in range(5)]
  assert shapes == [(3, 64), (64, 64), (64, 64), (64, 128), (128, 1024)]
  out = model.apply(variables, x, use_running_average=True)
  assert out.features.shape == (2, 1024) and out.transform is None


def test_batch_norm_running_stats_update_like_pytorch_momentum():
  model = pointnet.PointNetEncoder(widths=(8, 4))
  x = _points((3, 20, 3), seed=1)
  variables = model.init(jax.random.key(1), x, use_running_average=False)
  _, updates = model.apply(variables, x, use_running_average=False,
                           mutable=["batch_stats"])
  dense = variables["params"]["mlp"]["dense_0"]
  pre = x @ np.asarray(dense["kernel"]) + np.asarray(dense["bias"])
  stats = updates["batch_stats"]["mlp"]["bn_0"]
  # running = 0.9 * running + 0.1 * batch statistic (over batch and points).
  np.testing.assert_allclose(stats["mean"], 0.1 * pre.mean(axis=(0, 1)),
                             rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(stats["var"],
                             0.9 + 0.1 * pre.var(axis=(0, 1)), rtol=1e-4)


def test_encoder_matches_numpy_in_eval_mode():
  model = pointnet.PointNetEncoder(widths=(8, 16))
  x = _points((2, 30, 3), seed=2)
  variables = model.init(jax.random.key(2), x, use_running_average=True)
  rng = np.random.default_rng(3)
  stats = jax.tree_util.tree_map(
      lambda a: np.asarray(a) + rng.uniform(0.1, 0.5, a.shape).astype(
          np.float32), variables["batch_stats"])
  params = jax.tree_util.tree_map(
      lambda a: np.asarray(a) + 0.1 * rng.standard_normal(a.shape).astype(
          np.float32), variables["params"])
  got = model.apply({"params": params, "batch_stats": stats}, x,
                    use_running_average=True).features
  h = x
  for i in range(2):
    d, bn = params["mlp"][f"dense_{i}"], params["mlp"][f"bn_{i}"]
    st = stats["mlp"][f"bn_{i}"]
    h = h @ d["kernel"] + d["bias"]
    h = (h - st["mean"]) / np.sqrt(st["var"] + 1e-5) * bn["scale"] + bn["bias"]
    h = np.maximum(h, 0)
  np.testing.assert_allclose(got, h.max(axis=1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("input_transform", [False, True])
@pytest.mark.parametrize("use_running_average", [False, True])
def test_global_feature_is_permutation_invariant(input_transform,
                                                 use_running_average):
  model = pointnet.PointNetEncoder(widths=(16, 32),
                                   input_transform=input_transform)
  x = _points((2, 40, 3), seed=4)
  variables = jax.jit(functools.partial(model.init,
                                        use_running_average=False))(
                                            jax.random.key(4), x)
  perm = np.random.default_rng(5).permutation(40)
  apply = jax.jit(lambda v, x: model.apply(
      v, x, use_running_average=use_running_average,
      mutable=False if use_running_average else ["batch_stats"]))
  out = apply(variables, x)
  out_perm = apply(variables, x[:, perm])
  if not use_running_average:
    out, out_perm = out[0], out_perm[0]
  np.testing.assert_allclose(out.features, out_perm.features, rtol=1e-5,
                             atol=1e-5)
  # Not invariant to changing a point: the test can fail.
  moved = x.copy()
  moved[:, 0] += 3.0
  out_moved = apply(variables, moved)
  if not use_running_average:
    out_moved = out_moved[0]
  assert np.abs(np.asarray(out_moved.features - out.features)).max() > 1e-3


def test_tnet_starts_at_identity():
  model = pointnet.PointNetEncoder(widths=(8,), input_transform=True)
  x = _points((2, 25, 3), seed=6)
  variables = model.init(jax.random.key(6), x, use_running_average=False)
  out = model.apply(variables, x, use_running_average=True)
  np.testing.assert_allclose(out.transform, np.broadcast_to(np.eye(3),
                                                            (2, 3, 3)))
  np.testing.assert_allclose(
      geometry.orthogonality_regularizer(out.transform), 0, atol=1e-12)


def test_pair_classifier_uses_six_channels_and_dropout():
  model = pointnet.PointNetPairClassifier(widths=(16, 32), head=(16, 8))
  a, b = _points((3, 30, 3), seed=8), _points((3, 30, 3), seed=9)
  variables = jax.jit(functools.partial(
      model.init, use_running_average=False, deterministic=False))(
          {"params": jax.random.key(8), "dropout": jax.random.key(9)}, a, b)
  params = variables["params"]
  apply = jax.jit(model.apply,
                  static_argnames=("use_running_average", "deterministic"))
  assert params["pointnet"]["mlp"]["dense_0"]["kernel"].shape == (6, 16)
  assert params["pointnet"]["tnet"]["to_transform"]["kernel"].shape[-1] == 36
  logits, transform = apply(variables, a, b, use_running_average=True,
                            deterministic=True)
  assert logits.shape == (3, 2) and transform.shape == (3, 6, 6)
  again, _ = apply(variables, a, b, use_running_average=True,
                   deterministic=True)
  np.testing.assert_array_equal(logits, again)

  def dropped(seed):
    return apply(variables, a, b, use_running_average=True,
                 deterministic=False,
                 rngs={"dropout": jax.random.key(seed)})[0]

  assert np.abs(np.asarray(dropped(0) - dropped(1))).max() > 0
  with pytest.raises(ValueError, match="pair shapes differ"):
    model.apply(variables, a, b[:, :10], use_running_average=True,
                deterministic=True)


def test_pair_classifier_without_batch_norm_scores_each_pair_alone():
  """The public code's default D_ID (no batch norm, no dropout): no
  'batch_stats', and a pair's score does not depend on its batch-mates."""
  model = pointnet.PointNetPairClassifier(widths=(16, 32), head=(16, 8),
                                          dropout_rate=0.0, batch_norm=False)
  a, b = _points((4, 30, 3), seed=10), _points((4, 30, 3), seed=11)
  variables = model.init(jax.random.key(0), a, b, use_running_average=False,
                         deterministic=False)
  assert set(variables) == {"params"}
  full, _ = model.apply(variables, a, b, use_running_average=False,
                        deterministic=False)
  alone, _ = model.apply(variables, a[1:2], b[1:2],
                         use_running_average=False, deterministic=False)
  np.testing.assert_allclose(full[1:2], alone, rtol=1e-5, atol=1e-6)
  # With batch norm in training mode, batch-mates change the score.
  bn = pointnet.PointNetPairClassifier(widths=(16, 32), head=(16, 8),
                                       dropout_rate=0.0)
  v_bn = bn.init(jax.random.key(0), a, b, use_running_average=False,
                 deterministic=True)
  full_bn, _ = bn.apply(v_bn, a, b, use_running_average=False,
                        deterministic=True, mutable=["batch_stats"])[0]
  half_bn, _ = bn.apply(v_bn, a[:2], b[:2], use_running_average=False,
                        deterministic=True, mutable=["batch_stats"])[0]
  assert np.abs(np.asarray(full_bn[:2] - half_bn)).max() > 1e-4


def test_fused_pool_has_the_same_parameters_values_and_gradients():
  points = jax.random.normal(jax.random.key(0), (3, 50, 6))
  fused = pointnet.SharedMLP((8, 16, 32), batch_norm=False, max_pool=True)
  plain = pointnet.SharedMLP((8, 16, 32), batch_norm=False)
  v_fused = fused.init(jax.random.key(1), points, use_running_average=True)
  v_plain = plain.init(jax.random.key(1), points, use_running_average=True)
  chex.assert_trees_all_equal(v_fused, v_plain)

  def loss(model, pool, params, x):
    out = model.apply({"params": params}, x, use_running_average=True)
    return jnp.sum(jnp.cos(pool(out)))

  loss_fused = jax.jit(jax.value_and_grad(
      lambda p, x: loss(fused, lambda o: o, p, x), argnums=(0, 1)))
  loss_plain = jax.value_and_grad(
      lambda p, x: loss(plain, lambda o: jnp.max(o, axis=-2), p, x),
      argnums=(0, 1))
  (value, grads) = loss_fused(v_fused["params"], points)
  (ref_value, ref_grads) = loss_plain(v_plain["params"], points)
  np.testing.assert_allclose(value, ref_value, rtol=1e-6)
  chex.assert_trees_all_close(grads, ref_grads, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("train", [True, False])
def test_fused_pool_with_batch_norm_matches_flax_batch_norm(train):
  points = 1.0 + jax.random.normal(jax.random.key(0), (3, 50, 6))
  fused = pointnet.SharedMLP((8, 16, 32), max_pool=True)
  plain = pointnet.SharedMLP((8, 16, 32))
  v_fused = fused.init(jax.random.key(1), points, use_running_average=False)
  v_plain = plain.init(jax.random.key(1), points, use_running_average=False)
  chex.assert_trees_all_equal(v_fused, v_plain)
  # Non-trivial running statistics and batch-norm parameters (a negative
  # scale turns the max of h into its min).
  rng = np.random.default_rng(2)
  variables = jax.tree_util.tree_map(
      lambda a: a + 0.3 * rng.normal(size=a.shape).astype(np.float32),
      v_plain)
  variables["batch_stats"] = jax.tree_util.tree_map(
      jnp.abs, variables["batch_stats"])

  def loss(model, pool, params, x):
    out, updates = model.apply(
        {"params": params, "batch_stats": variables["batch_stats"]}, x,
        use_running_average=not train, mutable=["batch_stats"])
    return jnp.sum(jnp.cos(pool(out))), updates

  grad = functools.partial(jax.value_and_grad, argnums=(0, 1), has_aux=True)
  (value, updates), grads = jax.jit(grad(
      lambda p, x: loss(fused, lambda o: o, p, x)))(variables["params"],
                                                    points)
  (ref_value, ref_updates), ref_grads = grad(
      lambda p, x: loss(plain, lambda o: jnp.max(o, axis=-2), p, x))(
          variables["params"], points)
  np.testing.assert_allclose(value, ref_value, rtol=1e-5)
  chex.assert_trees_all_close(grads, ref_grads, rtol=2e-4, atol=2e-5)
  chex.assert_trees_all_close(updates, ref_updates, rtol=1e-5, atol=1e-6)
