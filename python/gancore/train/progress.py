"""Progress reporting: a one-line bar with ETA on a terminal, plain periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("gancore.train")


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """``update`` after every logging interval with the latest numbers; ``close`` at the end."""

    def __init__(self, total_steps: int, start_step: int = 0, stream=None, bar: bool | None = None):
        self.total, self.start = total_steps, start_step
        self.stream = stream or sys.stderr
        self.bar = self.stream.isatty() if bar is None else bar
        self.t0 = time.perf_counter()
        self._drawn = False

    def update(self, step: int, epoch: int, m: dict) -> None:
        done = step - self.start
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / done * (self.total - step) if done > 0 else 0.0
        numbers = (
            f"loss_d {m['loss_d']:.4f} loss_g {m['loss_g']:.4f} D(x) {m['d_real']:.3f} "
            f"D(G(z)) {m['d_fake']:.3f} lr {m['lr']:.3g} mom {m['momentum']:.3f} {m['images_per_s']:.0f} img/s"
        )
        if self.bar:
            width = 24
            filled = int(width * step / max(self.total, 1))
            bar = "#" * filled + "." * (width - filled)
            line = f"\repoch {epoch + 1} [{bar}] {step}/{self.total} ETA {_fmt_time(eta)} {numbers}"
            self.stream.write(line[:200] + "\033[K")  # erase what a longer previous line left
            self.stream.flush()
            self._drawn = True
        else:
            log.info("step %d/%d epoch %d | %s | ETA %s", step, self.total, epoch + 1, numbers, _fmt_time(eta))

    def message(self, text: str) -> None:
        """Log ``text`` without garbling the bar."""
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False
        log.info("%s", text)

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
