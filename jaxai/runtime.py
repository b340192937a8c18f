"""Process start-up, before the first JAX computation: memory allocator, XLA settings, multi-host.

On CPU the allocator is the biggest single speed lever: with glibc's malloc, XLA's per-step buffers
go back to the OS and are faulted in again every step (~40% of CPU time in the kernel). jaxai
therefore re-executes itself once with a faster allocator preloaded (tcmalloc, then jemalloc, then
mimalloc from the `cmeel-mimalloc` wheel), or, when none is found, tunes glibc with mallopt.
`JAXAI_ALLOCATOR=system` opts out; `JAXAI_ALLOCATOR=tcmalloc|jemalloc|mimalloc` asks for one.
"""

from __future__ import annotations

import ctypes
import os
import sys
import sysconfig
from typing import Sequence

import ml_collections

from jaxai.errors import RuntimeSettingError

ALLOCATOR_ENV = "JAXAI_ALLOCATOR"  # auto (default) | tcmalloc | jemalloc | mimalloc | system
_REEXECUTED_ENV = "JAXAI_ALLOCATOR_PRELOADED"
ALLOCATORS = ("tcmalloc", "jemalloc", "mimalloc")
_LIBRARY_NAMES = {
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"),
    "jemalloc": ("libjemalloc.so.2",),
    "mimalloc": ("libmimalloc.so", "libmimalloc.so.2", "libmimalloc.so.3"),
}
_SYSTEM_LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib")

# Known XLA:CPU flags a config may set (XLA aborts the whole process on an unknown one).
KNOWN_XLA_CPU_FLAGS = {
    "--xla_cpu_experimental_ynn_fusion_type",
    "--xla_cpu_use_onednn",
    "--xla_cpu_enable_fast_math",
    "--xla_cpu_multi_thread_eigen",
    "--xla_cpu_enable_fast_min_max",
    "--xla_force_host_platform_device_count",
    "--xla_cpu_parallel_codegen_split_count",
}


# XLA:CPU flags by model family, chosen by measurement (bench/RESULTS.md):
# convolutions run 1.4x faster kept out of YNNPACK's fusions, while the transformer's dots gain
# from them (the default). base_config puts a family's flags in config.runtime.xla_cpu_flags.
_CONVOLUTIONS_OUT_OF_YNN = "--xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce"
FAMILY_XLA_CPU_FLAGS = {
    "cnn": _CONVOLUTIONS_OUT_OF_YNN,
    # ResNet-18 (CIFAR stem, batch 128) training step, bench/resnet.py on a quiet 2-core VM: 36.1
    # images/s with these flags against 18.6 with XLA's defaults. VGG's convolutions are alike.
    "resnet": _CONVOLUTIONS_OUT_OF_YNN,
    "vgg": _CONVOLUTIONS_OUT_OF_YNN,
}


def family_xla_cpu_flags(model: str) -> str:
    """The measured XLA:CPU flags for a model family ('' where the defaults are best)."""
    return FAMILY_XLA_CPU_FLAGS.get(model, "")


def find_allocator(name: str) -> str | None:
    """Path of the shared library for allocator `name`, or None when it is not installed."""
    directories = list(_SYSTEM_LIBRARY_DIRS)
    if name == "mimalloc":  # The cmeel-mimalloc wheel puts it under site-packages/cmeel.prefix/lib.
        directories.insert(0, os.path.join(sysconfig.get_paths()["purelib"], "cmeel.prefix", "lib"))
    for directory in directories:
        for library in _LIBRARY_NAMES[name]:
            path = os.path.join(directory, library)
            if os.path.exists(path):
                return path
    return None


