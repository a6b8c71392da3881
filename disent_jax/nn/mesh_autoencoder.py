"""CoMA-style mesh encoder and decoder (Ranjan et al., 2018; paper 003).

Encoder: [ChebConv(F_l, K) -> activation -> Pool(D_l)] per level, then a
dense layer to the latent code. Decoder: dense layer to the coarsest level,
then [Unpool(U_l) -> ChebConv(F_l, K) -> activation] per level, and a last
ChebConv to the output channels.

* CoMA: `MeshEncoder(filters=(16, 16, 16, 32), K=6, latent=8)` and
  `MeshDecoder(filters=(32, 16, 16, 16), K=6)` on a [4, 4, 4, 4] hierarchy.
* Paper 003's shape/albedo decoder, FC(l * 256) -> US(2) -> GC(6, 256) ->
  US(4) -> GC(6, 128) -> US(4) -> GC(6, 64) -> US(4) -> GC(6, 32) -> US(4)
  -> GC(6, 16) -> GC(6, 3): `MeshDecoder(filters=(256, 128, 64, 32, 16),
  K=6)` on a hierarchy with factors (4, 4, 4, 4, 2).

`operators`, `down` and `up` come from `hierarchy.hierarchy_operators(h)`,
`h.down` and `h.up` of a `hierarchy.MeshHierarchy` h (fine to coarse).
"""

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import numpy as np

from disent_jax.nn import chebconv
from disent_jax.ops import graph
from disent_jax.ops import hierarchy

COMA_ENCODER_FILTERS = (16, 16, 16, 32)
COMA_DECODER_FILTERS = (32, 16, 16, 16)
GCN_RECON_DECODER_FILTERS = (256, 128, 64, 32, 16)


class MeshEncoder(nn.Module):
  """Chebyshev-conv encoder over a mesh hierarchy.

  Attributes:
    operators: per-level scaled Laplacians, fine to coarse (at least
      len(filters) of them).
    down: per-level down-sampling, level l -> l+1 (len(filters) of them).
    filters: conv widths per level (CoMA: 16, 16, 16, 32).
    K: Chebyshev terms (CoMA: 6).
    latent: output size (CoMA: 8); None returns the flattened features.
    activation: elementwise non-linearity after each conv.
  """
  operators: Sequence[graph.GraphOperator]
  down: Sequence[hierarchy.Sampling]
  filters: Sequence[int] = COMA_ENCODER_FILTERS
  K: int = 6  # pylint: disable=invalid-name
  latent: int | None = 8
  activation: Callable[[jax.Array], jax.Array] = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Encodes meshes.

    Args:
      x: [..., V_0, C] (C = 3 for vertex positions).

    Returns:
      [..., latent] (or [..., V_L * filters[-1]] when latent is None).
    """
    if len(self.operators) < len(self.filters) or len(self.down) < len(
        self.filters):
      raise ValueError(f"need {len(self.filters)} operators and down-samplings"
                       f", got {len(self.operators)} and {len(self.down)}")
    for level, width in enumerate(self.filters):
      x = chebconv.ChebConv(width, self.K, name=f"conv_{level}")(
          x, self.operators[level])
      x = self.activation(x)
      x = chebconv.Pool(self.down[level])(x)
    x = x.reshape(x.shape[:-2] + (-1,))
    if self.latent is None:
      return x
    return nn.Dense(self.latent, name="to_latent")(x)


class MeshDecoder(nn.Module):
  """Chebyshev-conv decoder over a mesh hierarchy.

  Attributes:
    operators: per-level scaled Laplacians, fine to coarse (len(filters) of
      them; level 0 is the output mesh).
    up: per-level up-sampling, level l+1 -> l (len(filters) of them).
    filters: conv widths after each up-sampling, coarse to fine (CoMA: 32,
      16, 16, 16; paper 003: 256, 128, 64, 32, 16). The first dense layer
      outputs V_L * filters[0] features.
    K: Chebyshev terms.
    out_features: output channels (3 for positions or RGB albedo).
    activation: non-linearity after each hidden conv (none after the last).
    out_kernel_init: the last conv's kernel initialiser (ChebConv's default
      when None; zeros makes the decoder start at a constant output, e.g.
      a residual decoder at its template).
  """
  operators: Sequence[graph.GraphOperator]
  up: Sequence[hierarchy.Sampling]
  filters: Sequence[int] = COMA_DECODER_FILTERS
  K: int = 6  # pylint: disable=invalid-name
  out_features: int = 3
  activation: Callable[[jax.Array], jax.Array] = nn.relu
  out_kernel_init: Any = None

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    """Decodes latent codes.

    Args:
      z: [..., D] codes.

    Returns:
      [..., V_0, out_features].
    """
    levels = len(self.filters)
    if len(self.up) < levels or len(self.operators) < levels:
      raise ValueError(f"need {levels} operators and up-samplings, got "
                       f"{len(self.operators)} and {len(self.up)}")
    # up[l] maps level l+1 -> l, so its index width is V_{l+1}.
    coarse = _num_inputs(self.up[levels - 1])
    x = nn.Dense(coarse * self.filters[0], name="from_latent")(z)
    x = x.reshape(z.shape[:-1] + (coarse, self.filters[0]))
    for step, width in enumerate(self.filters):
      level = levels - 1 - step
      x = chebconv.Unpool(self.up[level])(x)
      x = chebconv.ChebConv(width, self.K, name=f"conv_{step}")(
          x, self.operators[level])
      x = self.activation(x)
    init = ({} if self.out_kernel_init is None
            else {"kernel_init": self.out_kernel_init})
    return chebconv.ChebConv(self.out_features, self.K, name="conv_out",
                             **init)(x, self.operators[0])


def _num_inputs(sampling: hierarchy.Sampling) -> int:
  # Every coarse vertex is a kept fine vertex, so it is indexed by its row.
  return int(np.max(np.asarray(sampling.indices))) + 1


class MeshAutoencoder(nn.Module):
  """CoMA autoencoder: `MeshEncoder` then `MeshDecoder` (defaults of CoMA).

  Attributes:
    operators: per-level scaled Laplacians.
    down: per-level down-sampling.
    up: per-level up-sampling.
    encoder_filters: encoder widths.
    decoder_filters: decoder widths.
    K: Chebyshev terms.
    latent: code size.
    out_features: output channels.
  """
  operators: Sequence[graph.GraphOperator]
  down: Sequence[hierarchy.Sampling]
  up: Sequence[hierarchy.Sampling]
  encoder_filters: Sequence[int] = COMA_ENCODER_FILTERS
  decoder_filters: Sequence[int] = COMA_DECODER_FILTERS
  K: int = 6  # pylint: disable=invalid-name
  latent: int = 8
  out_features: int = 3

  def setup(self):
    self.encoder = MeshEncoder(self.operators, self.down,
                               filters=self.encoder_filters, K=self.K,
                               latent=self.latent)
    self.decoder = MeshDecoder(self.operators, self.up,
                               filters=self.decoder_filters, K=self.K,
                               out_features=self.out_features)

  def __call__(self, x: jax.Array) -> jax.Array:
    """[..., V_0, C] -> [..., V_0, out_features]."""
    return self.decoder(self.encoder(x))

  def encode(self, x: jax.Array) -> jax.Array:
    return self.encoder(x)

  def decode(self, z: jax.Array) -> jax.Array:
    return self.decoder(z)
