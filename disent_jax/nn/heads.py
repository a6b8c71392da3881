"""MLP and Gaussian-VAE heads, with the reparameterised sample.

The KL of a `GaussianLatent` to N(0, I) is `losses.probabilistic.gaussian_kl`.
"""

from typing import Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from disent_jax.losses import probabilistic


class MLP(nn.Module):
  """Dense layers with an activation between them.

  Attributes:
    features: output width of each layer.
    activation: non-linearity.
    activate_final: also apply it after the last layer.
  """
  features: Sequence[int]
  activation: Callable[[jax.Array], jax.Array] = nn.relu
  activate_final: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """[..., C] -> [..., features[-1]]."""
    for i, width in enumerate(self.features):
      x = nn.Dense(width, name=f"dense_{i}")(x)
      if i < len(self.features) - 1 or self.activate_final:
        x = self.activation(x)
    return x


def reparameterize(key: jax.Array, mean: jax.Array,
                   log_variance: jax.Array) -> jax.Array:
  """z = mean + exp(log_variance / 2) * eps, eps ~ N(0, I).

  Args:
    key: PRNG key.
    mean: [..., D].
    log_variance: [..., D].

  Returns:
    [..., D] samples, differentiable in mean and log_variance.
  """
  eps = jax.random.normal(key, mean.shape, dtype=mean.dtype)
  return mean + jnp.exp(0.5 * log_variance) * eps


class GaussianLatent(NamedTuple):
  """Attributes: mean, log_variance and sample, each [..., D]."""
  mean: jax.Array
  log_variance: jax.Array
  sample: jax.Array

  def kl(self) -> jax.Array:
    """KL to the standard normal, [...]."""
    return probabilistic.gaussian_kl(self.mean, self.log_variance)


class GaussianHead(nn.Module):
  """Two dense layers giving a diagonal Gaussian posterior.

  Attributes:
    latent: D.
  """
  latent: int

  @nn.compact
  def __call__(self, x: jax.Array, *, deterministic: bool) -> GaussianLatent:
    """Maps features to a Gaussian and samples it.

    Args:
      x: [..., C] features.
      deterministic: if True, `sample` is the mean; otherwise it is a
        reparameterised draw using the 'latent' rng stream.

    Returns:
      `GaussianLatent` with mean, log_variance and sample [..., D].
    """
    mean = nn.Dense(self.latent, name="mean")(x)
    log_variance = nn.Dense(self.latent, name="log_variance")(x)
    if deterministic:
      sample = mean
    else:
      sample = reparameterize(self.make_rng("latent"), mean, log_variance)
    return GaussianLatent(mean, log_variance, sample)
