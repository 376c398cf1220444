"""Ctrl-C and SIGTERM for the resumable loops (the encoder, the semi-supervised GAN): the first signal asks
the loop to checkpoint and stop after the current update; a second one interrupts at once."""

from __future__ import annotations

import signal

__all__ = ["install_stop_handlers", "restore_handlers"]


def install_stop_handlers() -> tuple[dict, dict]:
    """Returns (stop, previous handlers): ``stop["sig"]`` becomes the signal's number on the first
    SIGINT/SIGTERM; a second raises ``KeyboardInterrupt``. Pass the handlers to :func:`restore_handlers`."""
    stop: dict = {"sig": None}

    def handler(signum, frame):
        if stop["sig"]:
            raise KeyboardInterrupt
        stop["sig"] = signum

    return stop, {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}


def restore_handlers(previous: dict) -> None:
    for s, h in previous.items():
        signal.signal(s, h)
