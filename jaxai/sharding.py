"""Device mesh, logical-axis rules and the shardings of state and batches."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxai.errors import MeshError

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")

# Logical axis name -> mesh axis. Parameters name their dimensions; this table decides placement.
LOGICAL_AXIS_RULES = (
    ("batch", BATCH_AXES),
    ("length", None),
    ("embed", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv", None),
    ("vocab", "tensor"),
    ("conv_in", None),
    ("conv_out", "tensor"),
    ("norm", None),
)


def make_mesh(mesh_config: ml_collections.ConfigDict, devices: list | None = None) -> Mesh:
    """A (data, fsdp, tensor) mesh over all devices; `data=-1` takes what the others leave."""
    devices = list(jax.devices() if devices is None else devices)
    if mesh_config.num_devices:
        if mesh_config.num_devices > len(devices):
            raise MeshError(f"mesh.num_devices={mesh_config.num_devices} but only {len(devices)} devices exist.")
        devices = devices[: mesh_config.num_devices]
    sizes = {axis: int(mesh_config[axis]) for axis in MESH_AXES}
    fixed = int(np.prod([size for size in sizes.values() if size != -1]))
    if sum(size == -1 for size in sizes.values()) > 1:
        raise MeshError("Only one mesh axis may be -1 (take the remaining devices).")
    if any(size == 0 or size < -1 for size in sizes.values()):
        raise MeshError(f"Mesh axis sizes must be positive or -1, got {sizes}.")
    if len(devices) % fixed:
        raise MeshError(
            f"Mesh {sizes} does not fit {len(devices)} devices: the fixed axes multiply to {fixed}, "
            f"which must divide {len(devices)}. Change --config.mesh.fsdp / --config.mesh.tensor."
        )
    sizes = {axis: len(devices) // fixed if size == -1 else size for axis, size in sizes.items()}
    if int(np.prod(list(sizes.values()))) != len(devices):
        raise MeshError(
            f"Mesh {sizes} uses {int(np.prod(list(sizes.values())))} devices but {len(devices)} exist; "
            "set one axis to -1 or make the sizes multiply to the device count."
        )
    shape = tuple(sizes[axis] for axis in MESH_AXES)
    return Mesh(np.asarray(devices).reshape(shape), MESH_AXES)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (example) dimension split over the data-parallel axes, the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def check_batch_fits(batch_size: int, mesh: Mesh, what: str = "data.batch_size") -> None:
    """Raises MeshError unless the global batch splits evenly over the data-parallel devices."""
    shards = mesh.shape["data"] * mesh.shape["fsdp"]
    if batch_size % shards or batch_size % jax.process_count():
        raise MeshError(
            f"{what}={batch_size} does not split over {shards} data-parallel devices "
            f"and {jax.process_count()} processes; use a multiple of {np.lcm(shards, jax.process_count())}."
        )


def state_shardings(abstract_state: Any, mesh: Mesh, rules=LOGICAL_AXIS_RULES) -> Any:
    """NamedShardings for a (boxed, abstract) state from the logical names on its parameters."""
    specs = nn.get_partition_spec(abstract_state)
    shardings = nn.logical_to_mesh_sharding(specs, mesh, rules)
    # Optax's MaskedNode (the moments a frozen parameter does not have, maybe boxed with its axis
    # names) holds nothing: it stays a MaskedNode.
    stop = lambda node: isinstance(node, (optax.MaskedNode, nn.meta.AxisMetadata))  # noqa: E731
    masked = lambda node: isinstance(getattr(node, "value", node), optax.MaskedNode)  # noqa: E731
    return jax.tree.map(lambda node, sharding: optax.MaskedNode() if masked(node) else sharding,
                        abstract_state, shardings, is_leaf=stop)


def strip_axis_names(tree: Any) -> Any:
    """Replaces logically-partitioned boxes by their values (no sharding constraint applied)."""
    is_box = lambda node: isinstance(node, nn.meta.AxisMetadata)  # noqa: E731
    return jax.tree.map(lambda node: node.unbox(apply_constraint=False) if is_box(node) else node, tree, is_leaf=is_box)


def to_global_batch(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """This process's slice of the batch -> global arrays sharded over the data axes."""
    sharding = batch_sharding(mesh)
    if jax.process_count() == 1:  # The local batch is the global batch; device_put is the cheaper path.
        return jax.device_put(local_batch, sharding)
    return {key: jax.make_array_from_process_local_data(sharding, value) for key, value in local_batch.items()}
