"""SIGTERM/SIGINT handling: finish the current step, save, exit cleanly."""

import signal
import threading
from typing import Any


class PreemptionWatcher:
  """Records that a termination signal arrived; the loop polls `requested`.

  Use as a context manager; the previous handlers come back on exit. Only the
  main thread can install handlers; elsewhere the watcher stays inert.
  """

  def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM,)):
    self._signals = signals
    self._event = threading.Event()
    self._previous: dict[int, Any] = {}
    self.signal_name: str | None = None

  @property
  def requested(self) -> bool:
    return self._event.is_set()

  def _handle(self, signum, frame):
    del frame
    self.signal_name = signal.Signals(signum).name
    self._event.set()

  def __enter__(self) -> "PreemptionWatcher":
    if threading.current_thread() is threading.main_thread():
      for s in self._signals:
        self._previous[s] = signal.signal(s, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for s, handler in self._previous.items():
      signal.signal(s, handler)
    self._previous.clear()
