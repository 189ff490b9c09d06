"""The data a Keras 3 user hands to fit, evaluate and predict: what dlcore takes, and what it
refuses in one line naming the fix (lecture "Deep learning I", "Model.fit() parameters")."""
import io
import re
import sys

import numpy as np
import pytest

import dlcore
from dlcore.batches import epoch_order
from dlcore.callbacks import EarlyStopping
from dlcore.layers import Dense


def tiny_data(n=12, features=4, classes=3, seed=0):
    rs = np.random.default_rng(seed)
    return rs.standard_normal((n, features)).astype(np.float32), rs.integers(0, classes, n)


def tiny_model():
    model = dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(4,),
                              backend="reference", seed=0)
    model.compile("cross_entropy", "sgd", ["accuracy"])
    return model


class BatchSequence:
    """Keras's PyDataset protocol: a length, a batch (x, y) by index, and iteration."""

    def __init__(self, x, y, batch_size):
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[rows], self.y[rows]

    def __iter__(self):   # as keras.utils.PyDataset's: its batches, once
        return (self[index] for index in range(len(self)))


def batch_streams(x, y):
    """(what the message names, the stream) for each kind of batch stream Keras takes as x."""
    def generator():
        while True:   # Keras's habit: an endless generator and steps_per_epoch
            yield x[:4], y[:4]

    return [("a generator", generator()),
            ("an iterator (list_iterator)", iter([(x, y)])),
            ("a BatchSequence", BatchSequence(x, y, 4))]


def torch_data_loader(x, y):
    """PyTorch's DataLoader of (x, y) in batches of 4 (the test skips where torch is absent:
    the test extras do not install it)."""
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset
    return DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=4)


def test_a_stream_of_batches_is_refused_in_one_line_naming_the_fix_as_x_of_each_method():
    x, y = tiny_data()
    model = tiny_model()
    before = model.get_weights()
    for kind, stream in batch_streams(x, y):
        for method in ("fit", "evaluate", "predict"):
            with pytest.raises(TypeError) as refused:
                getattr(model, method)(stream)
            message = str(refused.value)
            assert message.startswith(f"{method}'s x is {kind} of batches")
            assert "np.concatenate" in message and "\n" not in message
    for got, kept in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, kept)


@pytest.mark.parametrize("method", ["train_on_batch", "test_on_batch", "predict_on_batch"])
def test_a_generator_given_to_an_on_batch_method_is_refused_in_one_line(method):
    x, y = tiny_data()
    with pytest.raises(TypeError, match=f"^{method}'s x is a generator of batches: "):
        getattr(tiny_model(), method)(batch for batch in [(x, y)])


def test_a_pytorch_data_loader_is_refused_as_x_and_as_validation_data():
    x, y = tiny_data()
    loader = torch_data_loader(x, y)
    for method in ("fit", "evaluate", "predict"):
        with pytest.raises(TypeError, match=f"^{method}'s x is a DataLoader of batches: "):
            getattr(tiny_model(), method)(loader)
    with pytest.raises(TypeError, match="^fit's validation_data is a DataLoader of batches: "):
        tiny_model().fit(x, y, validation_data=loader, verbose=0)


def test_a_stream_of_batches_as_validation_data_is_refused_in_one_line():
    x, y = tiny_data()
    for kind, stream in batch_streams(x, y):
        with pytest.raises(TypeError, match=re.escape(f"fit's validation_data is {kind} of b")):
            tiny_model().fit(x, y, validation_data=stream, verbose=0)


@pytest.mark.parametrize("method", ["fit", "evaluate", "train_on_batch", "test_on_batch"])
def test_y_left_out_as_keras_allows_is_refused_in_one_line(method):
    x, _ = tiny_data()
    with pytest.raises(ValueError, match="^y is None: no labels were given for the 12 samples"):
        getattr(tiny_model(), method)(x)


