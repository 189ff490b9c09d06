"""Parameter counts and FLOPs of ``Sequential.summary``, checked against hand arithmetic.

Oracles: the LeNet homework of lecture "Convolutional Neural Networks" (2019) ("How many
parameters?") worked by hand; lecture "Convolutional neural networks" (2016), "Convolutional vs.
non-convolutional": 11,665 weights; lecture "Supervised learning": a conv layer costs
M K^2 N (D - K + 1)^2 multiply-adds (times 2 FLOPs)."""
import numpy as np

import dlcore
from dlcore.layers import Conv2D, Dense, Flatten, MaxPool2D, dense_as_conv


def test_lenet5_parameter_counts_are_the_hand_computed_ones():
    summary = dlcore.models.lenet5().summary(print_fn=None)
    params = [row.params for row in summary.rows if row.params]
    assert params == [6 * 25 + 6, 16 * 6 * 25 + 16, 400 * 120 + 120, 120 * 84 + 84,
                      84 * 10 + 10]
    assert summary.total_params == 61_706


def test_lenet5_flops_are_two_per_multiply_add():
    summary = dlcore.models.lenet5().summary(print_fn=None)
    flops = [row.flops for row in summary.rows if row.flops]
    assert flops == [2 * 1 * 25 * 6 * 28 * 28, 2 * 6 * 25 * 16 * 10 * 10, 2 * 400 * 120,
                     2 * 120 * 84, 2 * 84 * 10]
    assert summary.total_flops == 833_040


def test_lenet5_output_shapes_follow_the_size_formula():
    shapes = [row.output_shape for row in dlcore.models.lenet5().summary(print_fn=None).rows]
    assert shapes[:5] == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (400,)]
    assert shapes[-1] == (10,)


def test_lenet5_on_32x32_is_the_papers_geometry_without_padding():
    """LeNet-5's own input is 32x32 (the homework's figure: C1 6@28x28 ... S4 16@5x5, 61,706
    parameters); c1 kept MNIST's padding 2 there, 6@32x32 ... 16@6x6 and 82,826 parameters.
    A 28x28 input is padded 2 to the same geometry."""
    for size, padding in ((32, 0), (28, 2)):
        model = dlcore.models.lenet5(input_shape=(1, size, size))
        shapes = [row.output_shape for row in model.summary(print_fn=None).rows]
        assert shapes[:5] == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (400,)]
        assert model.count_params() == 61_706 and model.get_layer("c1").padding == padding


def test_the_2016_lecture_example_has_11665_weights_without_biases():
    summary = dlcore.models.convnet_2016().summary(print_fn=None)
    assert summary.total_weights == 225 + 3600 + 7840 == 11_665
    assert summary.total_biases == 9 + 16 + 10


def test_the_2016_lecture_example_signal_sizes_are_784_7056_3136():
    rows = dlcore.models.convnet_2016().summary(print_fn=None).rows
    sizes = [int(np.prod(row.output_shape)) for row in rows]
    assert sizes[0] == 28 * 28 * 9 == 7056 and sizes[2] == 14 * 14 * 16 == 3136


def test_the_2016_lectures_fully_connected_network_has_210240_weights():
    """Lecture "Convolutional neural networks" (2016), "Convolutional vs. non-convolutional":
    the MNIST FFNN 784-225-144-10 against the convnet's 11,665 (docs/networks.md)."""
    summary = dlcore.models.mlp(input_shape=(784,), hidden=(225, 144)).summary(print_fn=None)
    assert summary.total_weights == 176_400 + 32_400 + 1_440 == 210_240
    assert [int(np.prod(row.output_shape)) for row in summary.rows] == [225, 144, 10]


def test_summary_prints_a_table_with_the_totals(capsys):
    dlcore.models.lenet5().summary()
    out = capsys.readouterr().out
    assert "Total parameters: 61,706" in out and "833,040" in out and "(None, 6, 28, 28)" in out


def test_count_params_agrees_with_the_summary():
    model = dlcore.models.mlp(input_shape=(784,), hidden=(100,))
    assert model.count_params() == 784 * 100 + 100 + 100 * 10 + 10


def test_dense_equals_the_conv_whose_kernel_covers_the_input(random_state):
    """Lecture "Supervised learning": "Viewing fully connected layers as convolutional
    layers": identical outputs."""
    dense = Dense(7, activation="relu")
    dense.build((3 * 4 * 5,), backend="reference", seed=3)
    conv = dense_as_conv(dense, (3, 4, 5))
    x = random_state.standard_normal((6, 3, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(conv(x).reshape(6, 7), dense(x.reshape(6, -1)), rtol=1e-5,
                               atol=1e-6)


def test_dense_as_conv_slides_the_classifier_over_a_larger_input(random_state):
    dense = Dense(2)
    dense.build((1 * 3 * 3,), backend="reference", seed=1)
    conv = dense_as_conv(dense, (1, 3, 3))
    big = random_state.standard_normal((1, 1, 5, 5)).astype(np.float32)
    slid = Conv2D(2, 3, kernel_initializer=conv.get_weights()[0],
                  bias_initializer=conv.get_weights()[1])(big)
    np.testing.assert_allclose(slid[0, :, 1, 2], dense(big[:, :, 1:4, 2:5].reshape(1, -1))[0],
                               rtol=1e-5, atol=1e-6)


def test_unnamed_layers_get_unique_keras_like_names():
    model = dlcore.Sequential([Conv2D(2, 3), MaxPool2D(2), Conv2D(2, 2), Flatten(), Dense(3)],
                              input_shape=(1, 8, 8))
    assert [layer.name for layer in model.layers] == ["conv2d", "max_pooling2d", "conv2d_1",
                                                      "flatten", "dense"]


def test_a_notebook_shows_a_printed_summary_once(ipython_stand_in, capsys):
    """model.summary() as a cell's last line printed the table, then IPython displayed the
    returned Summary(...) under it (Keras's returns None, which shows nothing). Now the cell
    that printed it displays nothing more; print_fn=None's, or a later cell's, shows the table
    (IPython stood in for: conftest's ipython_stand_in)."""
    shell, shown = ipython_stand_in
    model = dlcore.Sequential([Dense(2)], input_shape=(3,), backend="reference")
    model.build()
    printed = model.summary()
    table = capsys.readouterr().out
    assert "dense (Dense)" in table
    printed._ipython_display_()
    assert shown == []
    model.summary(print_fn=None)._ipython_display_()
    shell.execution_count = 8   # the summary kept, displayed in a later cell
    printed._ipython_display_()
    assert shown == [table.rstrip("\n")] * 2


def test_print_of_summary_shows_the_table_once_as_keras_does(capsys):
    """print(model.summary()) printed the table twice: summary() printed it and returned a
    Summary whose str() was the table again. Keras's summary() prints and returns None; here
    the numbers stay on the returned Summary, whose str() after printing is its repr's line."""
    from dlcore.layers import Input
    inputs = Input((3,))
    models = [dlcore.Sequential([Dense(2)], input_shape=(3,), backend="reference"),
              dlcore.Model(inputs, Dense(2)(inputs), backend="reference")]
    for model in models:
        model.build()
        print(model.summary())
        out = capsys.readouterr().out
        table = model.summary(print_fn=None)
        assert out.count("Total parameters: 8") == 1 and out.count("(Dense)") == 1
        assert out == f"{table}\n{table!r}\n"
        assert model.summary(print_fn=None).table == str(table)   # print_fn=None: the table
        printed = model.summary(print_fn=lambda text: None)
        assert printed.table == str(table) and str(printed) == repr(printed)
        assert printed.total_params == 8
