"""Model files from strangers (a hand-in, a download): whatever a Keras archive, a legacy Keras
HDF5 file or a dlcore model file holds, loading it must not hang, allocate without bound or
load parameters that are not finite; every refusal is one line naming the file
(dlcore/io/keras_archive.py, dlcore/io/keras.py, dlcore/io/guarded.py).
"""
import dlcore
from dlcore import functional
from test_io_keras import edited_archive


def counted_layer_calls(monkeypatch):
    """A list that gets an item each time a layer is called on a symbolic tensor (what a
    network does for each layer when it makes its graph)."""
    calls = []
    original = functional.call_layer

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(functional, "call_layer", counting)
    return calls


def test_a_sequential_given_its_layers_makes_its_graph_once_not_once_per_layer(monkeypatch):
    calls = counted_layer_calls(monkeypatch)
    n_layers = 80
    net = dlcore.Sequential([dlcore.layers.Dropout(0.1) for _ in range(n_layers)]
                            + [dlcore.layers.Dense(3)], input_shape=(4,))
    assert len(net.layers) == n_layers + 1 and net.output_shape == (3,)
    # once per layer; building each as it came called all the layers before it again
    assert len(calls) <= 2 * (n_layers + 1)


def test_a_keras_archive_of_many_layers_loads_in_time_linear_in_its_layers(tmp_path,
                                                                           monkeypatch):
    n_layers = 300

    def many_dropouts(config):
        config["config"]["layers"][3:3] = [
            {"module": "keras.layers", "class_name": "Dropout",
             "config": {"name": f"dropout_{index}", "rate": 0.1}, "registered_name": None}
            for index in range(n_layers)]

    path = edited_archive(tmp_path, "keras_compiled.keras", many_dropouts)
    calls = counted_layer_calls(monkeypatch)
    model = dlcore.load(path)
    assert len(model.layers) == n_layers + 3
    # a few graphs of every layer (the model, its copies for the optimiser's state); a graph
    # for each layer added was n_layers**2 / 2 calls a copy: minutes for a 1 MB config.json
    # of 20,000 layers
    assert len(calls) <= 10 * (n_layers + 3)
