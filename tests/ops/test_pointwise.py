"""ops.pointwise: the fused dense + ReLU + max-pool against the composed ops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.ops import pointwise


def _inputs(batch_shape, n=40, c_in=5, c_out=7, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=batch_shape + (n, c_in)).astype(np.float32)
  kernel = rng.normal(size=(c_in, c_out)).astype(np.float32)
  bias = rng.normal(size=(c_out,)).astype(np.float32)
  return x, kernel, bias


@pytest.mark.parametrize("batch_shape", [(), (3,), (2, 3)])
def test_values_and_gradients_match_the_composed_ops(batch_shape):
  x, kernel, bias = _inputs(batch_shape)
  # A fixed random cotangent, so that every output channel matters.
  weights = np.random.default_rng(1).normal(
      size=batch_shape + (kernel.shape[1],)).astype(np.float32)

  def loss(fn):
    return lambda *a: jnp.sum(jnp.sin(fn(*a)) * weights)

  ours = jax.jit(pointwise.dense_relu_max)(x, kernel, bias)
  ref = pointwise.reference_dense_relu_max(x, kernel, bias)
  np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
  assert ours.shape == batch_shape + (kernel.shape[1],)
  grads = jax.jit(jax.grad(loss(pointwise.dense_relu_max),
                           argnums=(0, 1, 2)))(x, kernel, bias)
  ref_grads = jax.grad(loss(pointwise.reference_dense_relu_max),
                       argnums=(0, 1, 2))(x, kernel, bias)
  for g, r in zip(grads, ref_grads):
    assert g.shape == r.shape
    np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)
  # The input gradient is non-zero on at most one point per channel.
  assert np.count_nonzero(np.abs(grads[0]).sum(-1)) <= (
      np.prod(batch_shape, dtype=int) * kernel.shape[1])


def test_gradient_matches_finite_differences():
  x, kernel, bias = _inputs((2,), n=12, c_in=3, c_out=4, seed=3)
  x, kernel, bias = (np.asarray(a, np.float64) for a in (x, kernel, bias))
  with jax.enable_x64():
    f = lambda k: jnp.sum(pointwise.dense_relu_max(x, k, bias) ** 2)
    g = jax.grad(f)(kernel)
    eps = 1e-6
    fd = np.zeros_like(kernel)
    for i in np.ndindex(kernel.shape):
      d = np.zeros_like(kernel)
      d[i] = eps
      fd[i] = (f(kernel + d) - f(kernel - d)) / (2 * eps)
  np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_inactive_channels_get_no_gradient():
  x, kernel, bias = _inputs((2,))
  bias = np.full_like(bias, -1e3)  # Every pre-activation < 0.
  out = pointwise.dense_relu_max(x, kernel, bias)
  np.testing.assert_array_equal(out, 0.0)
  grads = jax.grad(lambda *a: jnp.sum(pointwise.dense_relu_max(*a)),
                   argnums=(0, 1, 2))(x, kernel, bias)
  for g in grads:
    np.testing.assert_array_equal(g, 0.0)
