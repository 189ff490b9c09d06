"""The one mini-batch iterator of the RBM trainer, up-down and network training."""
import numpy as np
import pytest

from dlcore.backend import get_backend, rng
from dlcore.batches import epoch_order, mini_batches


def test_epoch_order_is_the_philox_permutation_of_the_epoch_and_identity_without_shuffle():
    np.testing.assert_array_equal(epoch_order(10, 7, 3),
                                  rng.permutation(10, 7, rng.STREAM_SHUFFLE, 3))
    assert not np.array_equal(epoch_order(10, 7, 3), epoch_order(10, 7, 4))
    np.testing.assert_array_equal(epoch_order(5, 7, 3, shuffle=False), np.arange(5))


@pytest.mark.parametrize("backend_name", ["reference", "cpu"])
def test_every_row_is_gathered_once_in_order_with_the_last_batch_short(backend_name):
    backend = get_backend(backend_name)
    data = np.arange(23 * 3, dtype=np.float32).reshape(23, 3)
    labels = np.arange(23 * 2, dtype=np.float32).reshape(23, 2) * -1
    order = epoch_order(23, 5, 0)
    buffers = (backend.empty((4, 3)), backend.empty((4, 2)))
    seen, sizes = [], []
    for batch in mini_batches(backend, (data, labels), buffers, order, 4):
        x, y = batch.arrays
        sizes.append(len(x))
        rows = order[4 * batch.index:4 * batch.index + len(x)]
        np.testing.assert_array_equal(backend.to_numpy(x), data[rows])
        np.testing.assert_array_equal(backend.to_numpy(y), labels[rows])
        assert batch.n_batches == 6 and batch.rows_done == 4 * batch.index + len(x)
        seen.extend(rows)
    assert sizes == [4, 4, 4, 4, 4, 3]
    assert sorted(seen) == list(range(23))


def test_a_missing_source_yields_none_and_the_cadence_reports_every_k_and_the_last():
    backend = get_backend("reference")
    data = np.ones((10, 2), np.float32)
    batches = list(mini_batches(backend, (data, None), (np.empty((1, 2), np.float32), None),
                                np.arange(10), 1, report_every=4))
    assert all(batch.arrays[1] is None for batch in batches)
    assert [batch.index for batch in batches if batch.reports] == [3, 7, 9]
    default = list(mini_batches(backend, (data,), (np.empty((1, 2), np.float32),),
                                np.arange(10), 1))
    assert all(batch.reports for batch in default)  # fewer than 50 batches: every one reports
