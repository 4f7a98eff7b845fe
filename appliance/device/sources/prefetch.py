"""Decoding on its own thread, so that decoding the next frame overlaps inference on this
one (FFmpeg and OpenCV release the GIL while they decode). At most `depth` decoded frames
wait in between: the queue is the only place a frame sits, and it is bounded."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

_END = object()


class Prefetch:
    def __init__(self, frames: Iterable, depth: int = 2):
        self._frames = frames
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()

    def __iter__(self) -> Iterator:
        thread = threading.Thread(target=self._decode, name="decode", daemon=True)
        thread.start()
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item  # the source's own error (e.g. SourceError), on this thread
                yield item
                del item
        finally:
            self._stop.set()
            while not self._queue.empty():  # drop what was decoded ahead: no frame lingers
                self._queue.get_nowait()
            thread.join(timeout=5)

    def _decode(self) -> None:
        try:
            for item in self._frames:
                if not self._put(item):
                    return  # the consumer stopped
                del item
            self._put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer as is
            self._put(error)

    def _put(self, item) -> bool:
        """Queue an item, waiting for room; False once the consumer has stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False
