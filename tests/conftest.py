"""Test setup: 8 fake CPU devices so every sharding path runs without accelerators."""
import os

# Must happen before JAX initialises its backend.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

import jax  # noqa: E402

# Tests build many small runs of the same shapes: a persistent compilation cache turns recompiles into reads.
# It lives for one session (~10 MB) and is removed at exit.
_XLA_CACHE_DIR = tempfile.mkdtemp(prefix="jaxai-test-xla-cache-")
atexit.register(shutil.rmtree, _XLA_CACHE_DIR, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _XLA_CACHE_DIR)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
