"""The loss terms of paper 002 (eq. 6-8) and their weights.

  L_total = l1 L_recon + l2 L_KL + l3 L_DID + l4 L_neu + l5 L_lap  (eq. 7)
            [+ l_ne L_ne-gt with ground-truth neutrals]

All shape terms are computed on normalised coordinates ((X - mean) / scale),
as the reference code trains on normalised meshes; errors are reported in mm
by the evaluation.
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import optax

from disent_jax.nn import heads


@dataclasses.dataclass(frozen=True)
class Weights:
  """Loss weights of eq. (7).

  Attributes:
    recon: lambda_1, the reconstruction MSE.
    kl_id: lambda_2 on the identity KL term (before annealing).
    kl_exp: lambda_2 on the expression KL term (before annealing).
    adversarial: lambda_3, the identity-discriminator term (0: -id-dis).
    neutral_code: lambda_4, L_neu (L1 between z_id and the re-encoded z_id).
    laplacian: lambda_5, the Laplacian smoothness of predicted identities.
    neutral_gt: the ground-truth neutral MSE of the +ne-gt setting (0: off).
    expression_prior: the public code's no-GT term, an MSE between the
      predicted expression offset and its label's average offset (0: off,
      as in the paper).
  """
  recon: float
  kl_id: float
  kl_exp: float
  adversarial: float
  neutral_code: float
  laplacian: float
  neutral_gt: float
  expression_prior: float = 0.0

  @classmethod
  def from_config(cls, c: ml_collections.ConfigDict) -> "Weights":
    return cls(recon=c.recon, kl_id=c.kl_id, kl_exp=c.kl_exp,
               adversarial=c.adversarial,
               neutral_code=c.neutral_code, laplacian=c.laplacian,
               neutral_gt=c.neutral_gt,
               expression_prior=c.get("expression_prior", 0.0))


def kl_annealing(epoch: jax.Array, *, epochs: float) -> jax.Array:
  """The KL weight factor max(0, (E - epoch) / E) of the reference code.

  Args:
    epoch: the (fractional) epoch.
    epochs: E; 0 disables annealing (factor 1).

  Returns:
    A scalar factor in [0, 1].
  """
  if epochs <= 0:
    return jnp.ones((), jnp.float32)
  return jnp.clip((epochs - epoch) / epochs, 0.0, 1.0)


def mse(prediction: jax.Array, target: jax.Array) -> jax.Array:
  """Mean squared error over all elements (L_recon)."""
  return jnp.mean(jnp.square(prediction - target))


def expression_prior(expression: jax.Array, offsets: jax.Array,
                     labels: jax.Array) -> jax.Array:
  """The public code's no-GT term: MSE to the label's average offset.

  Args:
    expression: [B, V, 3] predicted expression offsets.
    offsets: [L, V, 3] average offset of each expression label.
    labels: [B] int expression labels in [0, L).

  Returns:
    The mean squared difference between `expression` and `offsets[labels]`.
  """
  return mse(expression, jnp.take(offsets, labels, axis=0))


def kl_terms(posterior: heads.GaussianLatent) -> jax.Array:
  """Batch mean of KL(q(z|X) || N(0, I)), summed over latent dims."""
  return jnp.mean(posterior.kl())


def neutral_code_l1(z_id: jax.Array, z_id_reencoded: jax.Array) -> jax.Array:
  """L_neu: mean absolute difference of the two identity codes."""
  return jnp.mean(jnp.abs(z_id - z_id_reencoded))


def same_identity_bce(logits: jax.Array, same: bool | jax.Array) -> jax.Array:
  """Binary cross-entropy of "same identity" logits against a label (eq. 8)."""
  labels = jnp.broadcast_to(jnp.asarray(same, logits.dtype), logits.shape)
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))


def discriminator_loss(real_logits: jax.Array,
                       fake_logits: jax.Array) -> jax.Array:
  """D_ID's loss (eq. 6/8): real pairs labelled 1, predicted pairs 0."""
  return 0.5 * (same_identity_bce(real_logits, True) +
                same_identity_bce(fake_logits, False))


def generator_adversarial_loss(fake_logits: jax.Array) -> jax.Array:
  """The VAE's L_DID: make (X_id, X) pass as a same-identity pair."""
  return same_identity_bce(fake_logits, True)


def pair_accuracy(real_logits: jax.Array, fake_logits: jax.Array
                  ) -> jax.Array:
  """Fraction of pairs D_ID classifies correctly."""
  return 0.5 * (jnp.mean(real_logits > 0) + jnp.mean(fake_logits <= 0))
