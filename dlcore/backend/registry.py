"""Registering plain Python functions as kernel code for the CPU and for CUDA.

A kernel function is written once, in plain Python on scalars and array views. Registered here,
it runs three ways from the same source: NumPy code calls it directly (the reference backend
passes arrays), Numba compiles it into the CPU kernels, and
:func:`dlcore.backend.cuda.device_function` compiles a device twin of it for ``numba.cuda``
kernels. Two kinds exist:

* :func:`shared`: a small piece of scalar maths (Philox, a sigmoid, a softmax's sums), inlined
  into every CPU kernel that calls it, so that it costs no call per element;
* :func:`body`: a kernel body, ``body(row, first, last, *args)`` or ``body(first, last, *args)``,
  that a backend's ``launch_rows`` / ``launch_1d`` runs over rows or chunks (see
  :mod:`dlcore.backend.kernel_backend`).

:func:`body` functions are compiled for the CPU once per argument types, by a dispatcher of
their own that the loops call: Numba compiles an overload's implementation once per argument
types *and per compile flags of its caller*, so a body run by the serial and the parallel loops
and by a product's epilogue was compiled, with every helper inlined into it, three to five times
in every process with a cold kernel cache. The helpers a body calls (:func:`called`) are now
compiled under the body's flags alone, once per argument types too. Measured from an empty
cache on a 2-core Zen 3, minimum CPU seconds of two alternating runs: a small Dense network's
first fits 33.4 -> 28.6 s; a small convolutional network's first step unchanged (39.8 and
39.9 s: its time is in the convolution kernels). The bodies' dispatchers are cached on disk as
the kernels are: a process compiling a new kernel around a body that another process compiled
loads the body rather than compiling it again. Not taken: calling the activation loops
(``_activation_span``) rather than inlining them into each body saved 5 s more on the
convolutional network but cost each Dense layer's activation pass about 1.5 us at 32 x 500
units (11.5-12.1 -> 13.1-13.4 us a launch), and forwarding through functions that Numba
inlines cost more than it saved (Numba types an inlined function again at every call site:
41.8 s on the same convolution).

Every registered function is kept in :data:`KERNEL_FUNCTIONS`, which the CPU backend's cache
fingerprint and the CUDA backend's device twins follow from one function to those it calls.
"""
import inspect

from numba import njit
from numba.extending import overload

# Every function registered below, for dlcore.backend.cuda to make device twins of.
KERNEL_FUNCTIONS = set()
# {registered function: what the CPU kernels run instead}, for the CPU cache's fingerprint.
CPU_IMPLEMENTATIONS = {}
# {body: the numba.njit dispatcher that the CPU kernels call}
CPU_DISPATCHERS = {}


# CPU kernels use NumPy's error model: a division by zero gives inf, not a Python exception,
# so that no per-element zero test stops the compiler from vectorising a loop.
CPU_JIT_OPTIONS = {"error_model": "numpy"}


def register_for_kernels(function, inline, cpu_implementation=None, own_dispatcher=False):
    """Make ``function`` callable from NumPy, ``numba.njit`` and ``numba.cuda.jit`` code.

    Plain Python callers (the reference backend passes NumPy arrays) just call it. For the CPU
    it is registered with Numba; ``inline="always"`` inlines it at Numba's IR level into every
    caller, so a kernel body costs no call per element. ``cpu_implementation`` replaces it in
    the CPU kernels only (the same function, computed in a way the CPU vectorises). CUDA
    kernels call device twins that :func:`dlcore.backend.cuda.device_function` compiles from
    the same source: the CPU's inlining records typed IR on the registration, which a CUDA
    compilation in the same process would otherwise pick up and fail to type.
    ``own_dispatcher``: the CPU kernels call a ``numba.njit`` dispatcher of it, compiled once per
    argument types whatever the caller's flags, through a one-line function of the same
    parameters (which the CPU compiler inlines into the caller's machine code).
    """
    implementation = function if cpu_implementation is None else cpu_implementation
    if own_dispatcher:
        # fastmath stated, or the first caller's would be inherited by every later one; cached
        # on disk, so that a process compiling a new kernel around a body loads the body
        CPU_DISPATCHERS[function] = njit(fastmath=False, cache=True,
                                         **CPU_JIT_OPTIONS)(implementation)
        implementation = _forwarding_to(CPU_DISPATCHERS[function], function)
    overload(function, target="cpu", inline=inline, strict=False,
             jit_options=CPU_JIT_OPTIONS)(lambda *args, **kwargs: implementation)
    KERNEL_FUNCTIONS.add(function)
    if cpu_implementation is not None:
        CPU_IMPLEMENTATIONS[function] = cpu_implementation
    return function


def shared(function=None, *, cpu_implementation=None):
    """A small piece of maths shared by every backend, inlined into the CPU kernels."""
    if function is None:
        return lambda f: register_for_kernels(f, "always", cpu_implementation)
    return register_for_kernels(function, inline="always")


def called(function):
    """A piece of scalar maths called, not inlined: for rarely taken branches of the kernels
    (the less common activations), whose code inlined would be compiled into every kernel that
    has them."""
    return register_for_kernels(function, inline="never")


def body(function):
    """Register a kernel body. Bodies are called (not inlined: Numba cannot inline a call made
    through ``*args``), once per row or chunk on the CPU, so the call costs nothing that matters;
    the helpers they call are inlined."""
    return register_for_kernels(function, inline="never", own_dispatcher=True)


def _forwarding_to(dispatcher, function):
    """A function of ``function``'s parameters that returns ``dispatcher`` called with them
    (an overload's implementation must be a plain function, not a dispatcher)."""
    names = ", ".join(inspect.signature(function).parameters)
    namespace = {"dispatcher": dispatcher}
    exec(f"def {function.__name__}({names}):\n    return dispatcher({names})\n", namespace)
    return namespace[function.__name__]
