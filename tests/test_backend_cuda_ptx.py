"""The CUDA kernels compile for a real GPU (PTX for sm_80), even on a machine without one.

The simulator runs kernels as Python, so it cannot catch a kernel that Numba cannot type or
lower for the device. This test does: in a fresh process without the simulator, a backend that
runs every operation on the CPU also compiles, for each launch, the real CUDA kernel for the
argument types of that launch (numba-cuda's NVVM, shipped by the ``cuda`` extra's toolkit
wheels). It drives every backend operation and a CD training step through it.
"""
import textwrap

import pytest

from conftest import ptx_compile_report

# one worker runs the module, so that its compiling process (the fixture below) runs once
pytestmark = pytest.mark.xdist_group("backend_cuda_ptx")

SCRIPT = textwrap.dedent(r'''
    import os
    os.environ["NUMBA_ENABLE_CUDASIM"] = "0"
    import numpy as np
    import numba.cuda.dispatcher as dispatcher
    from numba import cuda, typeof, types

    class Device:                      # no GPU needed to compile: say which one to target
        compute_capability = (8, 0)
    dispatcher.get_current_device = lambda: Device()

    try:
        cuda.compile_ptx(lambda out: None, (types.float32[:],), cc=(8, 0))
    except Exception as error:          # only a missing NVVM skips; anything else fails
        if "nvvm" not in str(error).lower():
            raise
        print("NO-NVVM", type(error).__name__, error)
        raise SystemExit(0)

    from dlcore.backend import cuda as cuda_backend
    from dlcore.backend.cpu import CPUBackend
    from dlcore.backend.kernel_backend import KernelBackend
    from dlcore.rbm.trainer import CDSettings, ContrastiveDivergence

    compiled = {}

    def compile_once(name, function, signature):
        if (name, signature) not in compiled:
            ptx, _ = cuda.compile_ptx(function, signature, cc=(8, 0))
            compiled[(name, signature)] = len(ptx)

    def compile_launch(body, launch):
        # typed as numba-cuda's dispatcher types a launch: one type per argument it is given
        kernel, arguments = launch
        compile_once(body.__name__, kernel.py_func,
                     tuple(kernel.typeof_pyval(a) for a in arguments))

    class CompilingBackend(CPUBackend):
        """Runs on the CPU; compiles the CUDA twin of every launch."""
        def launch_rows(self, body, n_rows, n_units, *args, work=None):
            compile_launch(body, cuda_backend.rows_launch(body, n_rows, n_units, args))
            super().launch_rows(body, n_rows, n_units, *args, work=work)

        def launch_1d(self, body, n, *args, work=None):
            compile_launch(body, cuda_backend.elements_launch(body, n, args))
            super().launch_1d(body, n, *args, work=work)

        # as the CUDA backend does it: one launch_1d per tensor (the CPU makes them one), and
        # a CD update's momentum and bias steps as one launch
        launch_tensors = KernelBackend.launch_tensors
        fuses_parameter_steps = True

        def gemm(self, a, b, out, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
            arguments = (a, b, out, bool(trans_a), bool(trans_b), np.float32(alpha),
                         np.float32(beta))
            compile_once("tiled_gemm", cuda_backend.tiled_gemm.py_func,
                         tuple(typeof(x) for x in arguments))
            super().gemm(a, b, out, trans_a, trans_b, alpha, beta)

    backend = CompilingBackend()
    generator = np.random.default_rng(0)
    f32 = lambda *shape: generator.random(shape, dtype=np.float32)
    with backend.compute():
        backend.sigmoid_bernoulli(f32(3, 9), f32(9), f32(3, 9), 1, 16, 0)
        backend.sigmoid_bernoulli(f32(3, 9), f32(9), None, 1, 16, 0)
        backend.gaussian_sample(f32(3, 9), f32(9), f32(9), f32(3, 9), 1, 17, 0)
        backend.gather_rows(f32(10, 4), np.array([3, 1]), f32(2, 4))
        backend.momentum_step(f32(5, 4), f32(5, 4), 0.1)
        backend.bias_step(f32(4), f32(4), f32(3, 4), f32(3, 4), 0.1, 0.5)
        backend.sparsity_step(f32(3, 4), f32(4), f32(4), 0.9, 0.1, 0.05)
        backend.accumulate_squared_error(f32(3, 4), f32(3, 4), f32(4))
        settings = CDSettings(learning_rate=0.1, cd_k=2, persistent=True, momentum=0.5,
                              weight_decay=1e-4, sparsity_target=0.1, sparsity_cost=0.1,
                              sparsity_decay=0.9, sample_visible=True, batch_size=4, seed=3)
        parameters = {"W": f32(6, 5) * 0.01, "visible_bias": f32(6), "hidden_bias": f32(5)}
        state = {"velocity_W": np.zeros((6, 5), np.float32),
                 "velocity_visible_bias": np.zeros(6, np.float32),
                 "velocity_hidden_bias": np.zeros(5, np.float32),
                 "sparsity_mean": np.zeros(5, np.float32), "persistent_chain": None}
        trainer = ContrastiveDivergence(backend, parameters, state, settings)
        trainer.epoch(backend.asarray((f32(12, 6) < 0.5).astype(np.float32)), np.arange(12), 0)
    for (name, signature), size in sorted(compiled.items(), key=lambda item: item[0][0]):
        print("COMPILED", name, size)
''')


@pytest.fixture(scope="module")
def compile_report():
    return ptx_compile_report(SCRIPT)


@pytest.mark.slow
@pytest.mark.parametrize("kernel", [
    "sigmoid_bernoulli_span", "gaussian_sample_span", "gather_rows_span", "momentum_step_span",
    "bias_step_span", "sparsity_step_span", "squared_error_span", "tiled_gemm",
    "momentum_and_bias_steps_span"])
def test_every_cuda_kernel_compiles_to_ptx_for_a_real_gpu(compile_report, kernel):
    assert f"COMPILED {kernel} " in compile_report
