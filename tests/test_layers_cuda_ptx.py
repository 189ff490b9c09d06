"""The layers', losses' and optimisers' CUDA kernels compile for a real GPU (PTX for sm_80),
even on a machine without one.

The simulator runs kernels as Python and cannot catch a body that numba-cuda cannot type. Here,
in a fresh process without the simulator, the ``cpu`` backend is replaced by one that also
compiles the CUDA twin of every launch for the argument types of that launch (the technique of
test_backend_cuda_ptx.py) and runs nothing on the CPU (the numbers are garbage; only the types
matter); every launch is sent to it (no serial shortcuts, batched convolutions as on a GPU),
and a network with every layer type goes through fit with every loss and optimiser."""
import textwrap

import pytest

from conftest import ptx_compile_report

# one worker runs the module, so that its compiling process (the fixture below) runs once
pytestmark = pytest.mark.xdist_group("layers_cuda_ptx")

SCRIPT = textwrap.dedent(r'''
    import os
    os.environ["NUMBA_ENABLE_CUDASIM"] = "0"
    import numpy as np
    import numba.cuda.dispatcher as dispatcher
    from numba import cuda, typeof, types

    class Device:
        compute_capability = (8, 0)
    dispatcher.get_current_device = lambda: Device()
    try:
        cuda.compile_ptx(lambda out: None, (types.float32[:],), cc=(8, 0))
    except Exception as error:          # only a missing NVVM skips; anything else fails
        if "nvvm" not in str(error).lower():
            raise
        print("NO-NVVM", type(error).__name__, error)
        raise SystemExit(0)

    import dlcore
    import dlcore.backend as backends
    from dlcore.backend import cuda as cuda_backend
    from dlcore.backend.cpu import CPUBackend
    from dlcore.backend.kernel_backend import KernelBackend
    from dlcore.layers import *

    compiled = set()

    def compile_once(body, launch):
        # typed as numba-cuda's dispatcher types a launch: one type per argument it is given
        kernel, arguments = launch
        signature = tuple(kernel.typeof_pyval(a) for a in arguments)
        if (body.__name__, signature) not in compiled:
            cuda.compile_ptx(kernel.py_func, signature, cc=(8, 0))
            compiled.add((body.__name__, signature))

    class CompilingBackend(CPUBackend):
        """Compiles the CUDA kernel of every launch and runs nothing: compiling only needs the
        argument types. Every launch reaches it (no serial shortcut for small work)."""
        def launch_rows(self, body, n_rows, n_units, *args, work=None):
            compile_once(body, cuda_backend.rows_launch(body, n_rows, n_units, args))

        def launch_1d(self, body, n, *args, work=None):
            compile_once(body, cuda_backend.elements_launch(body, n, args))

        # as the CUDA backend does it: one launch_1d per tensor (the CPU makes them one)
        launch_tensors = KernelBackend.launch_tensors

        def gemm(self, a, b, out, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
            out[...] = alpha * ((a.T if trans_a else a) @ (b.T if trans_b else b)) + beta * out

        def gather_rows(self, source, indices, out, first=0):
            out[...] = source[indices[first:first + len(out)]]

        def zeros(self, shape, dtype=np.float32):
            return np.zeros(shape, dtype=dtype)

    backends._instances["cpu"] = CompilingBackend()
    from dlcore.layers import cpu_convolution   # the batched convolutions of CUDA, not the CPU's
    cpu_convolution.CPU_SAMPLE_KERNELS = False
    rs = np.random.default_rng(0)
    x = rs.random((6, 1, 6, 6), dtype=np.float32)
    for loss, last, optimizer in [("cross_entropy", "softmax", "sgd"),
                                  ("cross_entropy", "softmax", "adam"),
                                  ("binary_cross_entropy", "sigmoid", "rmsprop"),
                                  ("binary_cross_entropy", "sigmoid", "adagrad"),
                                  ("mse", "linear", dlcore.optimizers.SGD(0.1, momentum=0.9,
                                                                          global_clipnorm=1))]:
        model = dlcore.Sequential([
            ImageAugmentation(1, horizontal_flip=True, max_rotation=5, max_zoom=0.1),
            Rescaling(0.5, 0.1),
            Conv2D(2, 3, padding=1, activation="relu", kernel_constraint="max_norm"),
            BatchNormalization(), LayerNormalization(), LeakyReLU(0.1), MaxPool2D(2),
            Conv2D(2, 2, activation="softmax"), AvgPool2D(1), L2Pool2D(1),
            MaxPool2D(2, stride=1),
            UpSampling2D((2, 1)), Conv2DTranspose(2, 2, strides=(1, 2), padding="same",
                                                  activation="relu"),
            UpSampling2D(2, interpolation="bilinear"), MaxPool2D(4),
            Flatten(), GaussianNoise(0.1),
            Dense(4, kernel_regularizer=dlcore.regularizers.L1L2(1e-3, 1e-3), activation="gelu"),
            Activation("mish"), Tanh(),
            Sigmoid(), ReLU(), Dropout(0.2), Dense(3), Activation(last)],
            input_shape=(1, 6, 6), backend="cpu")
        model.compile(loss, optimizer, ["accuracy"])
        model.fit(x, rs.integers(0, 3, 6), epochs=1, batch_size=3, verbose=0)
    model.predict(x, mc_dropout=2)       # Monte Carlo dropout's mask shared by the batch
    # a network fuses each cross-entropy with its activation (and refuses it on other outputs):
    # the losses of outputs that are already probabilities are reached by calling them directly
    probabilities = np.full((3, 3), 1 / 3, np.float32)
    for loss in (dlcore.losses.CrossEntropy(), dlcore.losses.BinaryCrossEntropy(),
                 dlcore.losses.CrossEntropy(label_smoothing=0.1)):
        loss.loss_and_gradient(backends._instances["cpu"], probabilities,
                               np.eye(3, dtype=np.float32), np.zeros((3, 3), np.float32),
                               np.zeros(3, np.float32), np.zeros(3, np.float32), False)
    # distillation, and adversarial training's FGSM examples and gradient blend
    small = dlcore.Sequential([Flatten(), Dense(3, activation="softmax")],
                              input_shape=(1, 6, 6), backend="cpu")
    small.compile(dlcore.losses.Distillation(2.0), "sgd")
    small.fit(x, np.full((6, 3), 1 / 3, np.float32), epochs=1, batch_size=3, verbose=0,
              adversarial=0.1)
    # a model with two outputs, each output's own loss summed on the device
    inputs = dlcore.Input((4,))
    two = dlcore.Model(inputs, [Dense(3, activation="softmax")(inputs), Dense(1)(inputs)],
                       backend="cpu")
    two.compile(["cross_entropy", "mse"], "sgd", loss_weights=[1.0, 0.5])
    two.fit(rs.random((6, 4), dtype=np.float32), [rs.integers(0, 3, 6),
            rs.random((6, 1), dtype=np.float32)], epochs=1, batch_size=3, verbose=0)
    # the element-wise merges: the running extreme and the gradient to the chosen input
    first, second = Dense(3)(inputs), Dense(3)(inputs)
    merged = dlcore.Model(inputs, Dense(2)(multiply([
        average([first, second]), subtract([maximum([first, second]),
                                            minimum([first, second])])])), backend="cpu")
    merged.compile("mse", "sgd")
    merged.fit(rs.random((6, 4), dtype=np.float32), rs.random((6, 2), dtype=np.float32),
               epochs=1, batch_size=3, verbose=0)
    for name in sorted({name for name, _ in compiled}):
        print("COMPILED", name)
''')


