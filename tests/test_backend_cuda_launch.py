"""The CUDA backend's per-launch plumbing: what it caches must be what numba-cuda would do.

On a real GPU the backend launches a kernel straight through the compiled kernel numba-cuda chose
for a :func:`~dlcore.backend.cuda.launch_key`; the key must tell apart every pair of arguments
Numba types differently, or a kernel would read its arguments with the wrong layout.
"""
import itertools

import numpy as np
import pytest
from numba import typeof

from conftest import requires_cuda
from dlcore.batches import leading_rows


def _arguments():
    matrix = np.zeros((2, 3), np.float32)
    read_only = np.zeros((2, 3), np.float32)
    read_only.flags.writeable = False
    return [matrix, np.zeros((4, 5), np.float32), np.zeros((2, 3), np.float64),
            np.zeros(3, np.float32), np.asfortranarray(np.zeros((2, 3), np.float32)),
            np.zeros((4, 6), np.float32)[:, ::2], np.broadcast_to(np.zeros(3, np.float32), (2, 3)),
            read_only, np.zeros((2, 3), np.int64), 1.0, np.float32(1.0), np.float64(2.0), 3,
            -7, 2 ** 63, True, np.int64(3), np.int32(3), None, (matrix, 1.0), (matrix, 2.5),
            (matrix, np.float32(1.0))]


@requires_cuda
def test_arguments_numba_types_differently_never_share_a_launch_key():
    # a finer key (a Python float and a NumPy float64) only costs one more cache entry
    from dlcore.backend.cuda import launch_key
    values = _arguments()
    distinct_keys = {launch_key((value,)) for value in values}
    assert len(distinct_keys) >= len({typeof(value) for value in values})
    for first, second in itertools.combinations(values, 2):
        if launch_key((first,)) == launch_key((second,)):
            assert typeof(first) == typeof(second), (first, second)
    assert launch_key((values[0],)) == launch_key((values[1],))  # shapes do not matter


@requires_cuda
def test_batch_indices_reuse_one_device_buffer_per_length_and_hold_the_new_values():
    from dlcore.backend import get_backend
    backend = get_backend("cuda")
    first = backend._indices(np.array([4, 1, 3]))
    second = backend._indices(np.array([0, 2, 5]))
    assert second is first  # no allocation per batch
    np.testing.assert_array_equal(backend.to_numpy(second), [0, 2, 5])
    shorter = backend._indices(np.array([7, 6]))
    np.testing.assert_array_equal(backend.to_numpy(shorter), [7, 6])
    np.testing.assert_array_equal(backend.to_numpy(backend._indices(np.arange(3))), [0, 1, 2])


@pytest.mark.parametrize("stop, start, expected", [(5, 0, "whole"), (3, 0, [0, 1, 2]),
                                                   (5, 2, [2, 3, 4])])
def test_leading_rows_slices_only_when_the_view_is_not_the_whole_buffer(stop, start, expected):
    buffer = np.arange(5)
    view = leading_rows(buffer, stop, start)
    if expected == "whole":
        assert view is buffer
    else:
        np.testing.assert_array_equal(view, expected)
