"""Adversarial losses: logistic + R1, BEGAN, WGAN-div, hinge, patch-GAN.

* `sigmoid_binary_cross_entropy`: BCE from logits, per element.
* Logistic GAN (paper 001, StyleGAN): `logistic_discriminator_loss`,
  `nonsaturating_generator_loss`, and the `r1_penalty` on real data.
* BEGAN (paper 000): `began_autoencoder_error`, the two objectives and the
  k_t equilibrium controller as explicit state (`BeganState`,
  `began_update`), with the convergence measure M_global.
* WGAN-div (paper 003 eq. 12; Wu et al. 2018, k = 2, p = 6):
  `wasserstein_discriminator_loss`, `wasserstein_generator_loss`,
  `wgan_div_penalty` on random interpolates of real and fake samples.
* Hinge (`hinge_discriminator_loss`, `hinge_generator_loss`) and
  patch-GAN losses (`patch_discriminator_loss`, `patch_generator_loss`):
  per-patch logits maps, optionally masked.
* `discriminator_accuracy`: the share of real and fake samples a
  discriminator classifies correctly.

Penalties take the discriminator as a function `discriminator(x) -> [B]`
scores of a batch x [B, ...]; close over its parameters inside the loss you
differentiate, so the penalty's gradient reaches them (double
backpropagation).
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from disent_jax.losses import _base
from disent_jax.losses import reconstruction

Discriminator = Callable[[jax.Array], jax.Array]


def sigmoid_binary_cross_entropy(logits: jax.Array,
                                 labels: jax.Array | float) -> jax.Array:
  """-y log sigmoid(l) - (1 - y) log(1 - sigmoid(l)), per element.

  The same formula as optax's, computed through log-sigmoids so that large
  logits stay finite.

  Args:
    logits: [...] logits of the positive class.
    labels: broadcastable to `logits`, targets in [0, 1].

  Returns:
    [...] losses.
  """
  logits = jnp.asarray(logits)
  labels = jnp.asarray(labels, logits.dtype)
  log_p = jax.nn.log_sigmoid(logits)
  log_not_p = jax.nn.log_sigmoid(-logits)
  return -labels * log_p - (1.0 - labels) * log_not_p


def logistic_discriminator_loss(real_logits: jax.Array,
                                fake_logits: jax.Array) -> jax.Array:
  """mean softplus(-D(x)) + mean softplus(D(G(z))) (StyleGAN's D loss).

  Args:
    real_logits: [B] discriminator logits of real samples.
    fake_logits: [B'] logits of generated samples.

  Returns:
    A scalar: the BCE of real -> 1 plus that of fake -> 0.
  """
  return (jnp.mean(jax.nn.softplus(-jnp.asarray(real_logits)))
          + jnp.mean(jax.nn.softplus(jnp.asarray(fake_logits))))


def nonsaturating_generator_loss(fake_logits: jax.Array) -> jax.Array:
  """mean softplus(-D(G(z))) = -mean log sigmoid(D(G(z))) (Goodfellow 2014).

  Args:
    fake_logits: [B] logits of generated samples.

  Returns:
    A scalar.
  """
  return jnp.mean(jax.nn.softplus(-jnp.asarray(fake_logits)))


def _input_gradients(discriminator: Discriminator, x: jax.Array) -> jax.Array:
  # d sum_b D(x)_b / dx: each sample's own gradient when D treats samples
  # independently; StyleGAN's convention otherwise (minibatch stddev).
  return jax.grad(lambda inputs: jnp.sum(discriminator(inputs)))(x)


def _squared_norms(grads: jax.Array) -> jax.Array:
  return jnp.sum(jnp.square(grads).reshape(grads.shape[0], -1), axis=-1)


def r1_penalty(discriminator: Discriminator, real: jax.Array, *,
               gamma: float = 10.0) -> jax.Array:
  """R1 = gamma / 2 * mean_b ||grad_x D(x_b)||^2 on real samples (Mescheder
  et al. 2018; paper 001 uses gamma = 10).

  Args:
    discriminator: maps [B, ...] inputs to [B] logits.
    real: [B, ...] real samples.
    gamma: the penalty weight.

  Returns:
    A scalar, differentiable in the parameters `discriminator` closes over.
  """
  real = jnp.asarray(real)
  grads = _input_gradients(discriminator, real)
  return 0.5 * gamma * jnp.mean(_squared_norms(grads))


class BeganState(NamedTuple):
  """The BEGAN equilibrium controller's state.

  Attributes:
    k: [] the weight k_t of the fake term in D's loss, in [0, 1].
  """
  k: jax.Array


def began_init(k: float = 0.0) -> BeganState:
  """The controller's initial state (k_0 = 0 in BEGAN)."""
  return BeganState(k=jnp.asarray(k, jnp.float32))


def began_autoencoder_error(inputs: jax.Array,
                            reconstructions: jax.Array) -> jax.Array:
  """L(v) = mean |v - D(v)| per sample, D an auto-encoder discriminator.

  Args:
    inputs: [B, ...] images v.
    reconstructions: [B, ...] the discriminator's reconstructions D(v).

  Returns:
    [B] mean absolute errors.
  """
  inputs, reconstructions = jnp.asarray(inputs), jnp.asarray(reconstructions)
  _base.check_same_shape("began_autoencoder_error", inputs, reconstructions)
  diff = jnp.abs(inputs - reconstructions)
  return jnp.mean(diff.reshape(diff.shape[0], -1), axis=-1)


def began_discriminator_loss(real_error: jax.Array, fake_error: jax.Array,
                             state: BeganState) -> jax.Array:
  """L_D = L(x) - k_t L(G(z)) (BEGAN, paper 000 §3.6).

  Args:
    real_error: [B] `began_autoencoder_error` of real images.
    fake_error: [B'] that of generated images (stop their gradient into the
      generator for the D step).
    state: the controller state holding k_t (no gradient flows into it).

  Returns:
    A scalar.
  """
  k = jax.lax.stop_gradient(state.k)
  return jnp.mean(real_error) - k * jnp.mean(fake_error)


def began_generator_loss(fake_error: jax.Array) -> jax.Array:
  """L_G = L(G(z)): the generator wants its images reconstructed well."""
  return jnp.mean(fake_error)


def began_update(state: BeganState, real_error: jax.Array,
                 fake_error: jax.Array, *, gamma: float = 0.5,
                 lambda_k: float = 1e-3) -> tuple[BeganState, jax.Array]:
  """One step of the k_t controller and the convergence measure.

    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)
    M_global = L(x) + |gamma L(x) - L(G(z))|

  Args:
    state: the current `BeganState`.
    real_error: [B] errors of real images.
    fake_error: [B'] errors of generated images.
    gamma: the diversity ratio E[L(G(z))] / E[L(x)] the controller targets.
    lambda_k: the controller's gain.

  Returns:
    (the new state, M_global), both without gradients.
  """
  real = jax.lax.stop_gradient(jnp.mean(real_error))
  fake = jax.lax.stop_gradient(jnp.mean(fake_error))
  balance = gamma * real - fake
  k = jnp.clip(state.k + lambda_k * balance, 0.0, 1.0).astype(state.k.dtype)
  return BeganState(k=k), real + jnp.abs(balance)


def wasserstein_discriminator_loss(real_scores: jax.Array,
                                   fake_scores: jax.Array) -> jax.Array:
  """mean D(fake) - mean D(real): the critic's loss of a WGAN."""
  return jnp.mean(fake_scores) - jnp.mean(real_scores)


def wasserstein_generator_loss(fake_scores: jax.Array) -> jax.Array:
  """-mean D(fake) (paper 003's L_adv = -D(s^))."""
  return -jnp.mean(fake_scores)


def random_interpolates(real: jax.Array, fake: jax.Array,
                        key: jax.Array) -> jax.Array:
  """eps * real + (1 - eps) * fake with eps ~ U[0, 1] per sample.

  Args:
    real: [B, ...].
    fake: [B, ...].
    key: PRNG key.

  Returns:
    [B, ...] points on the segments between paired samples.
  """
  real, fake = jnp.asarray(real), jnp.asarray(fake)
  _base.check_same_shape("random_interpolates", real, fake)
  eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1),
                           dtype=real.dtype)
  return eps * real + (1.0 - eps) * fake


