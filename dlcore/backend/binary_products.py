"""Matrix products whose one operand is a sample of binary units: sums of selected rows.

A Bernoulli sample ``x`` (b, k) holds only 0 and 1, so its product with a matrix is, row by
row, the sum of the rows of that matrix which the row's ones select:

    (x W)[i, :] = sum_{l : x[i, l] = 1} W[l, :]                         (b, n), W (k, n)
    (x' q)[l, :] = sum_{i : x[i, l] = 1} q[i, :]                        (k, n), q (b, n)
    (h W')[i, :] = sum_{j : h[i, j] = 1} W[:, j]                        (b, k), h (b, n)
    (x1' h)[r, j] = sum_{i : h[i, j] = 1} x1[i, r]                      (k, n), x1 (b, k)

the same sums with no multiplications and, at a sample's density p, p times the additions.
A CD-1 update makes four such products a batch (lecture "Deep Neural Networks", slide "RBM
Weight Update": h1 and x2 are the slide's 0/1 samples): P(x2 | h1) from h1 W', Q(h2 | x2)
from x2 W, and the statistics x1' h1 and x2' Q(h2 | x2). Measured on an AMD EPYC (Zen 4,
AVX-512), one thread, batch 100, 784 x 500 weights, samples of density 0.29 (a Fashion-MNIST
reconstruction's): OpenBLAS's SGEMM 780 us a product; the sums x2 W 390 us, h1 W' 330 us,
x2' q2 400 us.

The sums are taken 64 columns at a time in four 16-lane vectors that stay in registers while
the selected rows stream past (:func:`selected_sum`; Numba's own loops kept the partial sums
in memory and reached about two thirds of that speed), over tiles of TILE_ROWS rows of the
summed matrix that stay in level-1 cache. Each output element is the sum of its selected rows
in the order of their indices (tile by tile), whatever the number of threads or blocks, so a
seed gives the same numbers on 1 or more threads; they differ from a BLAS product's in the
last bits.

Lists: the ones of a sample are listed once, by rows and by columns (:func:`list_ones`), and
serve all of its products: row i's from ``i * (width + 1)`` to ``bounds[i, -1]``
(exclusive), so the rows are listed in parallel with no prefix sum; ``bounds[i]`` also says
where each tile of TILE_ROWS begins.
"""
import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils
from numba.core import types as numba_types
from numba.extending import intrinsic

#: Float32 lanes of one vector: AVX-512's width (where the CPU has only AVX2, LLVM splits each
#: vector into two)
LANES = 16
#: Columns summed at once by :func:`selected_sum`: four vectors, whose partial sums stay in
#: registers while the selected rows stream past (four independent additions a row, as many as
#: a core issues while one completes)
BLOCK_COLUMNS = 4 * LANES
#: Rows of the summed matrix per tile: a tile of BLOCK_COLUMNS columns of that many rows
#: (32 KB) stays in a core's level-1 cache, or nearly, while every row of the sample sums from
#: it (measured on Zen 4, 32 KB: tiles of 64, 96, 128 and 192 rows summed x2 W in 412, 393,
#: 396 and 472 us, and x2' q2, whose 100 rows are then one tile, in 400, 402, 375, 387 us)
TILE_ROWS = 128
_MASK = ir.VectorType(ir.IntType(1), LANES)
#: The float types the intrinsics take (float64 only so that kernels shared with float64
#: networks type: the backend sums float32 samples only)
_FLOATS = (numba_types.float32, numba_types.float64)


def _vector_of(context, dtype):
    """(the LLVM vector of LANES ``dtype``s, its element size in bytes, its intrinsics' type
    suffix)."""
    element = context.get_value_type(dtype)
    return ir.VectorType(element, LANES), dtype.bitwidth // 8, f"v{LANES}f{dtype.bitwidth}"


