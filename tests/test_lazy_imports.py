"""A run does not pay for heavy modules its libraries import and jaxai never uses."""

import subprocess
import sys
import textwrap

import pytest

from jaxai.lazy_imports import deferred, without


@pytest.fixture
def toy_modules(tmp_path, monkeypatch):
    """`toy_heavy` (records that it ran) and `toy_user`, which imports it when present."""
    (tmp_path / "toy_heavy.py").write_text("import builtins\nbuiltins.toy_heavy_ran = True\nVALUE = 7\n")
    (tmp_path / "toy_user.py").write_text(textwrap.dedent("""
        try:
            import toy_heavy
            HAS_HEAVY = True
        except ImportError:
            HAS_HEAVY = False
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("toy_heavy", "toy_user"):
        sys.modules.pop(name, None)
    import builtins

    builtins.__dict__.pop("toy_heavy_ran", None)


def test_without_hides_a_module_inside_the_block_only(toy_modules):
    with without("toy_heavy"):
        import toy_user
    assert not toy_user.HAS_HEAVY
    import toy_heavy

    assert toy_heavy.VALUE == 7


def test_deferred_runs_a_module_on_first_use_only(toy_modules):
    import builtins

    with deferred("toy_heavy"):
        import toy_user
    assert toy_user.HAS_HEAVY
    assert not hasattr(builtins, "toy_heavy_ran")
    assert toy_user.toy_heavy.VALUE == 7
    assert builtins.toy_heavy_ran


def test_a_dqn_run_imports_neither_torch_nor_seaborn(tmp_path):
    pytest.importorskip("gymnax")
    script = textwrap.dedent(f"""
        import sys
        from jaxai.logging import MetricWriter
        from jaxai.data.environments import gymnax_environment
        writer = MetricWriter({str(tmp_path)!r})
        writer.write(0, "train", {{"loss": 1.0}})
        writer.close()
        gymnax_environment("CartPole-v1")
        print(sorted(name for name in ("torch", "seaborn.utils", "pandas") if name in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
