"""The training loop (dlcore.training) trains any model that offers its seam, and Sequential's
seam (forward, backward, loss_rows, loss_and_gradient) computes what fit uses.

Oracles: a Sequential of the same layer, seed and data (bit-identical training through the same
loop); the loss train_on_batch reports; the chain rule through the softmax (the unfused
forward/backward pair against the fused gradient p - y)."""
import ast
import inspect

import numpy as np
import pytest

import dlcore
import dlcore.gradient_check
from dlcore.backend import get_backend
from dlcore.backend.rng import layer_seed
from dlcore.layers import Dense, Dropout
from dlcore.losses import get_loss
from dlcore.optimizers import SGD, Parameter
from dlcore.training import TrainingLoop


class OneDense(TrainingLoop):
    """Not a Sequential: one softmax Dense layer with the seam of dlcore.training written out
    (the loss fused with the softmax, as Sequential does)."""

    def __init__(self, units, seed, backend):
        self.layer = Dense(units, activation="softmax")
        self.seed, self.backend_name, self.input_shape, self.built = seed, backend, None, False
        self.loss, self.optimizer, self.metrics = get_loss("cross_entropy"), SGD(0.3), ["accuracy"]
        self._reset_training()

    def build(self, input_shape):
        self.backend, self.dtype = get_backend(self.backend_name), np.dtype(np.float32)
        self.layer.build(input_shape, self.backend, self.dtype, seed=layer_seed(self.seed, 0))
        self.input_shape, self.output_shape = tuple(input_shape), self.layer.output_shape
        self.parameters = [Parameter(f"dense/{name}", self.layer.params[name],
                                     self.layer.grads[name]) for name in self.layer.weight_names]
        self.built = True

    def check_compiled(self):
        pass

    def forward(self, x, training=False, step=0):
        return self.layer.forward(x, training=training, step=step)

    def loss_rows(self, x, targets, rows, training=False, step=0, gradient=False,
                  input_gradient=False):
        logits = self.layer.forward(x, training=training, step=step, apply_activation=False)
        self.loss.loss_and_gradient(self.backend, logits, targets, rows.grad, rows.loss,
                                    rows.correct, True)
        if gradient:
            return self.layer.backward(rows.grad, input_gradient, apply_activation=False)
        return None

    def penalty(self):
        return 0.0

    def get_weights(self):
        return self.layer.get_weights()

    def set_weights(self, weights):
        self.layer.set_weights(weights)


def blobs(n=50, features=6, seed=0):
    rs = np.random.default_rng(seed)
    centres = rs.standard_normal((3, features)) * 2
    y = rs.integers(0, 3, n)
    return (centres[y] + rs.standard_normal((n, features))).astype(np.float32), y


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_a_model_that_is_not_sequential_trains_bit_for_bit_as_sequential_does(backend):
    x, y = blobs()
    twin = dlcore.Sequential([Dense(3, activation="softmax")], backend=backend, seed=7)
    twin.compile("cross_entropy", SGD(0.3), ["accuracy"])
    model = OneDense(3, seed=7, backend=backend)
    for m in (model, twin):
        m.fit(x, y, epochs=3, batch_size=8, validation_split=0.2, verbose=0)
    histories = [m.history for m in (model, twin)]   # the model's record: the rates too
    for name in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert histories[0][name] == histories[1][name]
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.epochs_done == twin.epochs_done == 3 and model.n_updates == twin.n_updates
    assert tuple(model.evaluate(x, y)) == tuple(twin.evaluate(x, y))
    np.testing.assert_array_equal(model.predict(x), twin.predict(x))
    assert tuple(model.train_on_batch(x[:5], y[:5])) == tuple(twin.train_on_batch(x[:5], y[:5]))


def test_loss_and_gradient_is_the_loss_train_on_batch_reports_and_leaves_the_weights():
    x, y = blobs(n=12)
    model = dlcore.Sequential([Dense(5, activation="tanh"), Dense(3, activation="softmax")],
                              input_shape=(6,), backend="reference", seed=1)
    model.compile("cross_entropy", "sgd", ["accuracy"])
    twin = model.clone()
    before = model.get_weights()
    loss, grad_x = model.loss_and_gradient(x, y, input_gradient=True)
    assert grad_x.shape == x.shape and model.n_updates == 0
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert loss == twin.train_on_batch(x, y)["loss"]
    assert [p.grad.shape for p in model.parameters] == [w.shape for w in before]
    for mine, theirs in zip(model.parameters, twin.parameters):
        np.testing.assert_array_equal(mine.grad, theirs.grad)