def _sum_of_selected_rows(loads_masked, stores_masked):
    """The intrinsic ``(matrix, indices, start, stop, column, first_lane, last_lane, out,
    offset, scale, accumulate)``: with s[c] = sum_{t = start .. stop-1} matrix[indices[t],
    column + c] (added in the order of t),

        out[offset + c] = scale s[c]  (+ out[offset + c] where ``accumulate``)

    for every c < BLOCK_COLUMNS, or, where ``stores_masked``, for first_lane <= c < last_lane
    only (out's other elements neither read nor written). Where ``loads_masked`` too, matrix's
    columns outside those lanes are not read either (a matrix narrower than a block); else all
    BLOCK_COLUMNS columns from ``column`` are. ``matrix`` (rows, n) float32 (or float64) with
    contiguous rows, ``indices`` int32, ``out`` 1-D of matrix's type, contiguous, ``scale`` a
    float (rounded to that type)."""
    def typer(typingctx, matrix, indices, start, stop, column, first_lane, last_lane, out,
              offset, scale, accumulate):
        def codegen(context, builder, signature, values):
            matrix_type, indices_type = signature.args[:2]
            matrix = context.make_array(matrix_type)(context, builder, values[0])
            indices = context.make_array(indices_type)(context, builder, values[1])
            out = context.make_array(signature.args[7])(context, builder, values[7])
            int64, int32 = ir.IntType(64), ir.IntType(32)
            start, stop, column, first_lane, last_lane, offset = (
                context.cast(builder, values[i], signature.args[i], numba_types.int64)
                for i in (2, 3, 4, 5, 6, 8))
            vector, size, suffix = _vector_of(context, matrix_type.dtype)
            scale = context.cast(builder, values[9], signature.args[9], matrix_type.dtype)
            accumulate = context.cast(builder, values[10], signature.args[10],
                                      numba_types.boolean)
            row_bytes = builder.extract_value(matrix.strides, 0)
            first_column = builder.gep(builder.bitcast(matrix.data, ir.IntType(8).as_pointer()),
                                       [builder.mul(column, ir.Constant(int64, size))])
            pointer = vector.as_pointer()
            zero = ir.Constant(vector, None)
            vectors = BLOCK_COLUMNS // LANES

            def spread(value, element_type):
                vector = builder.insert_element(ir.Constant(ir.VectorType(element_type, LANES),
                                                            None), value, ir.Constant(int32, 0))
                return builder.shuffle_vector(vector, vector,
                                              ir.Constant(ir.VectorType(int32, LANES), None))
            if stores_masked:
                firsts, lasts = spread(first_lane, int64), spread(last_lane, int64)
                lanes = [ir.Constant(ir.VectorType(int64, LANES),
                                     [v * LANES + lane for lane in range(LANES)])
                         for v in range(vectors)]
                masks = [builder.and_(builder.icmp_unsigned("<=", firsts, lanes[v]),
                                      builder.icmp_unsigned("<", lanes[v], lasts))
                         for v in range(vectors)]
                masked_load = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(vector, [pointer, int32, _MASK, vector]),
                    f"llvm.masked.load.{suffix}.p0")
                masked_store = cgutils.get_or_insert_function(
                    builder.module,
                    ir.FunctionType(ir.VoidType(), [vector, pointer, int32, _MASK]),
                    f"llvm.masked.store.{suffix}.p0")

            def load(address, v, masked):
                if masked:
                    return builder.call(masked_load,
                                        [address, ir.Constant(int32, size), masks[v], zero])
                return builder.load(address, align=size)

            def vector_at(base, v):
                return builder.bitcast(builder.gep(base, [ir.Constant(int64, size * LANES * v)]),
                                       pointer)

            sums = [cgutils.alloca_once_value(builder, zero) for _ in range(vectors)]
            with cgutils.for_range(builder, builder.sub(stop, start)) as loop:
                position = builder.add(start, loop.index)
                index = builder.sext(builder.load(builder.gep(indices.data, [position])), int64)
                row = builder.gep(first_column, [builder.mul(index, row_bytes)])
                for v, partial in enumerate(sums):
                    value = load(vector_at(row, v), v, loads_masked)
                    builder.store(builder.fadd(builder.load(partial), value), partial)
            scales = spread(scale, vector.element)
            target = builder.bitcast(builder.gep(out.data, [offset]), ir.IntType(8).as_pointer())
            for v, partial in enumerate(sums):
                address = vector_at(target, v)
                total = builder.fmul(builder.load(partial), scales)
                total = builder.fadd(builder.select(accumulate,
                                                    load(address, v, stores_masked), zero),
                                     total)
                if stores_masked:
                    builder.call(masked_store,
                                 [total, address, ir.Constant(int32, size), masks[v]])
                else:
                    builder.store(total, address, align=size)
            return context.get_dummy_value()

        if not (isinstance(matrix, numba_types.Array) and matrix.dtype in _FLOATS
                and isinstance(out, numba_types.Array) and out.dtype == matrix.dtype
                and isinstance(indices, numba_types.Array)
                and indices.dtype == numba_types.int32):
            return None
        arguments = (matrix, indices, start, stop, column, first_lane, last_lane, out, offset,
                     scale, accumulate)
        return numba_types.void(*arguments), codegen
    return typer


_sum_full = intrinsic(_sum_of_selected_rows(False, False))
_sum_stored_lanes = intrinsic(_sum_of_selected_rows(False, True))
_sum_masked = intrinsic(_sum_of_selected_rows(True, True))


