"""Process start-up, before the first JAX computation: XLA settings and multi-host initialisation."""

from __future__ import annotations

import os

import ml_collections


def initialize(config: ml_collections.ConfigDict | None = None) -> None:
    """Applies the experiment's XLA settings and joins a multi-host run when one is configured."""
    if config is not None and config.runtime.xla_cpu_flags:
        add_xla_flags(config.runtime.xla_cpu_flags.split())
    if os.environ.get("JAXAI_DISTRIBUTED") == "1":
        import jax

        jax.distributed.initialize()


def add_xla_flags(flags: list[str]) -> None:
    """Appends flags to XLA_FLAGS (effective only before JAX starts its backend)."""
    existing = os.environ.get("XLA_FLAGS", "").split()
    names = {flag.split("=")[0] for flag in flags}
    kept = [flag for flag in existing if flag.split("=")[0] not in names]
    os.environ["XLA_FLAGS"] = " ".join(kept + list(flags))


def describe() -> dict[str, str]:
    """The process-level settings in effect, for the run's log header."""
    return {"xla_flags": os.environ.get("XLA_FLAGS", "")}