@pytest.fixture(scope="module")
def compile_report():
    return ptx_compile_report(SCRIPT)


@pytest.mark.slow
@pytest.mark.parametrize("kernel", [
    "bias_activation_rows", "unit_bias_activation_rows", "softmax_rows",
    "activation_gradient_rows", "bias_gradient_span", "im2col_rows",
    "col2im_rows", "pool_rows", "pool_gradient_rows", "pool_gradient_tiles_rows", "dropout_rows",
    "scale_columns_rows", "multiply_span", "upsample_nearest_rows",
    "upsample_nearest_gradient_rows",
    "upsample_bilinear_rows", "upsample_bilinear_gradient_rows",
    "augment_rows", "gaussian_noise_rows", "softmax_cross_entropy_rows",
    "probability_cross_entropy_rows", "sigmoid_binary_cross_entropy_rows",
    "probability_binary_cross_entropy_rows", "squared_error_rows", "accumulate_batch",
    "sgd_span", "adagrad_span", "rmsprop_span", "adam_span", "squared_norm_blocks",
    "max_norm_units", "distillation_rows", "fgsm_span", "axpby_span",
    "input_activation_gradient_span", "leaky_relu_span", "leaky_relu_gradient_span",
    "rescale_span", "channel_moments_span", "batch_norm_rows", "channel_gradient_sums_span",
    "batch_norm_gradient_rows", "layer_norm_rows", "layer_norm_gradient_rows",
    "layer_norm_affine_gradient_span", "accumulate_output_losses", "place_columns_rows",
    "smooth_targets_span", "extremum_span", "chosen_gradient_span", "copy_span"])
def test_every_network_cuda_kernel_compiles_to_ptx_for_a_real_gpu(compile_report, kernel):
    assert f"COMPILED {kernel}" in compile_report
