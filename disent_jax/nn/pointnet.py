"""PointNet encoder (Qi et al., 2017) and the pair classifier of paper 002.

Per-point shared MLPs are dense layers on the last axis (1x1 convolutions),
each followed by batch norm and ReLU; a global max-pool over the points
makes the feature invariant to point order.

Batch norm: every module here takes `use_running_average` as a call
argument. With `use_running_average=False` (training) the batch statistics
are used and the running averages in the mutable 'batch_stats' collection
are updated, so apply with `mutable=["batch_stats"]`:

  variables = model.init(key, points, use_running_average=False)
  out, updates = model.apply(variables, points, use_running_average=False,
                             mutable=["batch_stats"])
  variables = {**variables, **updates}

With `use_running_average=True` (evaluation) the stored averages are used
and nothing is mutated. Flax's momentum 0.9 matches PyTorch's default 0.1.
`batch_norm=False` drops every batch norm (FaceExpDisentanglement's
`use_bn=False`, its discriminator's default); `use_running_average` is then
ignored and the module has no 'batch_stats'.
"""

from typing import NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from disent_jax.ops import pointwise

_HIGHEST = jax.lax.Precision.HIGHEST

# FaceExpDisentanglement's encoder widths (3 -> 64 -> 64 -> 64 -> 128 -> 1024).
FACE_EXP_WIDTHS = (64, 64, 64, 128, 1024)
# The identity discriminator's per-point widths (6 -> 64 -> 128 -> 1024) and
# its classifier head (1024 -> 512 -> 256 -> 2).
PAIR_WIDTHS = (64, 128, 1024)
PAIR_HEAD = (512, 256)


def _batch_norm(name: str | None = None) -> nn.BatchNorm:
  return nn.BatchNorm(momentum=0.9, epsilon=1e-5, name=name)


def _maybe_batch_norm(x: jax.Array, name: str, *, enabled: bool,
                      use_running_average: bool) -> jax.Array:
  if not enabled:
    return x
  return _batch_norm(name)(x, use_running_average=use_running_average)


class _DenseParams(nn.Module):
  """`nn.Dense`'s parameters (same names, shapes, initialisers and rngs)
  without applying them: (kernel [C_in, width], bias [width])."""
  width: int

  @nn.compact
  def __call__(self, c_in: int) -> tuple[jax.Array, jax.Array]:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (c_in, self.width), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros_init(), (self.width,),
                      jnp.float32)
    return kernel, bias


class _BatchNormParams(nn.Module):
  """`_batch_norm()`'s variables (same names, shapes and initialisers)
  without applying them.

  Called with the batch statistics (training) it updates the running
  averages as `nn.BatchNorm` does (momentum 0.9, not while initialising)
  and returns them; called with None (evaluation) it returns the running
  averages. Returns (scale, bias, mean, var), each [width].
  """
  width: int
  momentum: float = 0.9

  @nn.compact
  def __call__(self, batch_stats: tuple[jax.Array, jax.Array] | None
               ) -> tuple[jax.Array, ...]:
    shape = (self.width,)
    ra_mean = self.variable("batch_stats", "mean", jnp.zeros, shape,
                            jnp.float32)
    ra_var = self.variable("batch_stats", "var", jnp.ones, shape,
                           jnp.float32)
    scale = self.param("scale", nn.initializers.ones_init(), shape,
                       jnp.float32)
    bias = self.param("bias", nn.initializers.zeros_init(), shape,
                      jnp.float32)
    if batch_stats is None:
      return scale, bias, ra_mean.value, ra_var.value
    mean, var = batch_stats
    if not self.is_initializing():
      ra_mean.value = (self.momentum * ra_mean.value +
                       (1.0 - self.momentum) * mean)
      ra_var.value = self.momentum * ra_var.value + (1.0 - self.momentum) * var
    return scale, bias, mean, var


class SharedMLP(nn.Module):
  """Per-point dense -> batch norm -> ReLU layers (1x1 convolutions).

  Attributes:
    widths: output width of each layer.
    activate_final: apply ReLU after the last layer too.
    batch_norm: batch norm after each dense layer.
    max_pool: return the max over the points of the last layer. With
      `activate_final`, the last dense layer, its batch norm, ReLU and the
      pool are one op (`ops.pointwise.dense_relu_max`, with the batch
      statistics from x's Gram matrix: same values, parameters and batch
      stats, a backward pass through the arg-max points only).
  """
  widths: Sequence[int]
  activate_final: bool = True
  batch_norm: bool = True
  max_pool: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, *, use_running_average: bool) -> jax.Array:
    """[..., N, C] -> [..., N, widths[-1]] ([..., widths[-1]] if pooled)."""
    last = len(self.widths) - 1
    fused = self.max_pool and self.activate_final
    for i, width in enumerate(self.widths):
      if i == last and fused:
        kernel, bias = _DenseParams(width, name=f"dense_{i}")(x.shape[-1])
        if not self.batch_norm:
          return pointwise.dense_relu_max(x, kernel, bias)
        stats = (None if use_running_average else
                 pointwise.point_statistics(x, kernel, bias))
        scale, offset, mean, var = _BatchNormParams(width, name=f"bn_{i}")(
            stats)
        return pointwise.dense_batchnorm_relu_max(x, kernel, bias, scale,
                                                  offset, mean, var)
      x = nn.Dense(width, name=f"dense_{i}")(x)
      x = _maybe_batch_norm(x, f"bn_{i}", enabled=self.batch_norm,
                            use_running_average=use_running_average)
      if i < last or self.activate_final:
        x = nn.relu(x)
    return jnp.max(x, axis=-2) if self.max_pool else x