def wgan_div_penalty(discriminator: Discriminator, real: jax.Array,
                     fake: jax.Array, *, key: jax.Array, k: float = 2.0,
                     p: float = 6.0) -> jax.Array:
  """k * mean_b ||grad D(x~_b)||^p at random real/fake interpolates x~.

  The Wasserstein-divergence term of WGAN-div (Wu et al. 2018), with P_u
  "sampled uniformly along straight lines between" real and fake samples
  (paper 003 eq. 12). The critic minimises
  `wasserstein_discriminator_loss + wgan_div_penalty`.

  Args:
    discriminator: maps [B, ...] inputs to [B] scores.
    real: [B, ...] real samples.
    fake: [B, ...] generated samples (stop their gradient for the D step).
    key: PRNG key for the interpolation weights.
    k: the penalty weight (2).
    p: the power (6).

  Returns:
    A scalar.
  """
  points = random_interpolates(real, fake, key)
  grads = _input_gradients(discriminator, points)
  # ||g||^p = (||g||^2)^(p/2): smooth at g = 0 for p >= 2.
  return k * jnp.mean(_squared_norms(grads) ** (0.5 * p))


def hinge_discriminator_loss(real_logits: jax.Array,
                             fake_logits: jax.Array) -> jax.Array:
  """mean relu(1 - D(x)) + mean relu(1 + D(G(z))) (Lim & Ye 2017)."""
  return (jnp.mean(jax.nn.relu(1.0 - jnp.asarray(real_logits)))
          + jnp.mean(jax.nn.relu(1.0 + jnp.asarray(fake_logits))))


