"""Paper 000's networks: the neuro-tensorial auto-encoder and its BEGAN critic.

Encoder E (App. A): three 5x5 convolutions, each followed by a 2x2 max-pool
that keeps its switches and the threshold non-linearity, then a sigmoid code
z_i and linear heads to z_b, z_m, z_l, z_p, z_id, z_exp (eq. 6).

Decoder D (eq. 7), three streams:
  1. shape: x_3d = B_(1)(z_exp ⊙ z_id) (eq. 3-4);
  2. image: f = z_exp ⊙ z_id rotated by R = reshape(z_p) (§3.4), decoded to
     normals and albedo, SH Lambertian shading, mask and background decoders
     that max-unpool with the encoder's switches, x_hat = M F + (1 - M) Bg;
  3. frontal: x_f = Q_(1)(z_l ⊙ z_exp ⊙ z_id) (eq. 1-2) and the normals
     Q_(1)((1/k_l) 1 ⊙ z_exp ⊙ z_id) (eq. 5).
The heads fc_exp, fc_id map z_exp, z_id to 3DMM coefficients (eq. 10-11).

Images are [B, S, S, 3] in [0, 1]; flattened images and the frontal stream
use the C order of [S, S, 3]. SH lighting is the project's convention
(`ops.sh_lighting`, "discofacegan"), the one SynthFace stores.
"""

import dataclasses
import math
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from disent_jax.ops import multilinear
from disent_jax.ops import sh_lighting

Latents = dict[str, jax.Array]
Switches = tuple[jax.Array, ...]


def threshold(x: jax.Array) -> jax.Array:
  """Torch `nn.Threshold(0, 1e-6)`: x where x > 0, else 1e-6."""
  return jnp.where(x > 0, x, 1e-6)


def max_pool_with_switches(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """2x2 max-pool that also returns where each maximum was.

  Args:
    x: [B, H, W, C] with even H and W.

  Returns:
    (pooled [B, H/2, W/2, C], switches [B, H/2, W/2, 4, C]): a one-hot of
    the first maximum of each window (row-major in the window), with no
    gradient.
  """
  b, h, w, c = x.shape
  if h % 2 or w % 2:
    raise ValueError(f"max_pool_with_switches needs even H, W, got {x.shape}")
  win = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  win = win.reshape(b, h // 2, w // 2, 4, c)
  pooled = jnp.max(win, axis=3)
  first = jnp.argmax(win, axis=3)
  switches = jax.nn.one_hot(first, 4, axis=3, dtype=x.dtype)
  return pooled, jax.lax.stop_gradient(switches)


def max_unpool(y: jax.Array, switches: jax.Array) -> jax.Array:
  """SegNet unpooling: puts y [B, h, w, C] back at the switches' positions.

  Args:
    y: [B, h, w, C].
    switches: [B, h, w, 4, C] from `max_pool_with_switches`.

  Returns:
    [B, 2h, 2w, C], zero away from the recorded maxima.
  """
  b, h, w, c = y.shape
  if switches.shape != (b, h, w, 4, c):
    raise ValueError(f"switches {switches.shape} do not fit {y.shape}")
  up = (y[:, :, :, None, :] * switches).reshape(b, h, w, 2, 2, c)
  return up.transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, c)


def upsample_nearest(x: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, 2H, 2W, C] by repetition."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _lecun_fan_in(fan_in: int):
  std = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return std * jax.random.normal(key, shape, dtype)
  return init


class ConvEncoder(nn.Module):
  """conv5x5 -> max-pool (switches) -> threshold, three times; sigmoid code.

  Attributes:
    widths: the three conv widths (paper: 96, 48, 24).
    code: the size of z_i (paper: 128).
  """
  widths: Sequence[int]
  code: int

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, Switches]:
    """[B, S, S, 3] -> (z_i [B, code], switches of the three pools)."""
    switches = []
    h = x
    for i, width in enumerate(self.widths):
      h = nn.Conv(width, (5, 5), padding="SAME", name=f"conv_{i}")(h)
      h, s = max_pool_with_switches(h)
      switches.append(s)
      h = threshold(h)
    z = nn.sigmoid(nn.Dense(self.code, name="code")(h.reshape(h.shape[0], -1)))
    return z, tuple(switches)


