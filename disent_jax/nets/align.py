"""Five-point face alignment to the 112 x 112 template SFace expects.

The same warp as OpenCV's `FaceRecognizerSF.alignCrop`: the least-squares
similarity (rotation, isotropic scale, translation; Umeyama 1991) from five
facial points to the ArcFace/SFace template, then a bilinear resampling of
the image (pixel centres at integer coordinates, zeros outside), all in JAX,
so the alignment is jit-able and differentiable with respect to the image.

The five points, as (x, y) pixels in this order: the eye centre on the image
left (the subject's right eye), the eye on the image right, the nose tip, the
mouth corner on the image left, the mouth corner on the image right — the
order YuNet and MediaPipe-derived points use.
"""

import jax
import jax.numpy as jnp
import numpy as np

_HI = jax.lax.Precision.HIGHEST

# Template (x, y) of the five points in a 112 x 112 crop.
FIVE_POINT_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)

# iBUG-68 indices whose mean gives each of the five points.
IBUG68_FIVE_POINTS = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47),
                      (30,), (48,), (54,))


def five_points_from_ibug68(landmarks: jax.Array) -> jax.Array:
  """Five alignment points [..., 5, 2] from iBUG-68 landmarks [..., 68, 2].

  Eye centres are the means of the six eye-contour points; the nose tip is
  point 30 and the mouth corners 48 and 54.
  """
  lm = jnp.asarray(landmarks)
  if lm.shape[-2:] != (68, 2):
    raise ValueError(f"landmarks must be [..., 68, 2], got {lm.shape}.")
  return jnp.stack([lm[..., list(ids), :].mean(axis=-2)
                    for ids in IBUG68_FIVE_POINTS], axis=-2)


def similarity_2d(source: jax.Array, target: jax.Array) -> jax.Array:
  """Least-squares 2D similarity mapping source points onto target points.

  Minimises sum_n ||s R x_n + t - y_n||^2 over proper rotations R, s > 0
  and t (Umeyama 1991).

  Args:
    source: [N, 2] points x (N >= 2, not all equal).
    target: [N, 2] points y.

  Returns:
    [2, 3] affine matrix A = [s R | t], so y ~= A @ [x, 1].
  """
  x = jnp.asarray(source, jnp.float32)
  y = jnp.asarray(target, jnp.float32)
  mx, my = x.mean(0), y.mean(0)
  xc, yc = x - mx, y - my
  # In complex form the optimal s R is the complex number
  # sum(conj(x) y) / sum(|x|^2).
  dot = jnp.sum(xc * yc)
  cross = jnp.sum(xc[:, 0] * yc[:, 1] - xc[:, 1] * yc[:, 0])
  var = jnp.sum(xc * xc)
  a, b = dot / var, cross / var
  sr = jnp.array([[a, -b], [b, a]])
  t = my - jnp.matmul(sr, mx, precision=_HI)
  return jnp.concatenate([sr, t[:, None]], axis=1)


def warp_affine(image: jax.Array, matrix: jax.Array,
                size: tuple[int, int]) -> jax.Array:
  """Resamples `image` so that output pixel p shows input point A^-1 p.

  Equivalent to `cv2.warpAffine(image, matrix, (w, h), INTER_LINEAR,
  BORDER_CONSTANT)` up to OpenCV's 1/32-pixel fixed-point interpolation.

  Args:
    image: [H, W, C] float.
    matrix: [2, 3] forward map from input (x, y) to output (x, y).
    size: output (height, width).

  Returns:
    [height, width, C].
  """
  img = jnp.asarray(image, jnp.float32)
  m = jnp.asarray(matrix, jnp.float32)
  lin_inv = jnp.linalg.inv(m[:, :2])
  h, w = size
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32),
                        jnp.arange(w, dtype=jnp.float32), indexing="ij")
  out = jnp.stack([xs - m[0, 2], ys - m[1, 2]], -1)
  src = jnp.einsum("ij,hwj->hwi", lin_inv, out, precision=_HI)
  coords = [src[..., 1], src[..., 0]]  # (row, col)
  channels = [
      jax.scipy.ndimage.map_coordinates(img[..., c], coords, order=1,
                                        mode="constant", cval=0.0)
      for c in range(img.shape[-1])]
  return jnp.stack(channels, -1)


def align_face(image: jax.Array, five_points: jax.Array,
               size: int = 112) -> jax.Array:
  """Crops and aligns a face to the SFace template.

  Args:
    image: [H, W, 3] or [B, H, W, 3] float image (any range; the warp is
      linear in the pixel values).
    five_points: [5, 2] or [B, 5, 2] (x, y) pixel coordinates, in the order
      of the module docstring.
    size: output side; the template is scaled from 112.

  Returns:
    [size, size, 3] or [B, size, size, 3].
  """
  img = jnp.asarray(image, jnp.float32)
  pts = jnp.asarray(five_points, jnp.float32)
  if img.ndim == 4:
    if pts.shape != (img.shape[0], 5, 2):
      raise ValueError(f"five_points must be [{img.shape[0]}, 5, 2] for "
                       f"images {img.shape}, got {pts.shape}.")
    return jax.vmap(lambda i, p: align_face(i, p, size))(img, pts)
  if img.ndim != 3 or pts.shape != (5, 2):
    raise ValueError(f"align_face needs an image [H, W, C] and points "
                     f"[5, 2], got {img.shape} and {pts.shape}.")
  template = jnp.asarray(FIVE_POINT_TEMPLATE) * (size / 112.0)
  return warp_affine(img, similarity_2d(pts, template), (size, size))
