"""Writes benchmarks/README.md from the JSON results of every benchmark.

  python -m benchmarks.summarize

Each `benchmarks/results/<name>.json` (written by `python -m
benchmarks.<name>`) becomes a section with its table and the machine it
was measured on, followed by `benchmarks/results/<name>_notes.md` (the
discussion of that run) when it exists.
"""

import json
import pathlib

from benchmarks import common

_HERE = pathlib.Path(__file__).parent

_INTRO = """# Benchmarks

Throughput of our ops and methods, side by side in the same run with the
peer library or baseline named in each row. `ratio` = peer time / our time:
above 1 means we are faster. On CPU, compare ratios, not absolute times.

Run one benchmark with `python -m benchmarks.<name> [--quick]` (JSON and a
Markdown table go to `benchmarks/results/`), then `python -m
benchmarks.summarize` to rebuild this page. Peer libraries (PyTorch,
PyTorch Geometric) come from the `[parity]` extra; rows without a peer
report our time only.
"""


def _machine_line(machine: dict) -> str:
  keys = ("processor", "cpu_count", "jax", "jax_backend", "torch")
  parts = [f"{k}={machine[k]}" for k in keys if k in machine]
  return "Machine: " + ", ".join(parts) + "."


def summarize(results_dir: pathlib.Path = _HERE / "results") -> str:
  """The README text for every results JSON in `results_dir`."""
  sections = [_INTRO]
  for path in sorted(results_dir.glob("*.json")):
    records = json.loads(path.read_text())
    machine = next((r["machine"] for r in records if "machine" in r), {})
    rows = [r for r in records if "case" in r]
    sections.append(f"## {path.stem}\n\n`python -m benchmarks.{path.stem}`. "
                    f"{_machine_line(machine)}\n\n"
                    f"{common.markdown_table(rows)}")
    notes = path.with_name(f"{path.stem}_notes.md")
    if notes.is_file():
      sections.append(notes.read_text().rstrip() + "\n")
  return "\n".join(sections)


def main() -> None:
  text = summarize()
  (_HERE / "README.md").write_text(text)
  print(f"wrote {_HERE / 'README.md'}")


if __name__ == "__main__":
  main()