@intrinsic
def _transpose_square(typingctx, matrix, row, column, out, out_row, out_column):
    """``out[out_row + c, out_column + r] = matrix[row + r, column + c]`` for r, c < LANES: a
    LANES x LANES square transposed in registers (log2(LANES) rounds of two-vector shuffles;
    element by element, the stores to LANES lines 256 bytes apart keep evicting each other from
    the level-1 cache: measured three times slower). Both 2-D, of one float type, with
    contiguous rows."""
    def codegen(context, builder, signature, values):
        int64, int32 = ir.IntType(64), ir.IntType(32)
        byte = ir.IntType(8).as_pointer()
        vector, size, _ = _vector_of(context, signature.args[0].dtype)

        def square(first):   # the LANES rows of the square at arguments first .. first + 2
            array_type, row_type, column_type = signature.args[first:first + 3]
            array = context.make_array(array_type)(context, builder, values[first])
            row_bytes = builder.extract_value(array.strides, 0)
            first_row = context.cast(builder, values[first + 1], row_type, numba_types.int64)
            first_column = context.cast(builder, values[first + 2], column_type,
                                        numba_types.int64)
            corner = builder.gep(builder.bitcast(array.data, byte), [
                builder.add(builder.mul(first_row, row_bytes),
                            builder.mul(first_column, ir.Constant(int64, size)))])
            return [builder.bitcast(builder.gep(corner, [builder.mul(ir.Constant(int64, r),
                                                                     row_bytes)]),
                                    vector.as_pointer()) for r in range(LANES)]
        rows = [builder.load(address, align=size) for address in square(0)]
        step = LANES // 2
        while step:
            for first in range(LANES):
                if first & step:
                    continue
                low = [lane if not lane & step else LANES + lane - step for lane in range(LANES)]
                high = [lane + step if not lane & step else LANES + lane for lane in range(LANES)]
                a, b = rows[first], rows[first + step]
                rows[first] = builder.shuffle_vector(a, b, ir.Constant(
                    ir.VectorType(int32, LANES), low))
                rows[first + step] = builder.shuffle_vector(a, b, ir.Constant(
                    ir.VectorType(int32, LANES), high))
            step //= 2
        for address, value in zip(square(3), rows):
            builder.store(value, address, align=size)
        return context.get_dummy_value()
    if not (isinstance(matrix, numba_types.Array) and matrix.dtype in _FLOATS
            and isinstance(out, numba_types.Array) and out.dtype == matrix.dtype
            and matrix.ndim == 2 and out.ndim == 2):
        return None
    return numba_types.void(matrix, row, column, out, out_row, out_column), codegen


@njit(cache=True)
def transpose_rows(matrix, first, width, transposed):
    """``transposed[c, r] = matrix[first + r, c]`` for r < width, c < matrix's columns."""
    n = matrix.shape[1]
    whole_rows = width - width % LANES
    whole_columns = n - n % LANES
    for row in range(0, whole_rows, LANES):
        for column in range(0, whole_columns, LANES):
            _transpose_square(matrix, first + row, column, transposed, column, row)
    for row in range(width):
        source = matrix[first + row]
        for column in range(whole_columns if row < whole_rows else 0, n):
            transposed[column, row] = source[column]


@njit(cache=True, inline="always")
def selected_sum(matrix, indices, start, stop, column, width, out, offset, scale, accumulate):
    """``out[offset + c] = scale sum_{t = start .. stop-1} matrix[indices[t], column + c]``
    (``+ out[offset + c]`` where ``accumulate``) for c < width <= BLOCK_COLUMNS. ``matrix``
    (rows, n) float32 (or float64) with contiguous rows; ``indices`` int32; ``out`` 1-D of
    matrix's type, contiguous.

    A block narrower than BLOCK_COLUMNS still loads whole vectors where the matrix's rows have
    the columns, and masks only its stores: past ``width`` (columns that another block sums)
    or, at the matrix's right edge, before it (the block moved left to end there, its first
    lanes another block's columns). Masked loads in the loop cost little with AVX-512 but
    are slow AVX2 instructions on AMD's CPUs: measured on Zen 4 held to AVX2, x W with W
    784 x 500 (7 whole blocks and one of 52 columns) took 510 us with masked loads and 410
    without (one thread; W 512 wide: 350 us)."""
    n = matrix.shape[1]
    if width == BLOCK_COLUMNS:
        _sum_full(matrix, indices, start, stop, column, 0, BLOCK_COLUMNS, out, offset, scale,
                  accumulate)
    elif column + BLOCK_COLUMNS <= n:
        _sum_stored_lanes(matrix, indices, start, stop, column, 0, width, out, offset, scale,
                          accumulate)
    elif column + width >= BLOCK_COLUMNS:
        moved = BLOCK_COLUMNS - width
        _sum_stored_lanes(matrix, indices, start, stop, column - moved, moved, BLOCK_COLUMNS,
                          out, offset - moved, scale, accumulate)
    else:
        _sum_masked(matrix, indices, start, stop, column, 0, width, out, offset, scale,
                    accumulate)