class TNet(nn.Module):
  """Predicts a k x k feature transform, initialised to the identity.

  Per-point widths 64, 128, 1024, max-pool, dense 512 and 256 (batch norm,
  ReLU), then a zero-initialised dense layer to k * k added to I.

  Attributes:
    k: the transform size (3 for xyz, 6 for a pair of xyz).
    widths: per-point widths.
    head: hidden widths after the pool.
    batch_norm: batch norm after each hidden layer.
  """
  k: int
  widths: Sequence[int] = (64, 128, 1024)
  head: Sequence[int] = (512, 256)
  batch_norm: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, *, use_running_average: bool) -> jax.Array:
    """[..., N, k] -> [..., k, k]."""
    h = SharedMLP(self.widths, batch_norm=self.batch_norm, max_pool=True,
                  name="mlp")(x, use_running_average=use_running_average)
    for i, width in enumerate(self.head):
      h = nn.Dense(width, name=f"fc_{i}")(h)
      h = _maybe_batch_norm(h, f"fc_bn_{i}", enabled=self.batch_norm,
                            use_running_average=use_running_average)
      h = nn.relu(h)
    h = nn.Dense(self.k * self.k, kernel_init=nn.initializers.zeros_init(),
                 name="to_transform")(h)
    return h.reshape(h.shape[:-1] + (self.k, self.k)) + jnp.eye(
        self.k, dtype=h.dtype)


class PointNetOutput(NamedTuple):
  """Attributes: features [..., widths[-1]]; transform [..., C, C] or None."""
  features: jax.Array
  transform: jax.Array | None


class PointNetEncoder(nn.Module):
  """PointNet global feature: [T-Net] -> shared MLP -> max-pool.

  Attributes:
    widths: per-point widths (FaceExpDisentanglement: 64, 64, 64, 128, 1024).
    input_transform: predict and apply a C x C input transform (T-Net).
    activate_final: ReLU after the last per-point layer (before pooling).
    batch_norm: batch norm in the shared MLP and the T-Net.
  """
  widths: Sequence[int] = FACE_EXP_WIDTHS
  input_transform: bool = False
  activate_final: bool = True
  batch_norm: bool = True

  @nn.compact
  def __call__(self, points: jax.Array, *,
               use_running_average: bool) -> PointNetOutput:
    """Encodes point sets.

    Args:
      points: [..., N, C] (C = 3 for xyz).
      use_running_average: batch-norm mode (see the module docstring).

    Returns:
      `PointNetOutput` with the order-invariant global feature and the input
      transform (None without a T-Net); the transformed points are
      `points @ transform`.
    """
    transform = None
    x = points
    if self.input_transform:
      transform = TNet(points.shape[-1], batch_norm=self.batch_norm,
                       name="tnet")(
          points, use_running_average=use_running_average)
      x = jnp.einsum("...nc,...cd->...nd", points, transform,
                     precision=_HIGHEST)
    features = SharedMLP(self.widths, activate_final=self.activate_final,
                         batch_norm=self.batch_norm, max_pool=True,
                         name="mlp")(x, use_running_average=use_running_average)
    return PointNetOutput(features=features, transform=transform)


class PointNetPairClassifier(nn.Module):
  """Classifies a pair of point sets in correspondence (paper 002's D_ID).

  The two sets are concatenated per point (2C channels, 6 for xyz pairs),
  passed through a PointNet with a 2C x 2C input T-Net, max-pooled, and
  classified by dense -> batch norm -> ReLU layers with dropout before the
  output layer. FaceExpDisentanglement's default (`use_bn=False`) has
  neither batch norm nor dropout: `batch_norm=False, dropout_rate=0`.

  Attributes:
    widths: per-point widths (64, 128, 1024).
    head: hidden classifier widths (512, 256).
    num_classes: output logits (2: same / different identity).
    dropout_rate: dropout on the last hidden layer (0.5; 0: none).
    input_transform: use the input T-Net.
    batch_norm: batch norm everywhere (PointNet, T-Net, classifier).
  """
  widths: Sequence[int] = PAIR_WIDTHS
  head: Sequence[int] = PAIR_HEAD
  num_classes: int = 2
  dropout_rate: float = 0.5
  input_transform: bool = True
  batch_norm: bool = True

  @nn.compact
  def __call__(self, first: jax.Array, second: jax.Array, *,
               use_running_average: bool,
               deterministic: bool) -> tuple[jax.Array, jax.Array | None]:
    """Scores pairs.

    Args:
      first: [..., N, C] e.g. a face.
      second: [..., N, C] e.g. a candidate neutral of the same topology.
      use_running_average: batch-norm mode.
      deterministic: disable dropout (otherwise needs a 'dropout' rng).

    Returns:
      (logits [..., num_classes], input transform [..., 2C, 2C] or None).
    """
    if first.shape != second.shape:
      raise ValueError(f"pair shapes differ: {first.shape} vs {second.shape}")
    x = jnp.concatenate([first, second], axis=-1)
    out = PointNetEncoder(self.widths, input_transform=self.input_transform,
                          batch_norm=self.batch_norm, name="pointnet")(
                              x, use_running_average=use_running_average)
    h = out.features
    for i, width in enumerate(self.head):
      h = nn.Dense(width, name=f"fc_{i}")(h)
      if i == len(self.head) - 1 and self.dropout_rate > 0:
        h = nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
      h = _maybe_batch_norm(h, f"fc_bn_{i}", enabled=self.batch_norm,
                            use_running_average=use_running_average)
      h = nn.relu(h)
    return nn.Dense(self.num_classes, name="logits")(h), out.transform
