"""Paper 003's networks: ResNet encoder, GCN shape/albedo decoders, renderer.

  * `ResNetEncoder`: a ResNet (basic blocks for ResNet-18/34-style CPU
    configs, bottlenecks for ResNet-50) with four fully connected branches
    to c_id 128, c_exp 64, c_pose 6 and c_lgt 27 (spec §1.1). Group
    normalisation replaces batch normalisation (no pretraining here, and
    the harness state stays a pure pytree: a listed deviation).
  * `GcnReconstructor`: the encoder, the Chebyshev GCN shape decoder
    FC(l * 256) -> US -> GC(6, 256) ... GC(6, 16) -> GC(6, 3) on
    concat(c_id, c_exp), predicting a residual around the template in the
    canonical frame (spec §1.2), and the stage-1 GCN albedo decoder on c_id
    alone (§1.3), both `nn.MeshDecoder` on one mesh hierarchy.
  * `render`: the weak-perspective, 9-band SH Lambertian image formation of
    eq. 3 through SynthFace's renderer (`synthface.render.render`), with
    c_pose = (pitch, yaw, roll, log-scale, shift_x, shift_y): the scale is
    SynthFace's nominal framing times exp(c_pose[3]) and the image centre
    moves by c_pose[4:6] image sizes, so a zero pose is a frontal face in
    SynthFace's framing and the heads start there.
"""

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.nn import mesh_autoencoder
from disent_jax.ops import graph
from disent_jax.ops import hierarchy
from disent_jax.synthface import render as rnd

CODE_SIZES = {"identity": 128, "expression": 64, "pose": 6, "light": 27}
# An ambient prior on the SH DC terms (spec §1.1, as DiscoFaceGAN's +0.8),
# so that the first renders are not black.
AMBIENT_PRIOR = 0.8


class BasicBlock(nn.Module):
  """3x3 -> 3x3 residual block (ResNet-18/34)."""
  width: int
  stride: int = 1
  groups: int = 8

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    g = min(self.groups, self.width)
    y = nn.Conv(self.width, (3, 3), self.stride, use_bias=False)(x)
    y = nn.relu(nn.GroupNorm(num_groups=g)(y))
    y = nn.Conv(self.width, (3, 3), use_bias=False)(y)
    y = nn.GroupNorm(num_groups=g, scale_init=nn.initializers.zeros)(y)
    if x.shape[-1] != self.width or self.stride != 1:
      x = nn.Conv(self.width, (1, 1), self.stride, use_bias=False)(x)
      x = nn.GroupNorm(num_groups=g)(x)
    return nn.relu(x + y)


class Bottleneck(nn.Module):
  """1x1 -> 3x3 -> 1x1 (x4) residual block (ResNet-50)."""
  width: int
  stride: int = 1
  groups: int = 8

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    g = min(self.groups, self.width)
    out = 4 * self.width
    y = nn.relu(nn.GroupNorm(num_groups=g)(
        nn.Conv(self.width, (1, 1), use_bias=False)(x)))
    y = nn.relu(nn.GroupNorm(num_groups=g)(
        nn.Conv(self.width, (3, 3), self.stride, use_bias=False)(y)))
    y = nn.Conv(out, (1, 1), use_bias=False)(y)
    y = nn.GroupNorm(num_groups=g, scale_init=nn.initializers.zeros)(y)
    if x.shape[-1] != out or self.stride != 1:
      x = nn.GroupNorm(num_groups=g)(
          nn.Conv(out, (1, 1), self.stride, use_bias=False)(x))
    return nn.relu(x + y)


class ResNetEncoder(nn.Module):
  """A ResNet with the four code branches of spec §1.1.

  Attributes:
    stage_widths: widths of the stages (ResNet-50: 64, 128, 256, 512).
    stage_blocks: blocks per stage (ResNet-50: 3, 4, 6, 3; ResNet-18: 2,
      2, 2, 2).
    bottleneck: bottleneck blocks (ResNet-50) or basic blocks.
    stem_width: the 7x7 stem's width (a 3x3 stem below 96 px, no max-pool).
    branch_hidden: the hidden width of each branch (FC -> ReLU -> FC).
  """
  stage_widths: Sequence[int] = (64, 128, 256, 512)
  stage_blocks: Sequence[int] = (3, 4, 6, 3)
  bottleneck: bool = True
  stem_width: int = 64
  branch_hidden: int = 512

  @nn.compact
  def __call__(self, images: jax.Array
               ) -> tuple[dict[str, jax.Array], list[jax.Array]]:
    """Images [B, S, S, 3] in [0, 1] -> ({name: [B, d]}, stage features).

    The stage features [B, S_i, S_i, C_i] are the skips of the stage-2
    albedo decoder (spec §1.4).
    """
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"images must be [B, S, S, 3], got {images.shape}")
    x = images * 2.0 - 1.0
    small = images.shape[1] < 96
    x = nn.Conv(self.stem_width, (3, 3) if small else (7, 7),
                1 if small else 2, use_bias=False, name="stem")(x)
    x = nn.relu(nn.GroupNorm(num_groups=min(8, self.stem_width))(x))
    if not small:
      x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")
    block = Bottleneck if self.bottleneck else BasicBlock
    skips = []
    for s, (width, n) in enumerate(zip(self.stage_widths,
                                       self.stage_blocks)):
      for b in range(n):
        x = block(width, 2 if (b == 0 and s > 0) else 1,
                  name=f"stage{s}_block{b}")(x)
      skips.append(x)
    feature = jnp.mean(x, axis=(1, 2))
    codes = {}
    for name, size in CODE_SIZES.items():
      h = nn.relu(nn.Dense(self.branch_hidden, name=f"{name}_hidden")(
          feature))
      # Pose and light start at the prior (zero offsets).
      init = (nn.initializers.zeros if name in ("pose", "light")
              else nn.initializers.lecun_normal())
      codes[name] = nn.Dense(size, kernel_init=init, name=f"{name}_out")(h)
    return codes, skips


