"""Baselines of paper 000's tables that are not the method itself.

  * `PlainAutoencoder`: the paper's Z_0 analogue, the same encoder and
    decoder stack with one unstructured latent as large as all of the
    method's latents together, trained on E_recon alone. Its latent is
    probed like the method's (Tables 2-3).
  * `linear_decomposition`: a [37]-style linear model (PCA of the training
    images) whose coefficients are probed the same way.

The [30]-style model is the method's `ablation=nfe` config (same networks
and [30] constraints, an unstructured latent, no multilinear streams).
"""

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from disent_jax.losses import reconstruction
from disent_jax.methods.tensor_aae import model as model_lib


class PlainAutoencoder(nn.Module):
  """E (the method's encoder) -> z [latent] -> one image decoder.

  Attributes:
    widths: conv widths.
    code: size of the encoder's sigmoid code.
    latent: size of the unstructured latent.
    size: image size S.
  """
  widths: tuple[int, int, int]
  code: int
  latent: int
  size: int

  def setup(self):
    self.encoder = model_lib.ConvEncoder(widths=self.widths, code=self.code)
    self.head = nn.Dense(self.latent)
    self.decoder = model_lib.ConvDecoder(widths=self.widths, size=self.size,
                                         out_channels=3)

  def encode(self, x: jax.Array) -> jax.Array:
    """[B, S, S, 3] -> [B, latent]."""
    z, _ = self.encoder(x)
    return self.head(z)

  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """[B, S, S, 3] -> (reconstruction [B, S, S, 3], latent)."""
    z = self.encode(x)
    return nn.sigmoid(self.decoder(z)), z


def plain_latent_size(model_cfg: ml_collections.ConfigDict) -> int:
  """The method's latents together: z_b + z_m + z_l + z_p + z_id + z_exp."""
  m = model_cfg
  return int(m.background + m.mask + m.light + 9 + m.identity + m.expression)


def plain_loss(params: Any, images: jax.Array, *, net: PlainAutoencoder
               ) -> jax.Array:
  """E_recon of the plain autoencoder."""
  recon, _ = net.apply({"params": params}, images)
  return reconstruction.mse(recon, images)


def plain_step(params: Any, opt_state: Any, images: jax.Array, *,
               net: PlainAutoencoder, tx: optax.GradientTransformation
               ) -> tuple[Any, Any, jax.Array]:
  """One Adam step on E_recon; returns (params, opt_state, loss)."""
  loss, grads = jax.value_and_grad(plain_loss)(params, images, net=net)
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, loss


@dataclasses.dataclass
class FittedPlain:
  """A trained plain autoencoder."""
  net: PlainAutoencoder
  params: Any
  losses: np.ndarray  # [steps] training E_recon.

  def encode(self, images: np.ndarray, *, batch_size: int = 64
             ) -> np.ndarray:
    """Latents [N, latent] of images [N, S, S, 3]."""
    fn = jax.jit(lambda p, x: self.net.apply({"params": p}, x,
                                             method=PlainAutoencoder.encode))
    return np.concatenate([
        np.asarray(fn(self.params, jnp.asarray(images[i:i + batch_size])))
        for i in range(0, len(images), batch_size)])

  def reconstruct(self, images: np.ndarray, *, batch_size: int = 64
                  ) -> np.ndarray:
    """Reconstructions [N, S, S, 3]."""
    fn = jax.jit(lambda p, x: self.net.apply({"params": p}, x)[0])
    return np.concatenate([
        np.asarray(fn(self.params, jnp.asarray(images[i:i + batch_size])))
        for i in range(0, len(images), batch_size)])


def fit_plain_autoencoder(images: np.ndarray, *, widths, code: int,
                          latent: int, steps: int, batch_size: int,
                          learning_rate: float, seed: int = 0,
                          b1: float = 0.5) -> FittedPlain:
  """Trains a `PlainAutoencoder` on training images [N, S, S, 3].

  Batches are drawn without replacement per epoch from `seed`.
  """
  images = np.asarray(images, np.float32)
  n, s = images.shape[0], images.shape[1]
  net = PlainAutoencoder(widths=tuple(widths), code=code, latent=latent,
                         size=s)
  key = jax.random.PRNGKey(seed)
  params = net.init(key, jnp.asarray(images[:1]))["params"]
  tx = optax.adam(learning_rate, b1=b1)
  opt_state = tx.init(params)
  step = jax.jit(functools.partial(plain_step, net=net, tx=tx))
  rng = np.random.default_rng(seed)
  order, pos, losses = rng.permutation(n), 0, []
  for _ in range(steps):
    if pos + batch_size > n:
      order, pos = rng.permutation(n), 0
    batch = jnp.asarray(images[order[pos:pos + batch_size]])
    pos += batch_size
    params, opt_state, loss = step(params, opt_state, batch)
    losses.append(float(loss))
  return FittedPlain(net=net, params=params, losses=np.asarray(losses))


def linear_decomposition(train_images: np.ndarray, components: int
                         ) -> tuple[np.ndarray, np.ndarray]:
  """PCA of training images: (mean [D], basis [D, components])."""
  x = np.asarray(train_images, np.float64).reshape(len(train_images), -1)
  mean = x.mean(0)
  _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
  return mean, vt[:components].T


def linear_codes(images: np.ndarray, mean: np.ndarray, basis: np.ndarray
                 ) -> np.ndarray:
  """Coefficients [N, components] of images under `linear_decomposition`."""
  x = np.asarray(images, np.float64).reshape(len(images), -1)
  return (x - mean) @ basis