def test_forward_and_backward_through_the_softmax_give_the_fused_gradient():
    x, y = blobs(n=9)
    model = dlcore.Sequential([Dense(4, activation="relu"), Dropout(0.2),
                               Dense(3, activation="softmax")], input_shape=(6,),
                              backend="reference", seed=2)
    model.compile("cross_entropy", "sgd")
    model.loss_and_gradient(x, y, step=4)
    fused = [np.array(p.grad) for p in model.parameters]
    backend = model.backend
    probabilities = model.forward(backend.asarray(x), training=True, step=4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-6)
    one_hot = np.eye(3, dtype=np.float32)[y]
    model.backward(-one_hot / (probabilities * len(x)))   # dL/dp of the mean cross-entropy
    for expected, parameter in zip(fused, model.parameters):
        np.testing.assert_allclose(parameter.grad, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("call", ["fit", "train_on_batch", "evaluate"])
def test_each_training_call_checks_the_compilation_once(monkeypatch, call):
    x, y = blobs(n=10)
    model = dlcore.Sequential([Dense(3, activation="softmax")], backend="reference")
    model.compile("cross_entropy", "sgd")
    calls = []
    check = dlcore.Sequential.check_compiled
    monkeypatch.setattr(dlcore.Sequential, "check_compiled",
                        lambda self: calls.append(1) or check(self))
    getattr(model, call)(x, y, **({"verbose": 0} if call == "fit" else {}))
    assert calls == [1]


def test_gradient_check_reaches_no_private_name_of_the_model():
    tree = ast.parse(inspect.getsource(dlcore.gradient_check))
    private = sorted({node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                      and node.attr.startswith("_") and not node.attr.startswith("__")})
    assert private == []


def test_set_state_of_a_network_compiled_before_it_was_built_adopts_the_optimiser_state():
    """set_state readies the optimiser's slots it fills (dlcore.load builds before it compiles;
    a user's own network may be compiled first and built later)."""
    x = np.random.default_rng(0).random((16, 4), dtype=np.float32)
    y = np.arange(16) % 3
    trained = dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(4,),
                                backend="reference", seed=2)
    trained.compile(optimizer=SGD(0.1, momentum=0.9))
    trained.fit(x, y, epochs=1, batch_size=8, verbose=0)
    fresh = dlcore.Sequential([Dense(3, activation="softmax")], backend="reference", seed=2)
    fresh.compile(optimizer=SGD(0.1, momentum=0.9))
    fresh.build((4,))
    fresh.set_state(trained.get_state())
    trained.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    fresh.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(trained.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_keras_keywords_of_predict_evaluate_and_the_batch_methods(capsys):
    """What Keras users write: ``predict(x, verbose=0)``, ``evaluate(..., return_dict=True)``,
    ``test_on_batch``, ``predict_on_batch``, ``train_on_batch(..., return_dict=True)``."""
    x, y = blobs(n=40)
    model = dlcore.Sequential([Dense(3, activation="softmax")], input_shape=(6,),
                              backend="reference", seed=3)
    model.compile("cross_entropy", SGD(0.3), ["accuracy"])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    expected = model.predict(x)
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
    np.testing.assert_array_equal(model.predict_on_batch(x), expected)
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(model.predict(x, 16, "auto"), expected)
    assert capsys.readouterr().err.startswith("predict: 40 samples in ")
    scores = model.evaluate(x, y)
    assert model.evaluate(x, y, return_dict=True) == dict(scores)
    assert tuple(model.test_on_batch(x, y)) == tuple(scores)
    assert model.test_on_batch(x[:8], y[:8], return_dict=True) == dict(
        model.evaluate(x[:8], y[:8]))
    assert capsys.readouterr().err == ""
    model.evaluate(x, y, verbose=1)
    said = capsys.readouterr().err
    assert said.startswith("evaluate: 40 samples in ")
    assert said.rstrip().endswith(f"loss {scores['loss']:.4f} - accuracy "
                                  f"{scores['accuracy']:.4f}")
    logs = model.train_on_batch(x[:8], y[:8], return_dict=True)
    assert set(logs) == {"loss", "accuracy"} and isinstance(logs, dict)
    for bad in (3, -1, "loud", 0.5):
        with pytest.raises(ValueError, match=r"verbose must be 0 \(silent\), 1, 2 or 'auto'"):
            model.predict(x, verbose=bad)


def test_threads_predicting_with_one_network_get_the_numbers_of_one_thread():
    """A network's layers reuse their buffers from one batch to the next: four threads
    predicting with one network mixed each other's numbers."""
    import threading

    model = dlcore.Sequential([Dense(16, activation="relu"), Dense(3, activation="softmax")],
                              input_shape=(5,), backend="cpu", seed=1)
    x = np.random.default_rng(0).random((300, 5)).astype(np.float32)
    alone = model.predict(x, batch_size=7)
    outputs = []

    def predict():
        outputs.extend(model.predict(x, batch_size=7) for _ in range(10))
    threads = [threading.Thread(target=predict) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outputs) == 40
    for output in outputs:
        np.testing.assert_array_equal(output, alone)
