"""Shared helpers for benchmarks: timing, machine description, JSON output.

Every benchmark module runs as `python -m benchmarks.<name> [--quick]
[--out FILE]` and writes a JSON list of records
`{"case", "ours_s", "peer", "peer_s", "ratio"}` (ratio = peer_s / ours_s, so
> 1 means we are faster) followed by a `{"machine": ...}` entry, plus a
Markdown table next to it.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import time
from typing import Any, Callable, Sequence

import jax

from disent_jax.train import utilisation


def parse_args(name: str, argv: Sequence[str] | None = None
               ) -> argparse.Namespace:
  """Parses `--quick` and `--out` (default benchmarks/results/<name>.json)."""
  parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}")
  parser.add_argument("--quick", action="store_true",
                      help="small sizes and few repeats (smoke run)")
  parser.add_argument(
      "--out", default=str(pathlib.Path(__file__).parent / "results" /
                           f"{name}.json"),
      help="where to write the JSON records (a .md table goes beside it)")
  return parser.parse_args(argv)


def block(tree: Any) -> Any:
  """Waits for every array in `tree` (JAX arrays; other leaves untouched)."""
  for leaf in jax.tree_util.tree_leaves(tree):
    if hasattr(leaf, "block_until_ready"):
      leaf.block_until_ready()
  return tree


def time_fn(fn: Callable[[], Any], *, warmup: int = 2, repeats: int = 10,
            sync: Callable[[Any], Any] = block) -> float:
  """Median wall-clock seconds of `fn()` after `warmup` calls.

  Args:
    fn: a zero-argument callable; its result is passed to `sync`.
    warmup: untimed calls first (compilation, caches).
    repeats: timed calls.
    sync: waits for asynchronous results (JAX arrays by default; pass
      `lambda x: x` for synchronous libraries such as PyTorch on CPU).

  Returns:
    The median time of one call in seconds.
  """
  for _ in range(warmup):
    sync(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    sync(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _cpu_model() -> str:
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def import_torch():
  """PyTorch (all CPU threads) from the `[parity]` extra, or None."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  torch.set_num_threads(os.cpu_count() or 1)
  return torch


def alternating(contestants: Sequence[tuple[Callable[[], Any],
                                            Callable[[Any], Any],
                                            Callable[[], Any]]], *,
                rounds: int, repeats: int, warmup: int = 1) -> list[float]:
  """Times several implementations in alternating rounds (fair under load).

  Args:
    contestants: (fn, sync, before) triples; `before()` runs untimed ahead
      of each of the contestant's rounds (e.g. setting a thread count).
    rounds: rounds; each times every contestant once.
    repeats: timed calls per round.
    warmup: untimed calls in the first round.

  Returns:
    Per contestant, the median over rounds of `time_fn` medians (seconds).
  """
  times = [[] for _ in contestants]
  for r in range(rounds):
    for t, (fn, sync, before) in zip(times, contestants):
      before()
      t.append(time_fn(fn, warmup=warmup if r == 0 else 0, repeats=repeats,
                       sync=sync))
  return [statistics.median(t) for t in times]


def machine() -> dict[str, Any]:
  """Describes the machine and library versions the numbers come from."""
  info = {
      "platform": platform.platform(),
      "processor": _cpu_model(),
      "cpu_count": os.cpu_count(),
      "python": platform.python_version(),
      "jax": jax.__version__,
      "jax_backend": jax.default_backend(),
      "devices": [str(d) for d in jax.devices()],
  }
  try:
    import torch  # pylint: disable=g-import-not-at-top
    info["torch"] = torch.__version__
    info["torch_threads"] = torch.get_num_threads()
  except ImportError:
    pass
  return info


def record(case: str, ours_s: float, peer: str | None = None,
           peer_s: float | None = None) -> dict[str, Any]:
  """One benchmark record; `ratio` = peer_s / ours_s (> 1: we are faster)."""
  ratio = (peer_s / ours_s) if (peer_s is not None and ours_s > 0) else None
  return {"case": case, "ours_s": ours_s, "peer": peer, "peer_s": peer_s,
          "ratio": ratio}


def markdown_table(records: Sequence[dict[str, Any]]) -> str:
  """Renders records as a Markdown table (times in milliseconds)."""
  lines = ["| case | ours (ms) | peer | peer (ms) | ratio |",
           "|---|---:|---|---:|---:|"]
  for r in records:
    if "case" not in r:
      continue
    peer_ms = "" if r["peer_s"] is None else f"{1e3 * r['peer_s']:.3f}"
    ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
    lines.append(f"| {r['case']} | {1e3 * r['ours_s']:.3f} | "
                 f"{r['peer'] or ''} | {peer_ms} | {ratio} |")
  return "\n".join(lines) + "\n"


def write(records: Sequence[dict[str, Any]], out: str) -> None:
  """Writes `records` + the machine entry as JSON, and a Markdown table."""
  path = pathlib.Path(out)
  path.parent.mkdir(parents=True, exist_ok=True)
  payload = list(records) + [{"machine": machine()}]
  path.write_text(json.dumps(payload, indent=2) + "\n")
  path.with_suffix(".md").write_text(markdown_table(records))
  print(markdown_table(records))
  print(f"wrote {path} and {path.with_suffix('.md')}")


def matmul_peak_record(peak: float) -> dict[str, Any]:
  """The record of the float32 matmul peak (FLOP/s) a run measured, so its
  report states the ceiling its utilisation figures divide by."""
  size = utilisation.SIZE
  return record(f"float32 matmul {size}x{size}: the utilisation peak, "
                f"{peak / 1e9:.1f} GFLOP/s", 2.0 * size ** 3 / peak)
