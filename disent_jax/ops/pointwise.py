"""A per-point dense layer, ReLU and max-pool in one op with a sparse VJP.

PointNet ends with a shared dense layer over every point followed by a
max-pool over the points:

  out[..., c] = max_n relu(x[..., n, :] @ kernel[:, c] + bias[c])

Only one point per (example, channel) reaches the output, so the gradient
of the pooled feature flows through that point alone. Autodiff of the
composed ops does not know this: it keeps the [..., N, C_out] activations
for the backward pass and spends two dense products over all N points
(input and kernel gradients) plus masks of the same size. `dense_relu_max`
gives the same values and gradients from the arg-max points only: the
backward pass gathers the N-independent [..., C_out, C_in] rows and
scatters C_out rows back, so its cost no longer grows with N * C_out * C_in.

Ties: where several points share the maximum, `jnp.max`'s gradient is
split between them; here it goes to the first. With continuous inputs ties
happen only where every pre-activation is <= 0, and there ReLU's gradient
is 0 either way.

  from disent_jax.ops import pointwise
  feat = pointwise.dense_relu_max(points, kernel, bias)  # [..., C_out]
"""

import jax
import jax.numpy as jnp


def _forward(x: jax.Array, kernel: jax.Array, bias: jax.Array
             ) -> tuple[jax.Array, jax.Array]:
  """(pre-activation max [..., C_out], its point index [..., C_out])."""
  h = jnp.matmul(x, kernel) + bias
  peak = jnp.max(h, axis=-2)
  # The first arg-max as a min-reduce (XLA's CPU argmax, a two-operand
  # reduce, is several times slower than two single-operand ones).
  n = h.shape[-2]
  points = jax.lax.broadcasted_iota(jnp.int32, h.shape, h.ndim - 2)
  index = jnp.min(jnp.where(h == peak[..., None, :], points, n), axis=-2)
  return peak, index


@jax.custom_vjp
def dense_relu_max(x: jax.Array, kernel: jax.Array,
                   bias: jax.Array) -> jax.Array:
  """max over points of relu(x @ kernel + bias).

  Args:
    x: [..., N, C_in] per-point features.
    kernel: [C_in, C_out].
    bias: [C_out].

  Returns:
    [..., C_out] the pooled feature, equal to
    `jnp.max(jax.nn.relu(x @ kernel + bias), axis=-2)`.
  """
  return jax.nn.relu(_forward(x, kernel, bias)[0])


def _fwd(x, kernel, bias):
  peak, index = _forward(x, kernel, bias)
  return jax.nn.relu(peak), (x, kernel, index, peak > 0)


def _bwd(residuals, g):
  x, kernel, index, active = residuals
  g = jnp.where(active, g, 0).astype(x.dtype)  # [..., C_out]
  batch_shape, (n, c_in) = x.shape[:-2], x.shape[-2:]
  c_out = kernel.shape[1]
  flat_x = x.reshape((-1, n, c_in))
  flat_index = index.reshape((-1, c_out))
  flat_g = g.reshape((-1, c_out))
  rows = jnp.arange(flat_x.shape[0])[:, None]
  chosen = flat_x[rows, flat_index]  # [B, C_out, C_in]
  d_kernel = jnp.einsum("bci,bc->ic", chosen, flat_g)
  d_bias = jnp.sum(flat_g, axis=0)
  # Each (example, channel) sends g * kernel[:, c] to its arg-max point.
  contributions = flat_g[..., None] * kernel.T[None]  # [B, C_out, C_in]
  d_x = jnp.zeros_like(flat_x).at[rows, flat_index].add(contributions)
  return (d_x.reshape(batch_shape + (n, c_in)), d_kernel.astype(kernel.dtype),
          d_bias.astype(kernel.dtype))


dense_relu_max.defvjp(_fwd, _bwd)


def reference_dense_relu_max(x: jax.Array, kernel: jax.Array,
                             bias: jax.Array) -> jax.Array:
  """The composed ops `dense_relu_max` replaces (for tests and benchmarks)."""
  return jnp.max(jax.nn.relu(jnp.matmul(x, kernel) + bias), axis=-2)


def point_statistics(x: jax.Array, kernel: jax.Array, bias: jax.Array
                     ) -> tuple[jax.Array, jax.Array]:
  """Mean and (biased) variance over every point of h = x @ kernel + bias.

  Computed from x's mean and Gram matrix, never from h itself, so that
  neither the values nor the gradient need the [..., N, C_out] activations:
  E[h] = E[x] W + b, E[h^2]_c = w_c^T E[x x^T] w_c + 2 b_c E[x] w_c + b_c^2,
  Var = max(E[h^2] - E[h]^2, 0) (batch norm's fast variance).

  Args:
    x: [..., N, C_in]; every axis but the last is averaged over.
    kernel: [C_in, C_out].
    bias: [C_out].

  Returns:
    (mean [C_out], var [C_out]).
  """
  flat = x.reshape((-1, x.shape[-1]))
  m = flat.shape[0]
  x_mean = jnp.sum(flat, axis=0) / m
  gram = jnp.matmul(flat.T, flat) / m
  projected = jnp.matmul(x_mean, kernel)
  mean = projected + bias
  second = (jnp.einsum("ic,ij,jc->c", kernel, gram, kernel) +
            2.0 * bias * projected + bias * bias)
  return mean, jnp.maximum(second - mean * mean, 0.0)


def dense_batchnorm_relu_max(x: jax.Array, kernel: jax.Array, bias: jax.Array,
                             scale: jax.Array, offset: jax.Array,
                             mean: jax.Array, var: jax.Array, *,
                             epsilon: float = 1e-5) -> jax.Array:
  """max over points of relu(batchnorm(x @ kernel + bias)).

  Batch norm with given statistics is an affine map per channel, so the
  whole layer is `dense_relu_max` with the kernel and bias folded:
  s = scale / sqrt(var + epsilon), kernel' = kernel * s,
  bias' = (bias - mean) * s + offset (a negative s turns the max into the
  min of h, which the folded kernel does by itself). With batch statistics
  pass `point_statistics(x, kernel, bias)` as (mean, var): the result equals
  `flax.linen.BatchNorm` in training mode followed by ReLU and the max,
  and gradients flow through the statistics too.

  Args:
    x: [..., N, C_in].
    kernel: [C_in, C_out]; bias: [C_out] the dense layer.
    scale, offset: [C_out] batch norm's learned scale and bias.
    mean, var: [C_out] the statistics to normalise with.
    epsilon: batch norm's epsilon.

  Returns:
    [..., C_out].
  """
  s = scale * jax.lax.rsqrt(var + epsilon)
  return dense_relu_max(x, kernel * s, (bias - mean) * s + offset)
