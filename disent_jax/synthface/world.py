"""The SynthFace world: subjects, meshes and rendered examples from integers.

`World(resolution)` binds a template and exposes jit-compiled pure functions:

    world = World("1k")
    params = world.identity(seed, subject)          # [NUM_IDENTITY]
    verts = world.mesh(params, weights)             # [V, 3] mm
    ex = world.image_example(seed, index, subject, size=64)

Everything is a deterministic function of (seed, subject, index).
`render_morphable` renders faces of any linear 3DMM (bring your own model).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.ops import camera
from disent_jax.synthface import albedo as alb
from disent_jax.synthface import expression as expr
from disent_jax.synthface import identity as idn
from disent_jax.synthface import morphable
from disent_jax.synthface import occluder as occ
from disent_jax.synthface import render as rnd
from disent_jax.synthface import sampling
from disent_jax.synthface import template as tpl


class World:
  """The procedural face world on one template resolution."""

  def __init__(self, resolution: str = "1k"):
    self.resolution = resolution
    self.template = tpl.template(resolution)
    t = self.template
    self.faces = t.faces
    self.landmarks = t.landmarks
    _, occ_faces, _ = occ.topology()
    self._all_faces = np.concatenate(
        [t.faces, occ_faces + t.num_vertices]).astype(np.int32)
    self.identity = jax.jit(sampling.subject_identity)
    self.neutral = jax.jit(functools.partial(idn.neutral, template=t))
    self.albedo = jax.jit(functools.partial(alb.albedo, template=t))
    self.mesh = jax.jit(self._mesh)
    self._image_fns = {}

  @property
  def num_vertices(self) -> int:
    return self.template.num_vertices

  def _mesh(self, params: jax.Array, weights: jax.Array) -> jax.Array:
    neutral = idn.neutral(params, self.template)
    return expr.apply_expression(neutral, params, weights, self.template)

  def subject_mesh(self, seed: int, subject: int,
                   weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(vertices [V, 3], neutral [V, 3]) of a subject with an expression."""
    params = self.identity(seed, subject)
    return self.mesh(params, weights), self.neutral(params)

  def example_factors(self, seed: int | jax.Array, index: int | jax.Array,
                      *, occluder_prob: float = 0.3,
                      neutral_prob: float = 0.1) -> dict[str, jax.Array]:
    """The random factors of example `index`: expression, pose, light...."""
    key = sampling.example_key(seed, index)
    k_e, k_p, k_l, k_b, k_o, k_j = jax.random.split(key, 6)
    kind, occ_params = sampling.sample_occluder(k_o, prob=occluder_prob)
    scale, shift = sampling.sample_camera_jitter(k_j)
    return {
        "expression": sampling.sample_expression(
            k_e, neutral_prob=neutral_prob),
        "pose": sampling.sample_pose(k_p),
        "sh": sampling.sample_sh(k_l),
        "background_key": k_b,
        "occluder_kind": kind,
        "occluder_params": occ_params,
        "scale": scale,
        "shift": shift,
    }

  def render_factors(self, params: jax.Array, expression: jax.Array,
                     pose: jax.Array, sh: jax.Array, background: jax.Array,
                     occluder_kind: jax.Array, occluder_params: jax.Array,
                     scale: jax.Array, shift: jax.Array, *,
                     size: int) -> dict[str, jax.Array]:
    """Renders a subject under explicit factors (pure; jit it).

    Args:
      params: [NUM_IDENTITY] identity.
      expression: [NUM_EXPRESSIONS] expression weights.
      pose: [3] (pitch, yaw, roll) radians.
      sh: [3, 9] lighting.
      background: [size, size, 3].
      occluder_kind: int scalar (`occluder.KINDS`).
      occluder_params: [NUM_OCCLUDER_PARAMS].
      scale: [] zoom factor; shift: [2] centre offset (fraction of size).
      size: image size (static).

    Returns:
      The maps of `render.render` plus `vertices` [V, 3] and `neutral`.
    """
    t = self.template
    neutral = idn.neutral(params, t)
    verts = expr.apply_expression(neutral, params, expression, t)
    colours = alb.albedo(params, t)
    o_verts, o_col = occ.occluder_mesh(params, occluder_kind,
                                       occluder_params)
    all_verts = jnp.concatenate([verts, o_verts])
    all_col = jnp.concatenate([colours, o_col])
    out = rnd.render(
        all_verts, all_col, self._all_faces, landmarks=t.landmarks,
        num_face_faces=t.faces.shape[0], pose=pose, sh=sh,
        background=background, centre=rnd.framing(neutral), size=size,
        scale_factor=scale, shift=shift)
    out["vertices"] = verts
    out["neutral"] = neutral
    return out

  def example(self, seed: int | jax.Array, index: int | jax.Array,
              subject: int | jax.Array, *, size: int,
              occluder_prob: float = 0.3,
              neutral_prob: float = 0.1) -> dict[str, jax.Array]:
    """Example `index` of subject `subject`: image, ground truth, factors.

    Pure (jit or vmap it); `image_fn` returns a jitted version.
    """
    params = sampling.subject_identity(seed, subject)
    f = self.example_factors(seed, index, occluder_prob=occluder_prob,
                             neutral_prob=neutral_prob)
    background = sampling.sample_background(f["background_key"], size)
    out = self.render_factors(
        params, f["expression"], f["pose"], f["sh"], background,
        f["occluder_kind"], f["occluder_params"], f["scale"], f["shift"],
        size=size)
    out.update(
        identity=params, expression=f["expression"], pose=f["pose"],
        sh=f["sh"].reshape(27), near_frontal=sampling.near_frontal(f["pose"]),
        occluder_kind=f["occluder_kind"],
        subject=jnp.asarray(subject, jnp.int32))
    return out

  def mean_face_landmarks_2d(self, *, size: int) -> np.ndarray:
    """[L, 2] the landmarks of the mean face (identity parameters 0, no
    expression), frontal, in the default framing (scale 1, no shift), as
    (x, y) pixels with pixel centres at integers (`nets.align`)."""
    neutral = idn.neutral(jnp.zeros((idn.NUM_IDENTITY,), jnp.float32),
                          self.template)
    rotation, scale, translation = rnd.camera_params(
        jnp.zeros(3), size=size, scale_factor=jnp.float32(1.0),
        shift=jnp.zeros(2))
    screen = camera.weak_perspective_screen(
        neutral - rnd.framing(neutral)[None], rotation, scale, translation)
    # The renderer's pixel i covers [i, i + 1).
    return np.asarray(screen[self.landmarks, :2]) - 0.5

  def image_fn(self, *, size: int, occluder_prob: float = 0.3,
               neutral_prob: float = 0.1):
    """A jitted fn(seed, index, subject) -> dict of one example's arrays."""
    key = (size, occluder_prob, neutral_prob)
    if key not in self._image_fns:
      self._image_fns[key] = jax.jit(functools.partial(
          self.example, size=size, occluder_prob=occluder_prob,
          neutral_prob=neutral_prob))
    return self._image_fns[key]

  def image_example(self, seed: int, index: int, subject: int, *,
                    size: int = 64, occluder_prob: float = 0.3,
                    neutral_prob: float = 0.1) -> dict[str, jax.Array]:
    """One rendered example with all its ground truth."""
    if size not in rnd.SIZES:
      raise ValueError(f"size must be one of {rnd.SIZES}, got {size}")
    return self.image_fn(size=size, occluder_prob=occluder_prob,
                         neutral_prob=neutral_prob)(seed, index, subject)