class ConvDecoder(nn.Module):
  """The decoder stack of [30], mirrored from the encoder.

  Linear -> act -> [S/8, S/8, w3]; three (upsample or unpool) + conv5x5 +
  act stages (w3 -> w2 -> w1 -> w1); a 3x3 conv to `out_channels`.

  Attributes:
    widths: the encoder widths (w1, w2, w3).
    size: the image size S.
    out_channels: output channels.
    activation: "threshold" or "tanh" between layers.
  """
  widths: Sequence[int]
  size: int
  out_channels: int
  activation: str = "threshold"

  @nn.compact
  def __call__(self, z: jax.Array, switches: Switches | None = None
               ) -> jax.Array:
    """z [B, d] (and the encoder's switches to unpool) -> [B, S, S, C]."""
    act = threshold if self.activation == "threshold" else jnp.tanh
    w1, w2, w3 = self.widths
    s = self.size // 8
    h = act(nn.Dense(s * s * w3, name="project")(z)).reshape(-1, s, s, w3)
    for i, width in enumerate((w2, w1, w1)):
      if switches is None:
        h = upsample_nearest(h)
      else:
        h = max_unpool(h, switches[2 - i])
      h = act(nn.Conv(width, (5, 5), padding="SAME", name=f"conv_{i}")(h))
    return nn.Conv(self.out_channels, (3, 3), padding="SAME", name="out")(h)


def normals_from_xy(out: jax.Array) -> jax.Array:
  """[30]'s normal head: (n_x, n_y) = hardtanh, n_z = sqrt(1 - n_x² - n_y²).

  Args:
    out: [..., 2] raw decoder output.

  Returns:
    [..., 3] camera-frame normals with n_z >= 0 (unit when n_x² + n_y² <= 1;
    the unit-length loss pulls them there).
  """
  xy = jnp.clip(out, -1.0, 1.0)
  nz = jnp.sqrt(jax.nn.relu(1.0 - jnp.sum(jnp.square(xy), -1)) + 1e-8)
  return jnp.concatenate([xy, nz[..., None]], axis=-1)


@dataclasses.dataclass(frozen=True)
class Sizes:
  """Latent and output sizes (paper §3.5; CPU configs shrink them)."""
  image_size: int = 64
  widths: tuple[int, int, int] = (96, 48, 24)
  code: int = 128
  background: int = 128
  mask: int = 128
  light: int = 9
  identity: int = 80
  expression: int = 15
  num_vertices: int = 9375
  fit_identity: int = 157
  fit_expression: int = 28

  def validate(self, *, rotate: bool = True) -> None:
    """Raises ValueError on sizes the streams cannot use."""
    if self.image_size % 8:
      raise ValueError(f"model.image_size={self.image_size}: expected a "
                       "multiple of 8 (three 2x2 pools)")
    if rotate and (self.identity * self.expression) % 3:
      raise ValueError(
          f"model.identity x model.expression = "
          f"{self.identity * self.expression}: expected a multiple of 3 "
          "(the feature is reshaped to 3 x k/3 for the rotation, §3.4)")


