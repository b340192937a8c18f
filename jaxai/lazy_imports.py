"""Importing libraries without the heavy modules they pull in and jaxai never uses.

Every run starts a fresh Python: seconds spent importing PyTorch (which tensorboardX imports when it is
installed) or seaborn (which gymnax imports for one renderer) are seconds before the first step, many
more when the files are not in the page cache.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import types
from typing import Iterator


@contextlib.contextmanager
def without(*names: str) -> Iterator[None]:
    """Within the block, importing `names` (not yet imported) fails, as if they were not installed.

    For libraries that treat them as optional. Afterwards they import normally again.
    """
    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its attributes is used, then imports it."""

    def __getattr__(self, attr: str):
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


@contextlib.contextmanager
def deferred(*names: str) -> Iterator[None]:
    """Within the block, importing `names` binds a stand-in that imports the module on first use.

    (importlib's LazyLoader would not do: the import statement itself reads the module's `__spec__`.)
    """
    for name in names:
        spec = importlib.util.find_spec(name) if name not in sys.modules else None
        if spec is not None:
            stand_in = _Deferred(name)
            stand_in.__spec__ = spec
            sys.modules[name] = stand_in
    yield