def hinge_generator_loss(fake_logits: jax.Array) -> jax.Array:
  """-mean D(G(z))."""
  return -jnp.mean(fake_logits)


def _patch_mean(values, mask, reduction):
  if mask is None:
    return _base.reduce(values, reduction)
  mask = jnp.broadcast_to(jnp.asarray(mask, values.dtype), values.shape)
  if reduction == "mean":
    return reconstruction.masked_mean(values, mask)
  return _base.reduce(values * mask, reduction)


def patch_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array,
                             *, real_mask: jax.Array | None = None,
                             fake_mask: jax.Array | None = None,
                             reduction: str = "mean") -> jax.Array:
  """Patch-GAN D loss: per-patch BCE, real patches -> 1, fake -> 0.

  The local adversarial loss of Shrivastava et al. (2017), used by paper
  003's stage 2: a fully convolutional D gives a logit per patch and the
  cross-entropy is taken per patch. Masks select the patches that count
  (e.g. those inside the face).

  Args:
    real_logits: [B, h, w] (or [B, h, w, 1]) logits on real images.
    fake_logits: logits on generated images, the same layout.
    real_mask: optional mask broadcastable to `real_logits`.
    fake_mask: optional mask broadcastable to `fake_logits`.
    reduction: "mean" over (masked) patches, each side separately, or "sum"
      over patches (Shrivastava et al.).

  Returns:
    A scalar: the real term plus the fake term.
  """
  if reduction not in ("mean", "sum"):
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
  real = sigmoid_binary_cross_entropy(real_logits, 1.0)
  fake = sigmoid_binary_cross_entropy(fake_logits, 0.0)
  return (_patch_mean(real, real_mask, reduction)
          + _patch_mean(fake, fake_mask, reduction))


def patch_generator_loss(fake_logits: jax.Array, *,
                         mask: jax.Array | None = None,
                         reduction: str = "mean") -> jax.Array:
  """Patch-GAN G loss: -log D(fake) per patch, averaged (or summed).

  Args:
    fake_logits: [B, h, w] (or [B, h, w, 1]) logits on generated images.
    mask: optional mask broadcastable to `fake_logits`.
    reduction: "mean" over (masked) patches or "sum".

  Returns:
    A scalar.
  """
  if reduction not in ("mean", "sum"):
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
  return _patch_mean(sigmoid_binary_cross_entropy(fake_logits, 1.0), mask,
                     reduction)


def discriminator_accuracy(real_logits: jax.Array,
                           fake_logits: jax.Array) -> jax.Array:
  """0.5 * (share of real logits > 0 + share of fake logits <= 0)."""
  return 0.5 * (jnp.mean(real_logits > 0) + jnp.mean(fake_logits <= 0))
