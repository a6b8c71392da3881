"""Chebyshev spectral graph convolution and mesh pooling modules.

Thin linen wrappers over `disent_jax.ops.graph.chebyshev_conv` and
`disent_jax.ops.hierarchy.apply_sampling`. The graph operator (the scaled
Laplacian L~ of a fixed mesh, built once with `graph.chebyshev_operator` or
`hierarchy.hierarchy_operators`) is passed in, never rebuilt per call.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from disent_jax.ops import graph
from disent_jax.ops import hierarchy

# Glorot-uniform per Chebyshev term (fan-in C_in, fan-out C_out), as
# PyTorch Geometric initialises each of its K linear maps.
default_kernel_init = nn.initializers.variance_scaling(
    1.0, "fan_avg", "uniform", in_axis=-2, out_axis=-1, batch_axis=(0,))


class ChebConv(nn.Module):
  """y = sum_{k<K} T_k(L~) x theta_k + b on a fixed graph.

  Attributes:
    features: C_out.
    K: number of Chebyshev terms (T_0 .. T_{K-1}); CoMA uses 6.
    use_bias: add a per-channel bias.
    kernel_init: initialiser of theta [K, C_in, C_out].
    bias_init: initialiser of b [C_out].
    param_dtype: parameter dtype.
  """
  features: int
  K: int  # pylint: disable=invalid-name
  use_bias: bool = True
  kernel_init: Any = default_kernel_init
  bias_init: Any = nn.initializers.zeros_init()
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array,
               operator: graph.GraphOperator) -> jax.Array:
    """Applies the convolution.

    Args:
      x: [..., V, C_in] vertex features.
      operator: the [V, V] scaled Laplacian.

    Returns:
      [..., V, features].
    """
    kernel = self.param("kernel", self.kernel_init,
                        (self.K, x.shape[-1], self.features), self.param_dtype)
    y = graph.chebyshev_conv(x, operator, kernel.astype(x.dtype))
    if self.use_bias:
      bias = self.param("bias", self.bias_init, (self.features,),
                        self.param_dtype)
      y = y + bias.astype(y.dtype)
    return y


class Pool(nn.Module):
  """Mesh down-sampling by a fixed sampling matrix ([V_out, V_in]).

  Attributes:
    sampling: a `hierarchy.Sampling` (e.g. `MeshHierarchy.down[l]`).
  """
  sampling: hierarchy.Sampling

  def __call__(self, x: jax.Array) -> jax.Array:
    """[..., V_in, C] -> [..., V_out, C]."""
    return hierarchy.apply_sampling(x, self.sampling)


class Unpool(nn.Module):
  """Mesh up-sampling by a fixed sampling matrix (barycentric, k = 3).

  Attributes:
    sampling: a `hierarchy.Sampling` (e.g. `MeshHierarchy.up[l]`).
  """
  sampling: hierarchy.Sampling

  def __call__(self, x: jax.Array) -> jax.Array:
    """[..., V_in, C] -> [..., V_out, C]."""
    return hierarchy.apply_sampling(x, self.sampling)
