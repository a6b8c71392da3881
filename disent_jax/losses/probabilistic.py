"""Probabilistic losses: Gaussian KL divergences and KL-weight schedules.

* `gaussian_kl`: KL(N(mu, diag sigma^2) || N(0, I)), the VAE prior term.
* `gaussian_kl_between`: KL between two diagonal Gaussians.
* Annealing factors in [0, 1] for a KL (or any) weight, as functions of a
  step or (fractional) epoch: `linear_decay` (paper 002's public code,
  max(0, (E - t) / E)), `linear_warmup`, `cyclical_annealing` (Fu et al.
  2019).

Gaussians are parameterised by their mean and log-variance, as VAE heads
emit them.
"""

import jax
import jax.numpy as jnp


def _check_pair(name, mean, log_variance):
  if mean.shape != log_variance.shape:
    raise ValueError(f"{name}: mean {mean.shape} and log_variance "
                     f"{log_variance.shape} must have the same shape")


def gaussian_kl(mean: jax.Array, log_variance: jax.Array) -> jax.Array:
  """KL(N(mean, diag(exp(log_variance))) || N(0, I)), summed over the last axis.

  Args:
    mean: [..., D].
    log_variance: [..., D].

  Returns:
    [...] = 0.5 * sum(exp(lv) + mean^2 - 1 - lv).
  """
  mean, log_variance = jnp.asarray(mean), jnp.asarray(log_variance)
  _check_pair("gaussian_kl", mean, log_variance)
  return 0.5 * jnp.sum(jnp.exp(log_variance) + mean * mean - 1.0
                       - log_variance, axis=-1)


def gaussian_kl_between(mean_q: jax.Array, log_variance_q: jax.Array,
                        mean_p: jax.Array, log_variance_p: jax.Array
                        ) -> jax.Array:
  """KL(q || p) of two diagonal Gaussians, summed over the last axis.

    0.5 * sum(lv_p - lv_q + (exp(lv_q) + (mu_q - mu_p)^2) / exp(lv_p) - 1)

  Args:
    mean_q, log_variance_q: [..., D], the first argument of the KL.
    mean_p, log_variance_p: broadcastable to [..., D].

  Returns:
    [...] divergences (0 iff the two Gaussians are equal).
  """
  mean_q, log_variance_q = jnp.asarray(mean_q), jnp.asarray(log_variance_q)
  mean_p, log_variance_p = jnp.asarray(mean_p), jnp.asarray(log_variance_p)
  _check_pair("gaussian_kl_between", mean_q, log_variance_q)
  _check_pair("gaussian_kl_between", mean_p, log_variance_p)
  diff = mean_q - mean_p
  return 0.5 * jnp.sum(
      log_variance_p - log_variance_q
      + (jnp.exp(log_variance_q) + diff * diff) * jnp.exp(-log_variance_p)
      - 1.0, axis=-1)


def linear_decay(t: jax.Array | float, *, duration: float) -> jax.Array:
  """max(0, (duration - t) / duration): 1 at t = 0, 0 from t = duration on.

  Paper 002's public code weights its KL terms by (350 - epoch) / 350 on
  CoMA.

  Args:
    t: step or (fractional) epoch, a scalar or [...].
    duration: where the factor reaches 0; <= 0 disables the decay (1).

  Returns:
    Factors in [0, 1], the shape of `t` (float32 for a Python number).
  """
  if duration <= 0:
    return jnp.ones(jnp.shape(t), jnp.float32)
  return jnp.clip((duration - t) / duration, 0.0, 1.0)


def linear_warmup(t: jax.Array | float, *, duration: float,
                  delay: float = 0.0) -> jax.Array:
  """clip((t - delay) / duration, 0, 1): 0 until `delay`, then a ramp to 1.

  Args:
    t: step or (fractional) epoch.
    duration: length of the ramp; <= 0 gives a step from 0 to 1 at `delay`.
    delay: when the ramp starts.

  Returns:
    Factors in [0, 1], the shape of `t`.
  """
  t = jnp.asarray(t, jnp.float32)
  if duration <= 0:
    return (t >= delay).astype(jnp.float32)
  return jnp.clip((t - delay) / duration, 0.0, 1.0)


def cyclical_annealing(t: jax.Array | float, *, period: float,
                       ramp_fraction: float = 0.5) -> jax.Array:
  """Cyclical KL annealing (Fu et al. 2019): ramps 0 -> 1, holds, repeats.

  Within each cycle of length `period` the factor rises linearly from 0 over
  the first `ramp_fraction` of the cycle and stays at 1 for the rest.

  Args:
    t: step or (fractional) epoch.
    period: cycle length (> 0).
    ramp_fraction: share of the cycle spent ramping, in (0, 1].

  Returns:
    Factors in [0, 1], the shape of `t`.
  """
  if period <= 0:
    raise ValueError(f"cyclical_annealing: period must be > 0, got {period}")
  if not 0.0 < ramp_fraction <= 1.0:
    raise ValueError("cyclical_annealing: ramp_fraction must be in (0, 1], "
                     f"got {ramp_fraction}")
  t = jnp.asarray(t, jnp.float32)
  phase = jnp.mod(t, period) / period
  return jnp.clip(phase / ramp_fraction, 0.0, 1.0)
