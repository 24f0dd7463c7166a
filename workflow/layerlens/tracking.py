"""Optional experiment tracking (``finetune.report_to``): which tracker the Trainer reports to, checked before the
run starts, and where TensorBoard writes. Tracking changes no result: it only passes the Trainer's logs on."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .errors import ConfigError

#: finetune.report_to -> the package the Trainer's integration needs
TRACKERS = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "mlflow": ("mlflow",)}


def tracking(report_to: str, tracking_dir: str | Path | None) -> str:
    """The Trainer's ``report_to``; a ConfigError naming the key if its package is missing. TensorBoard writes to
    ``tracking_dir`` (through the variable its Trainer integration reads)."""
    if report_to in (None, "none"):
        return "none"
    if report_to not in TRACKERS:
        raise ConfigError("finetune.report_to", f"{report_to!r}: use none, " + ", ".join(TRACKERS))
    if not any(importlib.util.find_spec(m) for m in TRACKERS[report_to]):
        raise ConfigError("finetune.report_to", f"{report_to} is not installed in this environment: "
                                                f"pip install {TRACKERS[report_to][0]}, or set report_to: none")
    if report_to == "tensorboard" and tracking_dir is not None:
        Path(tracking_dir).mkdir(parents=True, exist_ok=True)
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(Path(tracking_dir).resolve())
    return report_to
