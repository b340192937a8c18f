"""Pictures out of a run: image grids as PNG (Pillow) and matplotlib figures as arrays."""

from __future__ import annotations

import io
import math
import os

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] (or uint8) -> uint8, clipped."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return (np.clip(images.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def image_grid(images: np.ndarray, columns: int = 0, padding: int = 2) -> np.ndarray:
    """[N, H, W, C] images -> one uint8 [rows*(H+p)+p, cols*(W+p)+p, C] grid (C = 1 or 3), padded in grey.

    One image [H, W, C] is returned as it is (converted to uint8).
    """
    images = to_uint8(images)
    if images.ndim == 3:
        return images
    if images.ndim != 4:
        raise ValueError(f"An image grid needs [N, H, W, C] images, got shape {images.shape}.")
    count, height, width, channels = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding, channels), 128, np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def save_png(path: str, picture: np.ndarray) -> None:
    """Writes [H, W, C] or [N, H, W, C] (a grid) as a PNG, atomically; same array -> same bytes."""
    grid = image_grid(picture)
    pixels = grid[..., 0] if grid.shape[-1] == 1 else grid  # Greyscale 'L' or 'RGB'.
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.tmp.png"
    Image.fromarray(pixels).save(temporary, format="PNG")
    os.replace(temporary, path)


def figure_to_array(figure) -> np.ndarray:
    """A `matplotlib.figure.Figure` (made without pyplot: no GUI backend) -> uint8 [H, W, 3]."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def curves_figure(records: list[dict], names: list[str]) -> np.ndarray:
    """Train metrics over steps, one panel per name, from metrics.jsonl records -> uint8 [H, W, 3]."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4 * len(names), 3), dpi=80)
    for index, name in enumerate(names):
        axes = figure.add_subplot(1, len(names), index + 1)
        points = [(record["step"], record[name]) for record in records if isinstance(record.get(name), (int, float))]
        axes.plot([step for step, _ in points], [value for _, value in points])
        axes.set_title(name)
        axes.set_xlabel("step")
    figure.tight_layout()
    return figure_to_array(figure)