@pytest.mark.filterwarnings("error")   # not trained on the real part with a ComplexWarning
@pytest.mark.parametrize("method", ["fit", "evaluate", "predict", "train_on_batch"])
def test_complex_inputs_are_refused_in_one_line_as_the_estimators_refuse_them(method):
    x, y = tiny_data()
    arguments = (x + 1j,) if method == "predict" else (x + 1j, y)
    with pytest.raises(ValueError, match=r"^Complex data not supported: x holds complex "
                                         r"numbers and dlcore computes with real ones: pass "
                                         r"x.real or np.abs\(x\), whichever you mean$"):
        getattr(tiny_model(), method)(*arguments)
    if method != "predict":
        with pytest.raises(ValueError, match=r"^Complex data not supported: y holds complex"):
            getattr(tiny_model(), method)(x, np.eye(3)[y] + 0.5j)


BEYOND_FLOAT32 = (r"^{} holds 1 value beyond float32's range \(largest magnitude 1e\+39; "
                  r"float32 reaches 3.4e\+38\), which would be infinite: scale the data .*"
                  r"or compute in float64 \(dtype='float64' on every layer\)$")


@pytest.mark.filterwarnings("error")   # and no NumPy overflow warning before it
@pytest.mark.parametrize("method", ["fit", "evaluate", "predict", "train_on_batch"])
def test_inputs_beyond_float32s_range_are_named_so_not_nan_or_infinite(method):
    x, y = tiny_data()
    x = x.astype(np.float64)
    x[3, 1] = -1e39   # finite in float64
    arguments = (x,) if method == "predict" else (x, y)
    with pytest.raises(ValueError, match=BEYOND_FLOAT32.format("x")):
        getattr(tiny_model(), method)(*arguments, **({} if "batch" in method else {"verbose": 0}))


@pytest.mark.filterwarnings("error")
def test_targets_beyond_float32s_range_are_named_so_not_nan_or_infinite():
    x, _ = tiny_data()
    model = dlcore.Sequential([Dense(2)], input_shape=(4,), backend="reference", seed=0)
    model.compile("mse", "sgd")
    y = np.zeros((12, 2))
    y[5, 0] = 1e39
    with pytest.raises(ValueError, match=BEYOND_FLOAT32.format("y")):
        model.fit(x, y, verbose=0)


def test_a_float64_network_trains_on_values_beyond_float32s_range():
    x, _ = tiny_data()
    x = x.astype(np.float64)
    x[3, 1], y = 1e39, np.zeros((12, 2))
    y[5, 0] = 1e39
    # built by its first fit (it checks x in the type it is built in), and built already
    for input_shape in (None, (4,)):
        model = dlcore.Sequential([Dense(2, dtype="float64")], input_shape=input_shape,
                                  backend="reference", seed=0)
        model.compile("mse", "sgd")
        model.fit(x, y, epochs=1, verbose=0)
        assert model.dtype == np.float64 and model.predict(x, verbose=0).shape == (12, 2)


def test_reset_metrics_between_batches_as_a_keras_loop_calls_it_changes_no_report():
    x, y = tiny_data()
    model, unreset = tiny_model(), tiny_model()
    reported, unreset_reported = [], []
    for rows in (slice(0, 6), slice(6, 12)):
        reported.append(model.train_on_batch(x[rows], y[rows], return_dict=True))
        model.reset_metrics()
        unreset_reported.append(unreset.train_on_batch(x[rows], y[rows], return_dict=True))
    assert reported == unreset_reported
    assert model.test_on_batch(x, y) == unreset.test_on_batch(x, y)


@pytest.mark.parametrize("key, meant", [("1", 1), (0.5, 0), (None, 0)])
def test_a_class_weight_key_that_names_no_class_is_refused_in_one_line(key, meant):
    x, y = tiny_data()
    with pytest.raises(ValueError, match=re.escape(
            f"class_weight's keys must be class indices 0, 1, ..., got {key!r}: write "
            f"{{{meant}: 2.0}}")):
        tiny_model().fit(x, y, class_weight={0: 1.0, key: 2.0}, verbose=0)