def choose_allocator(requested: str) -> tuple[str, str | None]:
    """(allocator name, library path to preload) for JAXAI_ALLOCATOR's value."""
    if requested == "system":
        return "system", None
    if requested not in ("auto", *ALLOCATORS):
        raise RuntimeSettingError(f"{ALLOCATOR_ENV}={requested!r} is not one of auto, system, {', '.join(ALLOCATORS)}.")
    candidates = ALLOCATORS if requested == "auto" else (requested,)
    for name in candidates:
        path = find_allocator(name)
        if path:
            return name, path
    return "glibc-tuned", None


def loaded_allocator() -> str:
    """The allocator this process actually runs with, read from its memory map."""
    try:
        with open("/proc/self/maps") as maps:
            text = maps.read()
    except OSError:
        return "unknown"
    for name in ALLOCATORS:
        if any(library.split(".so")[0] + ".so" in text for library in _LIBRARY_NAMES[name]):
            return name
    return "glibc-tuned" if os.environ.get(_REEXECUTED_ENV) == "glibc-tuned" else "system"


def ensure_allocator(argv: Sequence[str], script: str = "") -> None:
    """Re-executes this command once with a fast allocator preloaded (a no-op when already done).

    The command re-executed is `python -m jaxai argv[1:]`, or `python script argv[1:]` when `script`
    is given (a standalone program on the library, such as bench/resnet.py).
    """
    if os.environ.get(_REEXECUTED_ENV) or not sys.platform.startswith("linux"):
        return
    name, path = choose_allocator(os.environ.get(ALLOCATOR_ENV, "auto"))
    os.environ[_REEXECUTED_ENV] = name
    if path is None:
        if name == "glibc-tuned":
            tune_glibc_malloc()
        return
    env = dict(os.environ, LD_PRELOAD=" ".join(filter(None, [path, os.environ.get("LD_PRELOAD", "")])))
    sys.stdout.flush()
    command = [script] if script else ["-m", "jaxai"]
    os.execve(sys.executable, [sys.executable, *command, *argv[1:]], env)


def tune_glibc_malloc() -> None:
    """Keeps freed memory in the process instead of returning it to the OS every step."""
    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    libc.mallopt(m_trim_threshold, 2**31 - 1)
    libc.mallopt(m_top_pad, 256 * 1024 * 1024)


def validate_xla_flags(flags: Sequence[str]) -> None:
    """Refuses flags jaxai does not know, before XLA would abort the process on them."""
    for flag in flags:
        name = flag.split("=")[0]
        if name not in KNOWN_XLA_CPU_FLAGS:
            raise RuntimeSettingError(
                f"Unknown XLA flag {name!r} in runtime.xla_cpu_flags. Known: {', '.join(sorted(KNOWN_XLA_CPU_FLAGS))}. "
                "(XLA itself would abort the process on a flag it does not know.)"
            )


def merge_xla_flags(existing: str, flags: Sequence[str]) -> str:
    """An XLA_FLAGS value: `existing` with `flags` appended, replacing earlier values of the same flags."""
    names = {flag.split("=")[0] for flag in flags}
    kept = [flag for flag in existing.split() if flag.split("=")[0] not in names]
    return " ".join(kept + list(flags))


def add_xla_flags(flags: Sequence[str]) -> None:
    """Appends flags to this process's XLA_FLAGS, replacing earlier values of the same flags."""
    os.environ["XLA_FLAGS"] = merge_xla_flags(os.environ.get("XLA_FLAGS", ""), flags)


def initialize(config: ml_collections.ConfigDict | None = None) -> None:
    """Applies the experiment's XLA settings and joins a multi-host run when one is configured."""
    if config is not None and config.runtime.xla_cpu_flags:
        flags = config.runtime.xla_cpu_flags.split()
        validate_xla_flags(flags)
        add_xla_flags(flags)
    if os.environ.get("JAXAI_DISTRIBUTED") == "1":
        import jax

        jax.distributed.initialize()


def describe() -> dict[str, str]:
    """The process-level settings in effect, for the run's log header and `jaxai info`."""
    return {"allocator": loaded_allocator(), "xla_flags": os.environ.get("XLA_FLAGS", "")}

