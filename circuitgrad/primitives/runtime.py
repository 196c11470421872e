"""The few helpers the generated code calls where NumPy has no expression for a step (bound as
``_cg`` next to NumPy's ``_np``): joining points that may carry different batch axes, and adding
values into places of a zero array (the adjoints of indexing).

Each helper follows the batch semantics (docs/semantics.md): the last axes of an argument are
the point's, the leading ones are batch axes, and batch axes broadcast.

    >>> import numpy as np
    >>> concatenate([np.ones((2, 1)), np.zeros(2)], -1, 1).shape  # two points + one
    (2, 3)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


shape = np.shape
s_ = np.s_  # builds the index tuples of scatter_add's places: s_[..., 1:] is (..., slice(1, None))


def broadcast_to(x: Any, shape: tuple[int, ...], rank: int, axis: int | None = None) -> Any:
    """A read-only view of ``x`` (points of ``rank`` axes) as points of ``shape``: the new
    point axes go after the batch axes, at ``axis`` of the point if given, else in front."""
    n = len(shape)
    batch = np.shape(x) if rank == 0 else np.shape(x)[:-rank]
    if axis is not None:
        x = np.expand_dims(x, axis - n)
    elif rank < n:
        x = np.expand_dims(x, tuple(range(-n, -rank)))
    return np.broadcast_to(x, batch + shape)


def flip(x: Any, axis: Any) -> np.ndarray:
    """``np.flip(x, axis)`` as a C-ordered copy, not a view of negative strides: NumPy runs
    its SIMD kernels (AVX-512: other last bits than libm's) on a contiguous 1-D array but not
    on a reversed one, while a reversed 2-D array is buffered into them, so a point (1-D)
    and its batch (2-D) would differ in the last bit (docs/semantics.md: batch = points).

        >>> flip(np.arange(3.0), -1), flip(np.arange(4.0).reshape(2, 2), (-2,)).flags.c_contiguous
        (array([2., 1., 0.]), True)
    """
    return np.flip(x, axis).copy(order="C")


def reshape(x: Any, shape: tuple[int, ...], rank: int) -> Any:
    """Points of ``rank`` axes reshaped to ``shape``, the batch axes in front left alone."""
    return np.reshape(x, (np.shape(x) if rank == 0 else np.shape(x)[:-rank]) + shape)


def take(x: Any, indices: Sequence[int], axis: int) -> Any:
    """``x``'s entries at ``indices`` along the (negative) ``axis``: ``np.take``."""
    return np.take(x, indices, axis=axis)


def _batched(values: Sequence[Any], rank: int) -> list[np.ndarray]:
    """The values with one broadcast batch shape, each keeping its own point axes."""
    arrays = [np.asarray(v) for v in values]
    batch = np.broadcast_shapes(*(a.shape[:a.ndim - rank] for a in arrays))
    return [a if a.shape[:a.ndim - rank] == batch else
            np.broadcast_to(a, batch + a.shape[a.ndim - rank:]) for a in arrays]


def concatenate(values: Sequence[Any], axis: int, rank: int) -> np.ndarray:
    """``np.concatenate`` of points of ``rank`` axes along the (negative) point ``axis``."""
    return np.concatenate(_batched(values, rank), axis=axis)


def stack(values: Sequence[Any], axis: int, rank: int) -> np.ndarray:
    """``np.stack`` of points of ``rank`` axes at the (negative) axis of the result."""
    return np.stack(_batched(values, rank), axis=axis)


def scatter_add(shape: tuple[int, ...], places: Sequence[tuple[Any, int]],
                *values: Any) -> np.ndarray:
    """Zeros of the point ``shape`` with each value added at its place: ``places[k]`` is
    (an index that starts with ``...``, the rank of the region it selects). The adjoint of
    reading parts of one array (``x[0]``, ``x[1:]`` ...): one accumulator for all of them."""
    batch = np.broadcast_shapes(*(np.shape(v)[:np.ndim(v) - r]
                                  for (_, r), v in zip(places, values)))
    out = np.zeros(tuple(batch) + tuple(shape))
    for (index, _), v in zip(places, values):
        out[index] += v
    return out


def put_add(value: Any, shape: tuple[int, ...], axis: int,
            indices: Sequence[int]) -> np.ndarray:
    """Zeros of the point ``shape`` with ``value`` added at ``indices`` along the (negative)
    ``axis``, repeated indices adding up: the adjoint of ``np.take``."""
    value = np.asarray(value)
    batch = value.shape[:value.ndim - len(shape)]
    out = np.zeros(tuple(batch) + tuple(shape))
    where: list[Any] = [slice(None)] * out.ndim
    where[axis] = np.asarray(indices, dtype=np.intp)
    np.add.at(out, tuple(where), value)
    return out


def take_along_axis(x: Any, indices: Any, axis: int, rank: int) -> np.ndarray:
    """``np.take_along_axis`` of points of ``rank`` axes along the (negative) ``axis``, at
    ``indices`` held as float64 integers (argsort's), batch axes broadcast."""
    x, indices = _batched((x, indices), rank)
    return np.take_along_axis(x, indices.astype(np.intp), axis=axis)


def put_along_axis_add(value: Any, indices: Any, shape: tuple[int, ...],
                       axis: int) -> np.ndarray:
    """Zeros of the point ``shape`` with each entry of ``value`` added at its index along the
    (negative) ``axis`` (``indices``: float64 integers), repeated indices adding up: the
    adjoint of :func:`take_along_axis`."""
    value, indices = _batched((value, indices), len(shape))
    out = np.zeros(value.shape[:value.ndim - len(shape)] + tuple(shape))
    where = list(np.ogrid[tuple(slice(n) for n in value.shape)])
    where[axis] = indices.astype(np.intp)
    np.add.at(out, tuple(where), value)
    return out


def setitem(x: Any, v: Any, shape: tuple[int, ...], rank: int, positions: Any, sources: Any,
            place: tuple[int, ...]) -> np.ndarray:
    """A copy of ``x`` (points of ``shape``) with its flat entries ``positions`` set to those
    of ``v`` (points of ``rank`` axes) broadcast to ``place``, at ``sources`` (None: in
    order, or its one entry everywhere): a write ``x[index] = v``."""
    x, v = np.asarray(x, dtype=np.float64), np.asarray(v, dtype=np.float64)
    bx, bv = x.shape[:x.ndim - len(shape)], v.shape[:v.ndim - rank]
    batch = tuple(np.broadcast_shapes(bx, bv))
    point = v.shape[v.ndim - rank:]
    v = v.reshape(bv + (1,) * (len(batch) - len(bv)) + (1,) * (len(place) - rank) + point)
    v = np.broadcast_to(v, batch + tuple(place)).reshape(batch + (-1,))
    out = np.array(np.broadcast_to(x, batch + tuple(shape)), dtype=np.float64, order="C")
    flat = out.reshape(batch + (-1,))
    flat[..., positions] = v if sources is None else v[..., sources]
    return out


def setitem_into(x: Any, v: Any, shape: tuple[int, ...], rank: int, positions: Any,
                 sources: Any, place: tuple[int, ...]) -> np.ndarray:
    """:func:`setitem` into ``x`` itself where it can hold the result: an array the generated
    code made (a ``setitem``'s, so C-ordered float64) that nothing else reads; a copy where
    the batch of ``v`` is larger than ``x``'s."""
    if not isinstance(x, np.ndarray) or not x.flags.c_contiguous or not x.flags.writeable \
            or x.dtype != np.float64:
        return setitem(x, v, shape, rank, positions, sources, place)
    v = np.asarray(v, dtype=np.float64)
    bx, bv = x.shape[:x.ndim - len(shape)], v.shape[:v.ndim - rank]
    batch = tuple(np.broadcast_shapes(bx, bv))
    if batch != bx:
        return setitem(x, v, shape, rank, positions, sources, place)
    point = v.shape[v.ndim - rank:]
    v = v.reshape(bv + (1,) * (len(batch) - len(bv)) + (1,) * (len(place) - rank) + point)
    v = np.broadcast_to(v, batch + tuple(place)).reshape(batch + (-1,))
    flat = x.reshape(batch + (-1,))  # a view: x is C-contiguous
    flat[..., positions] = v if sources is None else v[..., sources]
    return x