def test_class_weight_keys_of_numpy_integers_and_whole_floats_weigh_their_class():
    x, y = tiny_data()
    weighted = tiny_model().fit(x, y, class_weight={0: 1.0, 1: 3.0}, verbose=0).history
    for keys in ({np.int64(0): 1.0, np.int64(1): 3.0}, {0.0: 1.0, 1.0: 3.0}):
        assert tiny_model().fit(x, y, class_weight=keys, verbose=0).history == weighted
    assert tiny_model().fit(x, y, verbose=0).history != weighted


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, where the progress bar draws."""

    def isatty(self):
        return True


@pytest.mark.parametrize("verbose, bar", [(1, True), ("auto", True), (2, False)])
def test_fits_verbose_2_writes_one_line_an_epoch_and_1_a_bar_as_keras(monkeypatch, verbose, bar):
    x, y = tiny_data()
    monkeypatch.setattr(sys, "stderr", Terminal())
    tiny_model().fit(x, y, epochs=2, batch_size=4, verbose=verbose)
    written = sys.stderr.getvalue()
    epoch_lines = [line for line in written.splitlines() if re.match(r"epoch \d/2: loss ", line)]
    assert len(epoch_lines) == 2
    assert ("\r" in written) == bar


@pytest.mark.parametrize("verbose", [3, -1, "x", 1.5])
def test_fits_verbose_outside_kerass_values_is_refused_in_one_line_as_evaluates(verbose):
    x, y = tiny_data()
    with pytest.raises(ValueError, match="^verbose must be 0 .silent., 1, 2 or 'auto'"):
        tiny_model().fit(x, y, verbose=verbose)


@pytest.mark.parametrize("n_rows", [12, 14])
def test_shuffle_batch_draws_the_order_of_runs_of_consecutive_rows_as_keras(n_rows):
    batch_size = 4
    orders = [epoch_order(n_rows, 7, epoch, "batch", batch_size) for epoch in range(6)]
    full = n_rows // batch_size
    for order in orders:
        assert sorted(order) == list(range(n_rows))
        firsts = order[:full * batch_size].reshape(full, batch_size)
        np.testing.assert_array_equal(firsts, firsts[:, :1] + np.arange(batch_size))
        assert set(firsts[:, 0] % batch_size) == {0}
        np.testing.assert_array_equal(order[full * batch_size:],
                                      np.arange(full * batch_size, n_rows))
    assert len({tuple(order) for order in orders}) > 1   # drawn anew each epoch


def test_fit_with_shuffle_batch_trains_and_other_values_are_refused_in_one_line():
    x, y = tiny_data()
    history = tiny_model().fit(x, y, epochs=2, batch_size=4, shuffle="batch", verbose=0).history
    assert len(history["loss"]) == 2
    for shuffle in ("yes", "Batch", 2, None):
        with pytest.raises(ValueError, match=re.escape(
                f"shuffle must be True, False or 'batch' (as Keras), got {shuffle!r}")):
            tiny_model().fit(x, y, shuffle=shuffle, verbose=0)


@pytest.mark.parametrize("method", ["fit", "evaluate"])
def test_an_x_y_pair_given_as_x_is_refused_in_one_line_naming_the_call(method):
    x, y = tiny_data()
    with pytest.raises(ValueError, match=re.escape(
            f"{method}'s x is a tuple of 2 arrays and y is None: for Keras's (x, y) pass them "
            f"apart, model.{method}(x, y)")):
        getattr(tiny_model(), method)((x, y))
    with pytest.raises(ValueError, match=re.escape(f"model.{method}(x, y, sample_weight=")):
        getattr(tiny_model(), method)([x, y, np.ones(len(x))])


def test_one_callback_not_in_a_list_is_taken_as_keras_3_takes_it():
    x, y = tiny_data()
    stop = EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    history = tiny_model().fit(x, y, epochs=5, callbacks=stop, verbose=0).history
    assert len(history["loss"]) == 2 and stop.stopped_epoch == 1   # Keras's patience 0


def test_one_foreign_callback_not_in_a_list_is_refused_in_one_line():
    x, y = tiny_data()
    with pytest.raises(TypeError, match="^callbacks must be dlcore.callbacks.Callback objects, "
                                        "got object$"):
        tiny_model().fit(x, y, callbacks=object(), verbose=0)