@dataclasses.dataclass(frozen=True)
class MeshSetup:
  """The decoders' mesh: template, hierarchy operators and samplings.

  Attributes:
    template: [V, 3] the mean shape the shape decoder's residual is added
      to (mm).
    faces: [F, 3]; landmarks: [68] vertex ids.
    operators: per-level Chebyshev operators, fine to coarse.
    up: per-level up-samplings (level l+1 -> l).
    down: per-level down-samplings (for the shape discriminator).
    num_vertices: vertices per level.
  """
  template: np.ndarray
  faces: np.ndarray
  landmarks: np.ndarray
  operators: tuple
  up: tuple
  down: tuple
  num_vertices: tuple

  @classmethod
  def build(cls, template: np.ndarray, faces: np.ndarray,
            landmarks: np.ndarray, *, factors: Sequence[int],
            laplacian: graph.LaplacianKind = "symmetric",
            lambda_max: float | None = 2.0) -> "MeshSetup":
    """Decimates the template with `factors` (fine to coarse, spec §6.2)."""
    h = hierarchy.build_hierarchy(np.asarray(template), np.asarray(faces),
                                  factors=tuple(factors))
    ops = hierarchy.hierarchy_operators(h, kind=laplacian,
                                        lambda_max=lambda_max)
    return cls(np.asarray(template, np.float32), np.asarray(faces, np.int32),
               np.asarray(landmarks, np.int32), ops, h.up, h.down,
               h.num_vertices)


class GcnReconstructor(nn.Module):
  """Encoder, GCN shape decoder and stage-1 GCN albedo decoder.

  Attributes:
    mesh: the `MeshSetup`.
    encoder: the `ResNetEncoder`.
    decoder_filters: widths of the decoders (paper: 256, 128, 64, 32, 16),
      one per hierarchy level.
    K: Chebyshev terms (paper: 6).
    shape_scale: mm per unit of the shape decoder's output.

  Both decoders' last convolutions start at zero, so the first shape is the
  template and the first albedo a uniform 0.5 (a ChebConv default start
  puts the residual at tens of mm and saturates the albedo's sigmoid).
  """
  mesh: MeshSetup
  encoder: ResNetEncoder
  decoder_filters: Sequence[int] = mesh_autoencoder.GCN_RECON_DECODER_FILTERS
  K: int = 6  # pylint: disable=invalid-name
  shape_scale: float = 10.0

  def setup(self):
    levels = len(self.decoder_filters)
    kw = dict(operators=self.mesh.operators[:levels],
              up=self.mesh.up[:levels], filters=tuple(self.decoder_filters),
              K=self.K, out_features=3,
              out_kernel_init=nn.initializers.zeros)
    self.shape_decoder = mesh_autoencoder.MeshDecoder(**kw)
    self.albedo_decoder = mesh_autoencoder.MeshDecoder(**kw)

  def decode_shape(self, identity: jax.Array, expression: jax.Array
                   ) -> jax.Array:
    """(c_id [B, 128], c_exp [B, 64]) -> canonical shapes [B, V, 3] (mm)."""
    z = jnp.concatenate([identity, expression], axis=-1)
    return self.mesh.template + self.shape_scale * self.shape_decoder(z)

  def decode_albedo(self, identity: jax.Array) -> jax.Array:
    """c_id [B, 128] -> per-vertex albedo [B, V, 3] in (0, 1)."""
    return jax.nn.sigmoid(self.albedo_decoder(identity))

  def __call__(self, images: jax.Array) -> dict[str, Any]:
    """Images [B, S, S, 3] -> codes, shape [B, V, 3], albedo [B, V, 3]."""
    codes, skips = self.encoder(images)
    return {"codes": codes, "skips": skips,
            "shape": self.decode_shape(codes["identity"],
                                       codes["expression"]),
            "albedo": self.decode_albedo(codes["identity"])}


def light_from_code(code: jax.Array) -> jax.Array:
  """c_lgt [..., 27] -> SH [..., 3, 9] with the ambient prior on the DC."""
  sh = code.reshape(code.shape[:-1] + (3, 9))
  return sh.at[..., 0].add(AMBIENT_PRIOR)


def render(shape: jax.Array, albedo: jax.Array, pose: jax.Array,
           light: jax.Array, background: jax.Array, *, mesh: MeshSetup,
           size: int) -> dict[str, jax.Array]:
  """One face's image formation (eq. 3); vmap it over a batch.

  Args:
    shape: [V, 3] canonical shape (mm); albedo: [V, 3].
    pose: [6] c_pose (module docstring).
    light: [27] c_lgt.
    background: [size, size, 3] what uncovered pixels show (the input
      image when compositing, spec §1.5).
    mesh: the `MeshSetup` (faces, landmarks, the template's framing).
    size: image size (static).

  Returns:
    `synthface.render.render`'s maps: image, mask, normals, shading,
    landmarks_2d [68, 2] (renderer pixels: pixel i covers [i, i + 1)).
  """
  centre = rnd.framing(jnp.asarray(mesh.template))
  return rnd.render(
      shape, albedo, mesh.faces, landmarks=mesh.landmarks,
      num_face_faces=mesh.faces.shape[0], pose=pose[:3],
      sh=light_from_code(light), background=background, centre=centre,
      size=size, scale_factor=jnp.exp(pose[3]), shift=pose[4:6])
