"""SFace embedding throughput: our jitted JAX network against OpenCV.

The peer is OpenCV's `FaceRecognizerSF.feature` (opencv-python-headless<5,
the `[real]` extra) on the same ONNX file, which is what a user would
otherwise call; it embeds one face per call, so a batch is a loop of calls.
Each case first checks that both give the same embeddings (cosine >= 0.9999)
and then times them in alternating rounds. The FLOPs of our compiled
network (XLA's count) give the fraction of the machine's float32 matmul
peak, measured in the same run.

    python -m benchmarks.sface [--quick] [--out FILE]
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from disent_jax.nets import sface
from disent_jax.train import utilisation

PEER = "OpenCV FaceRecognizerSF.feature (one call per face)"


def _opencv(net):
  try:
    import cv2  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return cv2.FaceRecognizerSF.create(net.source, "")


def _faces(batch: int) -> np.ndarray:
  rng = np.random.default_rng(0)
  return rng.integers(0, 256, (batch, 112, 112, 3)).astype(np.uint8)


def _check_agreement(ours, recognizer, faces_u8):
  for i in range(min(len(faces_u8), 4)):
    ref = recognizer.feature(np.ascontiguousarray(
        faces_u8[i][..., ::-1])).ravel()
    cos = ours[i] @ ref / np.linalg.norm(ours[i]) / np.linalg.norm(ref)
    if cos < 0.9999:
      raise AssertionError(f"SFace disagrees with OpenCV: cosine {cos}")


def main(argv=None) -> None:
  args = common.parse_args("sface", argv)
  net = sface.load_sface()
  recognizer = _opencv(net)
  if recognizer is None:
    print("cv2 is not importable (the [real] extra): no OpenCV rows")
  batches = (1, 8) if args.quick else (1, 8, 32)
  rounds, repeats = (2, 2) if args.quick else (5, 5)
  peak = utilisation.measure_matmul_peak()
  records = [common.matmul_peak_record(peak)]
  for b in batches:
    faces_u8 = _faces(b)
    x = jnp.asarray(faces_u8, jnp.float32) / 255.0
    compiled = jax.jit(sface.embed).lower(net, x).compile()
    ours = np.asarray(compiled(net, x))
    flops = utilisation.step_flops(compiled) or float("nan")
    ours_fn = functools.partial(compiled, net, x)
    contestants = [(ours_fn, common.block, lambda: None)]
    if recognizer is not None:
      _check_agreement(ours, recognizer, faces_u8)
      bgr = [np.ascontiguousarray(f[..., ::-1]) for f in faces_u8]
      contestants.append(
          (lambda bgr=bgr: [recognizer.feature(f) for f in bgr],
           lambda r: r, lambda: None))
    times = common.alternating(contestants, rounds=rounds, repeats=repeats)
    ours_s = times[0]
    case = (f"embed batch {b}: {b / ours_s:.1f} images/s, "
            f"{flops / 1e9:.2f} GFLOP, "
            f"{flops / ours_s / peak:.1%} of the matmul peak")
    if recognizer is not None:
      case += f"; OpenCV {b / times[1]:.1f} images/s"
      records.append(common.record(case, ours_s, PEER, times[1]))
    else:
      records.append(common.record(case, ours_s))
    print(case, flush=True)
  # Gradient with respect to the images (what an identity loss needs).
  b = batches[-1] if args.quick else 8
  x = jnp.asarray(_faces(b), jnp.float32) / 255.0
  target = jnp.ones((b, 128))

  def loss(images):
    e = sface.embed(sface.frozen(net), images)
    e = e / jnp.linalg.norm(e, axis=-1, keepdims=True)
    return jnp.sum(e * target)

  grad = jax.jit(jax.grad(loss)).lower(x).compile()
  t = common.time_fn(lambda: grad(x), repeats=repeats)
  flops = utilisation.step_flops(grad) or float("nan")
  records.append(common.record(
      f"embed fwd+bwd (d/d image) batch {b}: {b / t:.1f} images/s, "
      f"{flops / t / peak:.1%} of the matmul peak", t))
  common.write(records, args.out)


if __name__ == "__main__":
  main()
