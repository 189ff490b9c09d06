"""exp for the CPU kernels in plain arithmetic, so that the compiler can vectorise it.

Numba calls the C library's ``expf`` once per element; the loop around it cannot use the CPU's
vector units, and the sigmoids of an RBM epoch (about 10^8 of them) spend most of their time
there. :func:`exp_float32` computes the same function from multiplications, additions and one
bit-level conversion, all of which LLVM vectorises (measured: 0.85 instead of 3.5 ns per
sigmoid), to within 1.5e-7 relative error (float32 has 6e-8):

    exp(x) = 2^n exp(r),   n = round(x / ln 2),   r = x - n ln 2  in [-ln 2 / 2, ln 2 / 2]

with ln 2 split in two constants so that r is exact (Cody & Waite), exp(r) by the degree-6
polynomial of the Cephes library's ``expf`` (S. L. Moshier), and 2^n written straight into the
exponent bits of a float32. Arguments are clamped to [-87.3, 88.3], where float32's exp stays
normal. CPU only: CUDA has a fast hardware exp, and the simulator runs plain Python.

The polynomials are evaluated by fused multiply-adds (:func:`multiply_add`) where the CPU has
them: a sigmoid of 39,200 float32s 18 -> 12 us on one core of an Intel Xeon (AVX-512), the error
unchanged (8.5e-8 relative for exp, 1.4e-7 for tanh, measured over their ranges).

The kernels call :func:`exp_vectorised`, which takes that arithmetic for a float32 argument only:
its rounding step rounds in float32 arithmetic alone, and a float64 argument (a network built in
float64) got a wrong exp, and wrong sigmoids, from it.

tanh likewise (:func:`tanh_float32`, the Cephes library's ``tanhf``): libm's ``tanhf`` per
element made a tanh LeNet-5's training epoch twice as long as a ReLU one. For |x| >= 0.625

    tanh(x) = sign(x) (1 - 2 / (exp(2 |x|) + 1)),

below it an odd polynomial of degree 11, both computed and one chosen without a branch, to
within 2.5e-7 relative error.
"""
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

LOG2_E = np.float32(1.44269504088896341)
LN2_HIGH = np.float32(0.693359375)          # exact in float32: r = x - n ln2 loses nothing
LN2_LOW = np.float32(-2.12194440e-4)
ROUNDING = np.float32(12582912.0)           # 1.5 * 2^23: adding it rounds to an integer
LOWEST, HIGHEST = np.float32(-87.3), np.float32(88.3)
P0, P1, P2, P3, P4, P5 = (np.float32(c) for c in (
    1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
    5.0000001201e-1))
ONE = np.float32(1.0)


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret an int32 as the float32 with the same bits (no conversion)."""
    def codegen(context, builder, signature, arguments):
        return builder.bitcast(arguments[0], ir.FloatType())
    return types.float32(types.int32), codegen


@intrinsic
def multiply_add(typingctx, a, b, c):
    """a * b + c for float32s, as one fused multiply-add where the CPU has one (LLVM's
    ``fmuladd``: one rounding instead of two there, the two operations elsewhere)."""
    def codegen(context, builder, signature, arguments):
        single = ir.FloatType()
        fmuladd = builder.module.declare_intrinsic(
            "llvm.fmuladd", [single], ir.FunctionType(single, [single] * 3))
        return builder.call(fmuladd, arguments)
    return types.float32(types.float32, types.float32, types.float32), codegen


@njit(inline="always", error_model="numpy")
def exp_float32(x):
    """exp(x) for a float32 ``x``, in vectorisable arithmetic (see the module docstring)."""
    x = min(max(x, LOWEST), HIGHEST)
    n = multiply_add(x, LOG2_E, ROUNDING) - ROUNDING
    r = multiply_add(n, -LN2_LOW, multiply_add(n, -LN2_HIGH, x))
    polynomial = multiply_add(multiply_add(multiply_add(multiply_add(multiply_add(
        P0, r, P1), r, P2), r, P3), r, P4), r, P5)
    exp_r = multiply_add(polynomial, r * r, r) + ONE
    return exp_r * _float32_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))


def _float32_or_libm(function, float32_version, libm_version):
    """Compile the plain function ``function`` (x) as ``float32_version`` for a float32 ``x``
    and as ``libm_version`` for any other (the branch is taken by the argument's type)."""
    @overload(function, inline="always", jit_options={"error_model": "numpy"})
    def _implementation(x):
        if isinstance(x, types.Float) and x.bitwidth == 32:
            return lambda x: float32_version(x)
        return lambda x: libm_version(x)


def exp_vectorised(x):
    """exp(x) as the CPU kernels compute it: :func:`exp_float32` for a float32 ``x``, libm's
    exp for a float64 one."""
    return exp_float32(x) if isinstance(x, np.float32) else math.exp(x)


_float32_or_libm(exp_vectorised, exp_float32, math.exp)


#: tanh's two regions (see the module docstring) and the coefficients of its polynomial
TANH_SMALL = np.float32(0.625)
T0, T1, T2, T3, T4 = (np.float32(c) for c in (
    -5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1,
    -3.33332819422e-1))
TWO = np.float32(2.0)


@njit(inline="always", error_model="numpy")
def tanh_float32(x):
    """tanh(x) for a float32 ``x``, in vectorisable arithmetic (see the module docstring);
    NaN stays NaN (it takes the polynomial), +-inf gives +-1."""
    magnitude = abs(x)
    large = ONE - TWO / (exp_float32(magnitude + magnitude) + ONE)
    square = x * x
    polynomial = multiply_add(multiply_add(multiply_add(multiply_add(
        T0, square, T1), square, T2), square, T3), square, T4)
    small = multiply_add(polynomial * square, x, x)
    signed_large = large if x > 0 else -large
    return signed_large if magnitude >= TANH_SMALL else small


def tanh_vectorised(x):
    """tanh(x) as the CPU kernels compute it: :func:`tanh_float32` for a float32 ``x``,
    libm's tanh for a float64 one."""
    return tanh_float32(x) if isinstance(x, np.float32) else math.tanh(x)


_float32_or_libm(tanh_vectorised, tanh_float32, math.tanh)


@njit(error_model="numpy")
def elementwise(function, x, out):
    """``out[i] = function(x[i])`` for 1-D float32 arrays and one of this module's float32
    functions (for the tests)."""
    for i in range(x.shape[0]):
        out[i] = function(x[i])