class TensorAutoencoder(nn.Module):
  """E and D of paper 000 with the cores 𝒬 (texture) and ℬ (shape).

  Attributes:
    sizes: `Sizes`.
    light_head: "linear_rgb" (Linear 9 -> 27: per-channel SH from z_l) or
      "identity_grey" (z_l itself is grey SH, the literal reading).
    pose_mode: "rotate" (§3.4: R = reshape(z_p) multiplies the feature),
      "orthonormal" (the same with z_p projected onto SO(3)) or "concat"
      (the no-rotation ablation: decoders see [f, z_p]).
    separate_normal_core: give the frontal normals their own core instead of
      sharing 𝒬 (A27's option).
    feature: "khatri_rao" (the paper: f = z_exp ⊙ z_id) or "concat" (f =
      [z_exp, z_id], an unstructured latent: the [30]-style baseline; needs
      pose_mode="concat").
  """
  sizes: Sizes
  light_head: str = "linear_rgb"
  pose_mode: str = "rotate"
  separate_normal_core: bool = False
  feature: str = "khatri_rao"

  def setup(self):
    sz = self.sizes
    if self.feature not in ("khatri_rao", "concat"):
      raise ValueError(f"model.feature={self.feature!r}: expected "
                       "'khatri_rao' or 'concat'")
    if self.feature == "concat" and self.pose_mode != "concat":
      raise ValueError("model.feature='concat' has no 3 x k/3 feature to "
                       "rotate: set model.pose_mode='concat'")
    sz.validate(rotate=self.pose_mode != "concat")
    if self.light_head not in ("linear_rgb", "identity_grey"):
      raise ValueError(f"model.light_head={self.light_head!r}: expected "
                       "'linear_rgb' or 'identity_grey'")
    if self.pose_mode not in ("rotate", "orthonormal", "concat"):
      raise ValueError(f"model.pose_mode={self.pose_mode!r}: expected "
                       "'rotate', 'orthonormal' or 'concat'")
    self.encoder = ConvEncoder(widths=sz.widths, code=sz.code)
    self.heads = {name: nn.Dense(width) for name, width in
                  (("background", sz.background), ("mask", sz.mask),
                   ("light", sz.light), ("pose", 9),
                   ("identity", sz.identity),
                   ("expression", sz.expression))}
    dec = dict(widths=sz.widths, size=sz.image_size)
    self.normal_decoder = ConvDecoder(out_channels=2, activation="tanh", **dec)
    self.albedo_decoder = ConvDecoder(out_channels=3, **dec)
    self.mask_decoder = ConvDecoder(out_channels=1, **dec)
    self.background_decoder = ConvDecoder(out_channels=3, **dec)
    if self.light_head == "linear_rgb":
      self.light_linear = nn.Dense(27)
    k_x = 3 * sz.image_size ** 2
    kk = sz.light * sz.expression * sz.identity
    self.texture_core = self.param("texture_core", _lecun_fan_in(kk),
                                   (k_x, kk))
    if self.separate_normal_core:
      k2 = sz.expression * sz.identity
      self.normal_core = self.param("normal_core", _lecun_fan_in(k2),
                                    (k_x, k2))
    k2 = sz.expression * sz.identity
    self.shape_core = self.param("shape_core", _lecun_fan_in(k2),
                                 (3 * sz.num_vertices, k2))
    self.fc_expression = nn.Dense(sz.fit_expression)
    self.fc_identity = nn.Dense(sz.fit_identity)

  def encode(self, x: jax.Array) -> tuple[Latents, Switches]:
    """Images [B, S, S, 3] -> (latents {name: [B, d]}, pool switches)."""
    s = self.sizes.image_size
    if x.ndim != 4 or x.shape[1:] != (s, s, 3):
      raise ValueError(f"images must be [B, {s}, {s}, 3], got {x.shape}")
    z, switches = self.encoder(x)
    return {name: head(z) for name, head in self.heads.items()}, switches

  def lighting(self, z_light: jax.Array) -> jax.Array:
    """z_l [B, 9] -> SH coefficients [B, 3, 9]."""
    if self.light_head == "linear_rgb":
      return self.light_linear(z_light).reshape(-1, 3, 9)
    return jnp.broadcast_to(z_light[:, None, :], z_light.shape[:1] + (3, 9))

  def rotation(self, z_pose: jax.Array) -> jax.Array:
    """R [B, 3, 3] from z_p [B, 9] (row-major; raw unless orthonormal)."""
    if self.pose_mode == "orthonormal":
      return multilinear.latent_to_rotation(z_pose)
    return z_pose.reshape(-1, 3, 3)

  def decode(self, latents: Mapping[str, jax.Array], switches: Switches
             ) -> dict[str, jax.Array]:
    """All three streams from latents (e.g. swapped for editing).

    Returns:
      A dict of maps [B, S, S, C]: normals (3), albedo, shading, face,
      mask (1), background, image (the composite x_hat), frontal (x_f),
      frontal_normals; and shape [B, 3V], fit_expression [B, Ke],
      fit_identity [B, Ki], sh [B, 3, 9], rotation [B, 3, 3].
    """
    sz = self.sizes
    s = sz.image_size
    z_id, z_exp = latents["identity"], latents["expression"]
    z_l, z_p = latents["light"], latents["pose"]
    if self.feature == "concat":
      f = jnp.concatenate([z_exp, z_id], axis=-1)
    else:
      f = multilinear.khatri_rao([z_exp, z_id])
    rot = self.rotation(z_p)
    if self.pose_mode == "concat":
      g = jnp.concatenate([f, z_p], axis=-1)
    else:
      g = multilinear.rotate_features(f, rot)
    normals = normals_from_xy(self.normal_decoder(g))
    albedo = threshold(self.albedo_decoder(g))
    sh = self.lighting(z_l)
    shading = jax.nn.relu(sh_lighting.irradiance(normals,
                                                 sh[:, None, None]))
    face = jnp.clip(albedo * shading, 0.0, 1.0)
    mask = nn.sigmoid(self.mask_decoder(latents["mask"], switches))
    background = nn.sigmoid(self.background_decoder(latents["background"],
                                                    switches))
    image = jnp.clip(mask * face + (1.0 - mask) * background, 0.0, 1.0)
    frontal = multilinear.project(self.texture_core, [z_l, z_exp, z_id])
    if self.separate_normal_core:
      frontal_normals = multilinear.project(self.normal_core, [z_exp, z_id])
    else:
      core = self.texture_core.reshape(-1, sz.light, sz.expression,
                                       sz.identity)
      frontal_normals = multilinear.synthesize_constant_mode(
          core, [z_exp, z_id], mode=1)
    shape = multilinear.project(self.shape_core, [z_exp, z_id])
    return {
        "normals": normals, "albedo": albedo, "shading": shading,
        "face": face, "mask": mask, "background": background,
        "image": image, "frontal": frontal.reshape(-1, s, s, 3),
        "frontal_normals": frontal_normals.reshape(-1, s, s, 3),
        "shape": shape, "sh": sh, "rotation": rot,
        "fit_expression": self.fc_expression(z_exp),
        "fit_identity": self.fc_identity(z_id),
    }

  def __call__(self, x: jax.Array) -> tuple[dict[str, jax.Array], Latents]:
    """Images [B, S, S, 3] -> (decoder outputs, latents)."""
    latents, switches = self.encode(x)
    return self.decode(latents, switches), latents


class BeganDiscriminator(nn.Module):
  """𝒟: a conv auto-encoder of images (the [30] family, spec §2.3).

  Attributes:
    widths: conv widths (w1, w2, w3).
    code: bottleneck size.
    size: image size S.
  """
  widths: Sequence[int]
  code: int
  size: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """[B, S, S, 3] -> its reconstruction [B, S, S, 3] in [0, 1]."""
    h = x
    for i, width in enumerate(self.widths):
      h = nn.Conv(width, (5, 5), padding="SAME", name=f"conv_{i}")(h)
      h = threshold(nn.max_pool(h, (2, 2), strides=(2, 2)))
    z = nn.sigmoid(nn.Dense(self.code, name="code")(h.reshape(h.shape[0], -1)))
    out = ConvDecoder(widths=tuple(self.widths), size=self.size,
                      out_channels=3, name="decoder")(z)
    return nn.sigmoid(out)


def param_count(params: Any) -> int:
  """The number of scalars in a parameter pytree."""
  return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