@njit(parallel=True, cache=True)
def list_ones(sample, row_indices, row_bounds, column_indices, column_bounds, parts):
    """The ones of ``sample`` (b, k), 0s and 1s, listed twice; returns how many there are.

    By rows: row i's columns in ascending order, ``row_indices[i * (k + 1) ..]``, and
    ``row_bounds[i]`` (tiles + 1,): where each tile of TILE_ROWS columns begins in that list,
    then where it ends. Each column is written before it is known to be a one (hence the
    room for one more): no branch for a random sample to mispredict. By columns, from those:
    column l's rows in ascending order, ``column_indices[l * (b + 1) ..]``, ``column_bounds[l]``
    likewise (tiles of TILE_ROWS rows). Both in ``parts`` blocks on Numba's threads: of rows,
    then of tiles of columns (visiting the ones only)."""
    rows, width = sample.shape
    row_tiles = row_bounds.shape[1] - 1
    chunk = -(-rows // parts)
    for part in prange(parts):
        for i in range(part * chunk, min(rows, (part + 1) * chunk)):
            first = end = i * (width + 1)
            line = sample[i]
            for column in range(width):
                row_indices[end] = column
                end += line[column] != 0
            row_bounds[i, row_tiles] = end
            # where each tile begins, found afterwards: the loop above nested in a loop over
            # the tiles ran at half its speed
            position = first
            for tile in range(row_tiles):
                while position < end and row_indices[position] < tile * TILE_ROWS:
                    position += 1
                row_bounds[i, tile] = position
    # each part lists the columns of its tiles of columns, which the rows' bounds delimit
    column_tiles = column_bounds.shape[1] - 1
    tiles_chunk = -(-row_tiles // parts)
    for part in prange(parts):
        first_column = min(width, part * tiles_chunk * TILE_ROWS)
        last_column = min(width, (part + 1) * tiles_chunk * TILE_ROWS)
        if last_column <= first_column:
            continue
        ends = np.empty(last_column - first_column, np.int64)
        for column in range(first_column, last_column):
            ends[column - first_column] = column * (rows + 1)
        for i in range(rows):
            if i % TILE_ROWS == 0:
                for column in range(first_column, last_column):
                    column_bounds[column, i // TILE_ROWS] = ends[column - first_column]
            for position in range(row_bounds[i, part * tiles_chunk],
                                  row_bounds[i, min(row_tiles, (part + 1) * tiles_chunk)]):
                column = row_indices[position] - first_column
                column_indices[ends[column]] = i
                ends[column] += 1
        for column in range(first_column, last_column):
            column_bounds[column, column_tiles] = ends[column - first_column]
            if rows == 0:
                column_bounds[column, :] = ends[column - first_column]
    ones = 0
    for i in range(rows):
        ones += row_bounds[i, row_tiles] - i * (width + 1)
    return ones


def list_capacity(rows, width):
    """The length of the index arrays that :func:`list_ones` fills for a (rows, width)
    sample."""
    return rows * width + rows + width


def list_shapes(rows, width):
    """The shapes of :func:`list_ones`' ``row_bounds`` and ``column_bounds`` for a
    (rows, width) sample."""
    return (rows, -(-width // TILE_ROWS) + 1), (width, -(-rows // TILE_ROWS) + 1)


@njit(cache=True)
def selected_rows_block(matrix, indices, bounds, out, start, stop, scale, accumulate):
    """Columns start..stop-1 of ``out[i] = scale sum of the rows of matrix listed for i``
    (``+ out[i]`` where ``accumulate``): for a binary x (b, k) listed by its rows
    (:func:`list_ones`), x W, W (k, n), out (b, n); for one listed by its columns, x' q,
    q (b, n), out (k, n). One tile of ``matrix``'s rows at a time, for all of out's rows."""
    tiles = bounds.shape[1] - 1
    for column in range(start, stop, BLOCK_COLUMNS):
        width = min(BLOCK_COLUMNS, stop - column)
        for tile in range(tiles):
            for i in range(out.shape[0]):
                selected_sum(matrix, indices, bounds[i, tile], bounds[i, tile + 1], column,
                             width, out[i], column, scale, accumulate or tile > 0)


@njit(cache=True)
def selected_columns_block(matrix, indices, bounds, out, start, stop, transposed):
    """Columns start..stop-1 of ``out[i] = sum of the columns of matrix listed for i``: h W'
    for a binary h (b, n) listed by its rows and W (k, n), out (b, k). Each
    BLOCK_COLUMNS rows of W are first copied into ``transposed`` (n, BLOCK_COLUMNS), whose rows
    are then summed as :func:`selected_rows_block` sums W's."""
    tiles = bounds.shape[1] - 1
    for first in range(start, stop, BLOCK_COLUMNS):
        width = min(BLOCK_COLUMNS, stop - first)
        transpose_rows(matrix, first, width, transposed)
        for tile in range(tiles):
            for i in range(out.shape[0]):
                selected_sum(transposed, indices, bounds[i, tile], bounds[i, tile + 1], 0,
                             width, out[i], first, 1.0, tile > 0)


@njit(cache=True)
def selected_transposed_block(matrix, indices, bounds, out, row_start, row_stop, column_start,
                              column_stop, scale, keep, gathered, transposed):
    """Rows row_start..row_stop-1 and columns column_start..column_stop-1 of

        out <- keep out + scale matrix' s,   (matrix' s)[r, c] = sum_{i : s[i, c] = 1} matrix[i, r]

    for a binary s (b, n) listed by its columns (:func:`list_ones`), ``matrix`` (b, k),
    ``out`` (k, n): the positive statistic x1' h1 of CD, folded into the momentum buffer as BLAS's
    ``beta = keep``. BLOCK_COLUMNS rows of out at a time: the sums for each column c, which
    are rows of the transposed block, into ``gathered`` (>= columns, BLOCK_COLUMNS), then
    transposed into ``transposed`` (BLOCK_COLUMNS, >= columns)."""
    tiles = bounds.shape[1] - 1
    columns = column_stop - column_start
    # in out's precision, as BLAS's ?gemm takes beta and alpha
    keep, scale = out.dtype.type(keep), out.dtype.type(scale)
    for first in range(row_start, row_stop, BLOCK_COLUMNS):
        width = min(BLOCK_COLUMNS, row_stop - first)
        for tile in range(tiles):
            for column in range(columns):
                listed = bounds[column_start + column]
                selected_sum(matrix, indices, listed[tile], listed[tile + 1], first, width,
                             gathered[column], 0, 1.0, tile > 0)
        transpose_rows(gathered[:columns, :width], 0, columns, transposed)
        for row in range(width):
            target = out[first + row]
            sums = transposed[row]
            for column in range(columns):
                target[column_start + column] = (keep * target[column_start + column]
                                                 + scale * sums[column])


class SampleOnes:
    """Buffers for the ones of a 0/1 sample of up to ``rows`` rows of ``width`` columns,
    listed by :meth:`fill` (:func:`list_ones`), and then those lists: ``by_rows`` and
    ``by_columns``, each ``(indices, bounds)``; ``shape``, the sample's; ``ones``, their
    number. A backend's ``ones_lists`` makes one for each sample a trainer draws, once, and
    its ``list_ones`` fills it each time the sample is drawn again. ``other_width``: the
    other dimension of the matrices the sample multiplies, where known (None: unknown)."""

    def __init__(self, rows, width, other_width=None):
        self.width, self.other_width = width, other_width
        capacity = list_capacity(rows, width)
        self.row_indices = np.empty(capacity, np.int32)
        self.column_indices = np.empty(capacity, np.int32)
        row_shape, column_shape = list_shapes(rows, width)
        self._row_bounds = np.empty(int(np.prod(row_shape)), np.int64)
        self._column_bounds = np.empty(int(np.prod(column_shape)), np.int64)
        self.shape, self.ones, self.by_rows, self.by_columns = None, 0, None, None

    def fill(self, sample, parts):
        """List the ones of ``sample`` (b, width), b <= rows; returns their number."""
        row_shape, column_shape = list_shapes(*sample.shape)
        row_bounds = self._row_bounds[:row_shape[0] * row_shape[1]].reshape(row_shape)
        column_bounds = self._column_bounds[:column_shape[0] * column_shape[1]].reshape(
            column_shape)
        self.ones = int(list_ones(sample, self.row_indices, row_bounds, self.column_indices,
                                  column_bounds, parts))
        self.shape = sample.shape
        self.by_rows = (self.row_indices, row_bounds)
        self.by_columns = (self.column_indices, column_bounds)
        return self.ones
