"""Which loss terms paper 002 uses (eq. 6-8), and their weights.

The terms themselves are `disent_jax.losses` functions; this module holds
the weights and the two compositions specific to the method.

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

from disent_jax.losses import adversarial
from disent_jax.losses import reconstruction


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
  return reconstruction.mse(expression, jnp.take(offsets, labels, axis=0))


def discriminator_loss(real_logits: jax.Array,
                       fake_logits: jax.Array) -> jax.Array:
  """D_ID's loss (eq. 6/8): the mean BCE of real pairs -> 1, predicted -> 0.

  Half the logistic discriminator loss: the average, not the sum, of the
  two cross-entropies, as in the public code.
  """
  return 0.5 * adversarial.logistic_discriminator_loss(real_logits,
                                                       fake_logits)
