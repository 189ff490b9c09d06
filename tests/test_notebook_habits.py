"""What a student meets in a Jupyter notebook: warnings that name the student's own line (a
notebook prints that line under the warning), reprs that follow scikit-learn's display
settings, and the verbose output of the layer-wise estimators. Each was a QA finding."""
import io
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import dlcore
from dlcore.layers import Dense


def rows(n, width, seed=0):
    return np.random.default_rng(seed).random((n, width)).astype(np.float32)


def network(width=16):
    model = dlcore.Sequential([Dense(2, activation="softmax")], input_shape=(width,),
                              backend="reference")
    model.compile("cross_entropy", "sgd")
    return model


def files_warned_from(call):
    """The file each warning of ``call()`` names as the line that gave it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [record.filename for record in caught]


def test_a_networks_warnings_name_the_callers_line_not_dlcores_lock():
    # fit and predict run inside the per-network lock's wrapper, a frame more than the fixed
    # stacklevel counted: a notebook showed "training.py:220 ... return method(self, ...)"
    images = (np.arange(64).reshape(4, 16) * 4).astype(np.uint8)
    labels = np.array([0, 1, 0, 1])
    model = network()
    assert files_warned_from(
        lambda: model.fit(images, labels, verbose=0)) == [__file__]
    assert files_warned_from(
        lambda: model.predict(images / 255, mc_dropout=2)) == [__file__]
    frozen = network()
    for layer in frozen.layers:
        layer.trainable = False
    frozen.compile("cross_entropy", "sgd")
    assert files_warned_from(
        lambda: frozen.fit(images / 255, labels, verbose=0)) == [__file__]


@pytest.mark.parametrize("method", ["transform", "score_samples"])
def test_a_feature_name_warning_names_the_callers_line(method):
    pandas = pytest.importorskip("pandas")
    X = (rows(20, 4) > 0.5).astype(np.float32)
    on_table = dlcore.BernoulliRBM(n_hidden=2, epochs=1, batch_size=10).fit(
        pandas.DataFrame(X, columns=list("abcd")))
    on_array = dlcore.BernoulliRBM(n_hidden=2, epochs=1, batch_size=10).fit(X)
    assert files_warned_from(
        lambda: getattr(on_table, method)(X)) == [__file__]
    assert files_warned_from(
        lambda: getattr(on_array, method)(pandas.DataFrame(X, columns=list("abcd")))) == \
        [__file__]


def test_the_repr_follows_scikit_learns_print_changed_only():
    # a Pipeline printed scikit-learn's steps with every parameter and dlcore's with the
    # changed ones alone after set_config(print_changed_only=False)
    sklearn = pytest.importorskip("sklearn")
    rbm = dlcore.BernoulliRBM(n_hidden=16)
    assert repr(rbm) == "BernoulliRBM(n_hidden=16)"
    with sklearn.config_context(print_changed_only=False):
        shown = repr(rbm)
    assert shown.startswith("BernoulliRBM(n_hidden=16, learning_rate=0.1, cd_k=1, ")
    assert shown.count("=") == len(rbm.get_params())
    assert repr(rbm) == "BernoulliRBM(n_hidden=16)"


@pytest.mark.parametrize("make, layer_line", [
    (lambda: dlcore.DBN(hidden=[5, 3], epochs=2, batch_size=10, verbose=True,
                        backend="reference"),
     "[DBN] RBM {k} of 2: {below} units -> {above} units"),
    (lambda: dlcore.StackedAutoencoder(hidden=[5, 3], epochs=2, batch_size=10, verbose=True,
                                       backend="reference"),
     "[StackedAutoencoder] layer {k} of 2: {below} units -> {above} units")])
@pytest.mark.parametrize("call", ["fit", "partial_fit"])
def test_a_verbose_stack_says_which_layer_the_epoch_lines_are_of(make, layer_line, call,
                                                                 capsys):
    # every layer wrote "[BernoulliRBM] epoch 1: ..." alike: a DBN's second RBM read as a
    # second run of the first
    X = (rows(20, 6) > 0.5).astype(np.float32)
    getattr(make(), call)(X)
    lines = capsys.readouterr().err.splitlines()
    headers = [index for index, line in enumerate(lines) if not line.startswith("[") or
               line.startswith(("[DBN]", "[StackedAutoencoder]"))]
    assert [lines[index] for index in headers] == [
        layer_line.format(k=1, below=6, above=5), layer_line.format(k=2, below=5, above=3)]
    epochs_each = 2 if call == "fit" else 1
    assert headers == [0, 1 + epochs_each]
    assert len(lines) == 2 + 2 * epochs_each


def test_a_verbose_dbn_names_the_label_units_of_its_top_rbm(capsys):
    X = (rows(20, 6) > 0.5).astype(np.float32)
    dlcore.DBN(hidden=[5, 3], epochs=1, batch_size=10, verbose=True, n_labels=2,
               backend="reference").fit(X, np.arange(20) % 2)
    assert "[DBN] RBM 2 of 2: 5 units (+ 2 label units) -> 3 units" in \
        capsys.readouterr().err.splitlines()


def test_a_model_made_before_its_module_was_reloaded_still_saves(tmp_path):
    # IPython's %autoreload (or importlib.reload) leaves the notebook's models of the class
    # object as it was; dlcore.save refused them as "save it with pickle", which fails too.
    # A process of its own: a reload here would change the classes of the tests after it
    code = textwrap.dedent("""
        import importlib, sys
        import numpy as np
        import dlcore, dlcore.rbm.bernoulli
        X = (np.random.default_rng(0).random((40, 6)) > 0.5).astype(np.float32)
        before = dlcore.BernoulliRBM(n_hidden=3, epochs=1, batch_size=10,
                                     backend="reference").fit(X)
        importlib.reload(dlcore.rbm.bernoulli)
        assert type(before) is not dlcore.rbm.bernoulli.BernoulliRBM
        dlcore.save(before, sys.argv[1])
        loaded = dlcore.load(sys.argv[1])
        assert np.array_equal(loaded.W, before.W)
        print("saved and loaded")
        """)
    completed = subprocess.run([sys.executable, "-c", code, str(tmp_path / "rbm.h5")],
                               capture_output=True, text=True, timeout=300, check=False)
    assert completed.stdout.strip() == "saved and loaded", completed.stderr[-2000:]


def test_a_notebook_shows_a_printed_gradient_check_once(ipython_stand_in, capsys):
    # dlcore.gradcheck(model, x, y) as a cell's last line (the README's) printed the table,
    # then IPython displayed the returned dict of the same numbers under it
    shell, shown = ipython_stand_in
    model = dlcore.Sequential([Dense(2, activation="softmax")], input_shape=(3,),
                              backend="reference")
    model.compile("cross_entropy", "sgd")
    x, y = rows(4, 3), np.array([0, 1, 0, 1])
    errors = dlcore.gradcheck(model, x, y)
    assert "dense/kernel" in capsys.readouterr().out
    errors._ipython_display_()
    assert shown == []
    quiet = dlcore.gradcheck(model, x, y, verbose=False)
    assert capsys.readouterr().out == ""
    quiet._ipython_display_()
    shell.execution_count = 4   # the errors kept, displayed in a later cell
    errors._ipython_display_()
    assert len(shown) == 2 and shown[0].startswith("{'dense/kernel': ")
    assert dict(errors) == dict(quiet) and isinstance(errors, dict)


def test_a_networks_repr_counts_in_words():
    # "Sequential(1 layers, ...)" and "Model(1 input(s), 1 output(s), 1 layers, ...)" under
    # a notebook's cell
    assert repr(dlcore.Sequential([Dense(3)], backend="reference")) == \
        "Sequential(1 layer, input_shape=None, backend='reference')"
    inputs = dlcore.Input((4,))
    assert repr(dlcore.Model(inputs, Dense(2)(inputs), backend="reference")) == \
        "Model(1 input, 1 output, 1 layer, backend='reference')"
    two = [dlcore.Input((4,)), dlcore.Input((3,))]
    joined = dlcore.layers.concatenate([Dense(2)(two[0]), Dense(2)(two[1])])
    assert repr(dlcore.Model(two, [joined, Dense(1)(joined)], backend="reference")) \
        .startswith("Model(2 inputs, 2 outputs, ")


class KernelStream(io.StringIO):
    """What a Jupyter kernel puts in sys.stderr: ipykernel's OutStream, not a terminal
    (isatty False, no fileno), whose notebook redraws a line at each carriage return."""

    __module__ = "ipykernel.iostream"

    def isatty(self):
        return False

    def fileno(self):
        raise io.UnsupportedOperation("fileno")


@pytest.mark.parametrize("verbose, bar", [(1, True), ("auto", True), (2, False)])
def test_a_notebook_draws_fits_bar_for_verbose_1_as_keras_does(monkeypatch, verbose, bar):
    # off a terminal only the epoch lines were written: in a notebook verbose=1 read as
    # verbose=2, and a long epoch showed nothing until it ended
    monkeypatch.setattr(sys, "stderr", KernelStream())
    x, y = rows(40, 16), np.arange(40) % 2
    network().fit(x, y, epochs=2, batch_size=4, verbose=verbose)
    written = sys.stderr.getvalue()
    assert len([line for line in written.split("\n")
                if line.startswith(("epoch 1/2: loss ", "epoch 2/2: loss "))]) == 2
    assert ("\repoch 1/2  [" in written) == bar
    assert "\x1b" not in written   # no terminal's cursor codes printed as text


def test_a_notebook_redraws_the_ais_progress_line(monkeypatch):
    from dlcore.rbm.ais import ais_log_partition
    X = (rows(20, 6) > 0.5).astype(np.float32)
    rbm = dlcore.BernoulliRBM(n_hidden=3, epochs=1, batch_size=10, backend="reference").fit(X)
    monkeypatch.setattr(sys, "stderr", KernelStream())
    ais_log_partition(rbm, n_temperatures=200, n_runs=4, verbose=True)
    written = sys.stderr.getvalue()
    assert written.startswith("\rAIS: 1% ") and written.count("\n") == 1


def test_a_notebooks_bar_is_drawn_at_most_every_tenth_of_a_second(monkeypatch):
    # each draw is a message to the browser: a draw a report (about 100 an epoch) made a
    # 0.1 s epoch 75 % slower in a notebook than verbose=2
    import time

    from dlcore.callbacks import NOTEBOOK_REDRAW_SECONDS
    monkeypatch.setattr(sys, "stderr", KernelStream())
    x, y = rows(2000, 16), np.arange(2000) % 2
    model = network()
    model.fit(x[:8], y[:8], verbose=0)
    started = time.perf_counter()
    model.fit(x, y, epochs=1, batch_size=4, verbose=1)
    elapsed = time.perf_counter() - started
    written = sys.stderr.getvalue()
    assert "[####################################]" in written   # the last draw is full
    assert written.count("\r") <= 3 + 2 * elapsed / NOTEBOOK_REDRAW_SECONDS
