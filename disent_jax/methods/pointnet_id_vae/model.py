"""Networks of paper 002: a PointNet VAE with identity and expression branches
and the identity discriminator over face pairs.

The networks work in normalised coordinates x = (X - c) / s (c the mean
face's centroid, s its RMS radius, X in mm). The decoders output offsets
from the normalised data mean face m:

  x_id  = m + a D_id(z_id)                      (predicted neutral)
  x_exp = a D_exp(z_exp)                        (expression offset)
  x     = x_id + x_exp                          (eq. 1)

with a the constant `output_scale` (1 in the paper).

The encoder is the paper's PointNet (`encoder_type="pointnet"`) or, as a
listed deviation, a CoMA-style Chebyshev encoder over the registered
topology (`encoder_type="chebconv"`, `nn.mesh_autoencoder.MeshEncoder`),
which sees which vertex is which instead of max-pooling over a set.
"""

from typing import NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from disent_jax.nn import heads
from disent_jax.nn import mesh_autoencoder
from disent_jax.nn import pointnet
from disent_jax.ops import graph
from disent_jax.ops import hierarchy

ENCODERS = ("pointnet", "chebconv")


class Encoding(NamedTuple):
  """Posteriors of one batch: identity and expression Gaussians."""
  identity: heads.GaussianLatent
  expression: heads.GaussianLatent


class Decoding(NamedTuple):
  """Decoded shapes in mm, each [B, V, 3]."""
  identity: jax.Array  # X_id, the predicted neutral face.
  expression: jax.Array  # X_exp, the expression offset.
  face: jax.Array  # X_id + X_exp.


class IdExpVAE(nn.Module):
  """PointNet variational encoder with two decoders (paper 002, Fig. 2).

  Attributes:
    num_vertices: V.
    id_latent: identity latent size (CoMA 4, BU-3DFE 40, FaceScape 64).
    exp_latent: expression latent size.
    widths: PointNet per-point widths (3 -> 64 -> 64 -> 64 -> 128 -> 1024).
    decoder_hidden: hidden widths of each decoder (Linear(d, 256) -> ReLU).
    input_transform: use PointNet's input T-Net in the encoder.
    output_scale: a constant multiplying both decoders' outputs; the data's
      RMS offset from the mean face puts the outputs in the data's units
      at initialisation (1: the paper's plain Linear output).
    encoder_type: "pointnet" (the paper) or "chebconv" (a deviation).
    cheb_operators: the Chebyshev encoder's per-level operators (fine to
      coarse; `hierarchy.hierarchy_operators`).
    cheb_down: its per-level down-samplings.
    cheb_filters: its conv widths per level.
    cheb_order: its Chebyshev order K.
  """
  num_vertices: int
  id_latent: int
  exp_latent: int
  widths: Sequence[int] = pointnet.FACE_EXP_WIDTHS
  decoder_hidden: Sequence[int] = (256,)
  input_transform: bool = False
  output_scale: float = 1.0
  encoder_type: str = "pointnet"
  cheb_operators: Sequence[graph.GraphOperator] = ()
  cheb_down: Sequence[hierarchy.Sampling] = ()
  cheb_filters: Sequence[int] = mesh_autoencoder.COMA_ENCODER_FILTERS
  cheb_order: int = 6

  def setup(self):
    if self.encoder_type not in ENCODERS:
      raise ValueError(f"encoder_type={self.encoder_type!r}: expected one "
                       f"of {ENCODERS}")
    if self.encoder_type == "pointnet":
      self.encoder = pointnet.PointNetEncoder(
          tuple(self.widths), input_transform=self.input_transform)
    else:
      self.encoder = mesh_autoencoder.MeshEncoder(
          operators=tuple(self.cheb_operators), down=tuple(self.cheb_down),
          filters=tuple(self.cheb_filters), K=self.cheb_order, latent=None)
    self.id_head = heads.GaussianHead(self.id_latent)
    self.exp_head = heads.GaussianHead(self.exp_latent)
    self.id_decoder = heads.MLP(tuple(self.decoder_hidden) +
                                (3 * self.num_vertices,))
    self.exp_decoder = heads.MLP(tuple(self.decoder_hidden) +
                                 (3 * self.num_vertices,))

  def encode(self, points: jax.Array, *, train: bool) -> Encoding:
    """Normalised points [B, V, 3] -> identity and expression posteriors.

    With `train=True`, batch statistics are used (mutable 'batch_stats') and
    the samples are reparameterised draws from the 'latent' rng stream;
    otherwise running averages and posterior means are used.
    """
    if self.encoder_type == "pointnet":
      features = self.encoder(points, use_running_average=not train).features
    else:
      features = self.encoder(points)
    return Encoding(self.id_head(features, deterministic=not train),
                    self.exp_head(features, deterministic=not train))

  def decode_identity(self, z_id: jax.Array) -> jax.Array:
    """[B, id_latent] -> normalised identity offsets [B, V, 3]."""
    out = self.id_decoder(z_id) * self.output_scale
    return out.reshape(out.shape[:-1] + (self.num_vertices, 3))

  def decode_expression(self, z_exp: jax.Array) -> jax.Array:
    """[B, exp_latent] -> normalised expression offsets [B, V, 3]."""
    out = self.exp_decoder(z_exp) * self.output_scale
    return out.reshape(out.shape[:-1] + (self.num_vertices, 3))

  def __call__(self, points: jax.Array, *, train: bool
               ) -> tuple[Encoding, jax.Array, jax.Array]:
    """Encodes and decodes: (posteriors, identity, expression offsets)."""
    enc = self.encode(points, train=train)
    return (enc, self.decode_identity(enc.identity.sample),
            self.decode_expression(enc.expression.sample))


class IdentityDiscriminator(nn.Module):
  """D_ID: is a (face, candidate neutral) pair of one identity? (6 channels).

  PointNet with a 6 x 6 input T-Net, per-point widths 64, 128, 1024,
  max-pool, fully connected 512 -> 256 -> 2; with `batch_norm` (the public
  code's `use_bn=True`) batch norm everywhere and dropout 0.5 on the last
  hidden layer, without it (the public code's default) neither. Returns the
  logit of "same identity".
  """
  widths: Sequence[int] = pointnet.PAIR_WIDTHS
  head: Sequence[int] = pointnet.PAIR_HEAD
  dropout_rate: float = 0.0
  input_transform: bool = True
  batch_norm: bool = False

  @nn.compact
  def __call__(self, face: jax.Array, candidate: jax.Array, *,
               train: bool) -> tuple[jax.Array, jax.Array]:
    """Normalised [B, V, 3] pairs -> (logits [B], input transform)."""
    logits, transform = pointnet.PointNetPairClassifier(
        tuple(self.widths), tuple(self.head), num_classes=2,
        dropout_rate=self.dropout_rate,
        input_transform=self.input_transform, batch_norm=self.batch_norm,
        name="classifier")(
            face, candidate, use_running_average=not train,
            deterministic=not train)
    # Two-class logits (different, same) -> one "same" logit.
    if transform is None:
      transform = jnp.eye(2 * face.shape[-1], dtype=face.dtype)
    return logits[..., 1] - logits[..., 0], transform
