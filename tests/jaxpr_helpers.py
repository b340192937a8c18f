"""Looking inside traced computations: the matmuls a function runs, custom-VJP bodies included."""

from typing import Any, Callable

import jax


def dot_generals(function: Callable, *args: Any) -> list[Any]:
    """Every dot_general equation of `function(*args)`'s jaxpr, walking into inner jaxprs."""
    found = []

    def collect(jaxpr) -> None:
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                found.append(eqn)
            for param in eqn.params.values():
                inner = getattr(param, "jaxpr", param)
                if hasattr(inner, "eqns"):
                    collect(inner)

    collect(jax.make_jaxpr(function)(*args).jaxpr)
    return found
