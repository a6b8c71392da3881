"""Pure loss functions, reusable from any JAX project (no Flax, no harness).

Arrays come first and hyper-parameters are keyword-only; every function is
safe under `jax.jit`, `jax.vmap` and `jax.grad`. One module per family:

  reconstruction: MSE / L1 / per-vertex L2, masked means, the image
    gradient-difference loss, landmark and pairwise-distance losses.
  probabilistic: Gaussian KL divergences, KL annealing schedules.
  adversarial: BCE from logits, logistic GAN + R1, BEGAN with its k_t
    controller, WGAN-div, hinge and patch-GAN losses.
  identity: cosine identity loss with a margin, softmax cross-entropy,
    center loss and its centre update.
  geometry: Laplacian and template-relative smoothness, mirror symmetry,
    mean-curvature energy, the orthogonality regulariser.
  intrinsic: masked smoothness, total variation, unit-length normals and
    the batch-wise white-shading anchor of intrinsic decompositions.
  image_formation: SH-coefficient, skin-colour and masked photometric
    losses, the 3DMM coefficient prior.

  from disent_jax import losses
  losses.adversarial.r1_penalty(d_fn, real_images, gamma=10.0)
"""

from disent_jax.losses import adversarial
from disent_jax.losses import geometry
from disent_jax.losses import identity
from disent_jax.losses import image_formation
from disent_jax.losses import intrinsic
from disent_jax.losses import probabilistic
from disent_jax.losses import reconstruction

__all__ = [
    "adversarial", "geometry", "identity", "image_formation", "intrinsic",
    "probabilistic", "reconstruction",
]