@functools.lru_cache(maxsize=None)
def world(resolution: str = "1k") -> World:
  """The cached `World` of a resolution."""
  return World(resolution)


def render_morphable(model: morphable.Morphable, id_coeffs: jax.Array,
                     exp_coeffs: jax.Array, tex_coeffs: jax.Array, *,
                     pose: jax.Array, sh: jax.Array, background: jax.Array,
                     size: int) -> dict[str, jax.Array]:
  """Renders a face of any linear 3DMM (the world's or a user's).

  A user model (e.g. BFM 2009 or FLAME read from its files) is wrapped in a
  `morphable.Morphable` (mean, bases with their std, texture, triangles and
  landmark indices); its coefficients then play the role of identity and
  expression codes.

  Args:
    model: the 3DMM (shapes in mm, model frame x right, y up, z out).
    id_coeffs: [Ki]; exp_coeffs: [Ke]; tex_coeffs: [Kt].
    pose: [3] radians; sh: [3, 9]; background: [size, size, 3].
    size: image size (static).

  Returns:
    The maps of `render.render` plus `vertices` [V, 3].
  """
  verts = morphable.reconstruct(model, id_coeffs, exp_coeffs)
  colours = jnp.clip(morphable.reconstruct_texture(model, tex_coeffs), 0, 1)
  out = rnd.render(verts, colours, model.faces, landmarks=model.landmarks,
                   num_face_faces=model.faces.shape[0], pose=pose, sh=sh,
                   background=background,
                   centre=rnd.framing(jnp.asarray(model.mean)), size=size)
  out["vertices"] = verts
  return out
