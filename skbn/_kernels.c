/*
 * skbn._kernels: the moments of one block of rows, and the small-batch step,
 * compiled.
 *
 * A mini-batch of a few hundred rows costs NumPy about 25 calls (the exact
 * moments, the checks, the moving update), each a microsecond of overhead for
 * a few hundred nanoseconds of arithmetic.  Here they are one call:
 *
 *   block_moments  the corrected two-pass moments of the rows of a block,
 *                  its correction computed exactly (see moments());
 *                  skbn._stats uses it for every unweighted block, so every
 *                  path that reads a block gets the same bits;
 *   shifted_sums   sum (x - K) and sum (x - K)^2 over the values present, the
 *                  refining pass of skbn._stats over columns with NaN;
 *   affine_map     (x - shift) * factor + offset per column, or its inverse,
 *                  with the check for +/-inf, in one pass (skbn._affine);
 *   plain_step     block_moments, then S <- S + alpha (b - S) for the mean
 *                  and the variance (skbn._averaging.plain_update), the same
 *                  IEEE operations in the same order as the NumPy update.
 *
 * Nothing is fused or reassociated behind the code's back (the build passes
 * -ffp-contract=off; the one fused multiply-add is written out), so the
 * results do not depend on the compiler's choices nor on the number of
 * columns: each column's arithmetic is its own.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(_MSC_VER) && !defined(restrict)
#define restrict __restrict
#endif

/* The compensated sums and two-sums need each double operation rounded to
   double: not where intermediates are carried wider (x87), nor with
   reassociation allowed.  Then the (optional) extension is not built. */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "skbn._kernels needs double arithmetic rounded to double (FLT_EVAL_METHOD == 0)"
#endif
#if defined(__FAST_MATH__)
#error "skbn._kernels must not be built with -ffast-math"
#endif

/* Blocks of more values than this release the GIL while they are read. */
#define RELEASE_GIL_VALUES 8192

/* A C-contiguous float64 buffer of `ndim` dimensions, or -1 with TypeError. */
static int
get_float64(PyObject *obj, Py_buffer *view, int ndim, int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        return -1;
    }
    if (view->ndim != ndim || view->itemsize != 8 || view->format == NULL
        || strcmp(view->format, "d") != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous %d-D float64 array", name, ndim);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Rows summed one after another at the leaves of the pairwise sums. */
#define LEAF_ROWS 8

/* s2 = sum (x - shift)^2 over the rows [a, b), in order. */
static inline void
leaf(const double *restrict X, Py_ssize_t a, Py_ssize_t b, Py_ssize_t p,
     const double *restrict shift, double *restrict s2)
{
    Py_ssize_t i, j;
    for (j = 0; j < p; j++) {
        s2[j] = 0.0;
    }
    for (i = a; i < b; i++) {
        const double *restrict row = X + i * p;
        for (j = 0; j < p; j++) {
            const double d = row[j] - shift[j];
            s2[j] += d * d;
        }
    }
}

/* Levels of squares()'s stack for n rows. */
static Py_ssize_t
levels(Py_ssize_t n)
{
    Py_ssize_t depth = 1, leaves = (n + LEAF_ROWS - 1) / LEAF_ROWS;
    while (leaves > 1) {
        leaves = (leaves + 1) / 2;
        depth++;
    }
    return depth + 1;
}

/*
 * sum (x - shift)^2 over all n rows, per column, pairwise: leaves of
 * LEAF_ROWS rows summed in order, merged as a binary counter merges its
 * carries (the tree depends on n alone), as NumPy's own sums do: the rounding
 * error grows with log(n), not n.  The result is the first p doubles of
 * `stack`, which holds p levels(n) doubles.
 */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
__attribute__((target_clones("avx2", "default")))
#endif
static void
squares(const double *restrict X, Py_ssize_t n, Py_ssize_t p, const double *restrict shift,
        double *restrict stack)
{
    Py_ssize_t depth = 0, done = 0, a, j;
    for (a = 0; a < n; a += LEAF_ROWS) {
        const Py_ssize_t b = a + LEAF_ROWS < n ? a + LEAF_ROWS : n;
        leaf(X, a, b, p, shift, stack + depth * p);
        depth++;
        done++;
        /* each trailing zero bit of `done` is a pair of equal subtrees to merge */
        Py_ssize_t count;
        for (count = done; (count & 1) == 0; count >>= 1) {
            double *restrict left = stack + (depth - 2) * p;
            const double *restrict right = stack + (depth - 1) * p;
            for (j = 0; j < p; j++) {
                left[j] += right[j];
            }
            depth--;
        }
    }
    while (depth > 1) {
        double *restrict left = stack + (depth - 2) * p;
        const double *restrict right = stack + (depth - 1) * p;
        for (j = 0; j < p; j++) {
            left[j] += right[j];
        }
        depth--;
    }
}

/*
 * hi + lo = sum x over the n rows, per column, to within a rounding of the
 * total: each addition's rounding error (Knuth's two-sum) is gathered in lo.
 */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
__attribute__((target_clones("avx2", "default")))
#endif
static void
compensated_sums(const double *restrict X, Py_ssize_t n, Py_ssize_t p, double *restrict hi,
                 double *restrict lo)
{
    Py_ssize_t i, j;
    for (j = 0; j < p; j++) {
        hi[j] = 0.0;
        lo[j] = 0.0;
    }
    for (i = 0; i < n; i++) {
        const double *restrict row = X + i * p;
        for (j = 0; j < p; j++) {
            const double x = row[j];
            const double t = hi[j] + x;
            const double bt = t - hi[j];
            lo[j] += (hi[j] - (t - bt)) + (x - bt);
            hi[j] = t;
        }
    }
}

/*
 * The corrected two-pass moments of the n rows of X (n x p, row-major), per
 * column, with the correction computed exactly:
 *
 *   S = sum x (compensated, hi + lo),  mean0 = S / n,
 *   c = (S - n mean0) / n   (n mean0's error exactly, by a fused multiply-add),
 *   var = sum (x - mean0)^2 / n - c^2   (pairwise),
 *   mean + residual = mean0 + c exactly (Knuth's two-sum).
 *
 * c is the corrected two-pass's sum (x - mean0) / n without the rounding of
 * each difference and of their sum, so the mean is exact to about one
 * rounding whatever the spread of x against its mean.  Returns 1 when every
 * column is finite and its variance is above rounding of 0
 * (var > (n eps mean)^2 + n eps var, the fast path's test), else 0.
 * `scratch` holds p levels(n) doubles.
 */
static int
moments(const double *restrict X, Py_ssize_t n, Py_ssize_t p, double *restrict mean,
        double *restrict var, double *restrict residual, double *restrict scratch)
{
    const double total = (double)n;
    Py_ssize_t j;
    compensated_sums(X, n, p, mean, residual);
    for (j = 0; j < p; j++) {
        const double hi = mean[j], mean0 = hi / total;
        /* hi - n mean0 is exact: the remainder of a correctly rounded division */
        residual[j] = (fma(-total, mean0, hi) + residual[j]) / total;
        mean[j] = mean0;
    }
    squares(X, n, p, mean, scratch);
    const double k = total * DBL_EPSILON;
    int plain = 1;
    for (j = 0; j < p; j++) {
        const double mean0 = mean[j];
        const double c = residual[j];
        const double v = scratch[j] / total - c * c;
        const double s = mean0 + c;
        const double bb = s - mean0;
        const double e = (mean0 - (s - bb)) + (c - bb);
        const double km = k * s;
        const double bound = km * km + k * v;
        /* NaN or inf anywhere fails the comparison too */
        plain &= (v > bound) & isfinite(e + v);
        mean[j] = s;
        var[j] = v;
        residual[j] = e;
    }
    return plain;
}

/* Scratch for moments() of an n x p block: on the stack when small. */
#define STACK_SCRATCH 2048

static double *
scratch_for(Py_ssize_t n, Py_ssize_t p, double *stack)
{
    const Py_ssize_t size = p * levels(n);
    if (size <= STACK_SCRATCH) {
        return stack;
    }
    double *heap = PyMem_RawMalloc((size_t)size * sizeof(double));
    if (heap == NULL) {
        PyErr_NoMemory();
    }
    return heap;
}

/*
 * The columns whose moments() are not finite because they hold NaN (and
 * neither inf nor an overflow): their moments over the values present,
 * recomputed by moments() from a gathered copy of those values, and their
 * weight, the number of those values.  Every other column's weight is n.
 * Returns -1 when memory runs out, else 0.
 */
static int
present_values(const double *restrict X, Py_ssize_t n, Py_ssize_t p, double *restrict mean,
               double *restrict var, double *restrict residual, double *restrict weight)
{
    double *buffer = NULL;
    Py_ssize_t i, j;
    for (j = 0; j < p; j++) {
        weight[j] = (double)n;
        if (isfinite(residual[j] + var[j])) {
            continue;
        }
        int missing = 0, infinite = 0;
        for (i = 0; i < n; i++) {
            const double x = X[i * p + j];
            missing |= isnan(x);
            infinite |= isinf(x);
        }
        if (!missing || infinite) {
            continue; /* an overflow or inf: the caller's careful path */
        }
        if (buffer == NULL) {
            buffer = PyMem_RawMalloc((size_t)(n + levels(n)) * sizeof(double));
            if (buffer == NULL) {
                return -1;
            }
        }
        Py_ssize_t m = 0;
        for (i = 0; i < n; i++) {
            const double x = X[i * p + j];
            if (!isnan(x)) {
                buffer[m++] = x;
            }
        }
        weight[j] = (double)m;
        if (m > 0) {
            moments(buffer, m, 1, mean + j, var + j, residual + j, buffer + n);
        }
    }
    PyMem_RawFree(buffer);
    return 0;
}

PyDoc_STRVAR(block_moments_doc,
"block_moments(X, out) -> bool\n"
"\n"
"The corrected two-pass moments of the rows of the C-contiguous float64\n"
"array X (n, p), over the values that are not NaN: out[:p] the mean,\n"
"out[p:2p] the biased variance, out[2p:3p] the mean's rounding residual,\n"
"out[3p:4p] the weight (the number of values).  A column with inf, or whose\n"
"sums overflow, or with no value, gets a mean or variance that is not\n"
"finite.  True when every column is complete and finite with a variance\n"
"above rounding of 0.");

static PyObject *
block_moments(PyObject *module, PyObject *args)
{
    PyObject *x_obj, *out_obj;
    Py_buffer x, out;
    if (!PyArg_ParseTuple(args, "OO:block_moments", &x_obj, &out_obj)) {
        return NULL;
    }
    if (get_float64(x_obj, &x, 2, 0, "X") < 0) {
        return NULL;
    }
    if (get_float64(out_obj, &out, 1, 1, "out") < 0) {
        PyBuffer_Release(&x);
        return NULL;
    }
    const Py_ssize_t n = x.shape[0], p = x.shape[1];
    if (out.shape[0] < 4 * p || n < 1) {
        PyBuffer_Release(&x);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "X needs a row and out 4 * X.shape[1] values");
        return NULL;
    }
    double *o = out.buf;
    double stack[STACK_SCRATCH];
    double *scratch = scratch_for(n, p, stack);
    if (scratch == NULL) {
        PyBuffer_Release(&x);
        PyBuffer_Release(&out);
        return NULL;
    }
    int plain, status;
    if (n * p > RELEASE_GIL_VALUES) {
        Py_BEGIN_ALLOW_THREADS
        plain = moments(x.buf, n, p, o, o + p, o + 2 * p, scratch);
        status = present_values(x.buf, n, p, o, o + p, o + 2 * p, o + 3 * p);
        Py_END_ALLOW_THREADS
    } else {
        plain = moments(x.buf, n, p, o, o + p, o + 2 * p, scratch);
        status = present_values(x.buf, n, p, o, o + p, o + 2 * p, o + 3 * p);
    }
    if (scratch != stack) {
        PyMem_RawFree(scratch);
    }
    PyBuffer_Release(&x);
    PyBuffer_Release(&out);
    if (status < 0) {
        return PyErr_NoMemory();
    }
    return PyBool_FromLong(plain);
}

/* s1 = sum d and s2 = sum d^2, d = x - shift, over the rows in order,
   skipping NaN (a NaN x adds 0 to both). */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
__attribute__((target_clones("avx2", "default")))
#endif
static void
shifted(const double *restrict X, Py_ssize_t n, Py_ssize_t p, const double *restrict shift,
        double *restrict s1, double *restrict s2)
{
    Py_ssize_t i, j;
    for (j = 0; j < p; j++) {
        s1[j] = 0.0;
        s2[j] = 0.0;
    }
    for (i = 0; i < n; i++) {
        const double *restrict row = X + i * p;
        for (j = 0; j < p; j++) {
            const double x = row[j];
            const double d = x == x ? x - shift[j] : 0.0;
            s1[j] += d;
            s2[j] += d * d;
        }
    }
}

PyDoc_STRVAR(shifted_sums_doc,
"shifted_sums(X, shift, out)\n"
"\n"
"Per column of the C-contiguous float64 array X (n, p), over the values\n"
"that are not NaN, with d = x - shift: out[:p] = sum d, out[p:2p] =\n"
"sum d^2, summed over the rows in order (as NumPy sums along axis 0 of\n"
"an array of several columns).");

static PyObject *
shifted_sums(PyObject *module, PyObject *args)
{
    PyObject *x_obj, *shift_obj, *out_obj;
    Py_buffer x, shift, out;
    if (!PyArg_ParseTuple(args, "OOO:shifted_sums", &x_obj, &shift_obj, &out_obj)) {
        return NULL;
    }
    if (get_float64(x_obj, &x, 2, 0, "X") < 0) {
        return NULL;
    }
    if (get_float64(shift_obj, &shift, 1, 0, "shift") < 0) {
        PyBuffer_Release(&x);
        return NULL;
    }
    if (get_float64(out_obj, &out, 1, 1, "out") < 0) {
        PyBuffer_Release(&x);
        PyBuffer_Release(&shift);
        return NULL;
    }
    const Py_ssize_t n = x.shape[0], p = x.shape[1];
    int ok = shift.shape[0] == p && out.shape[0] >= 2 * p;
    if (ok) {
        double *o = out.buf;
        if (n * p > RELEASE_GIL_VALUES) {
            Py_BEGIN_ALLOW_THREADS
            shifted(x.buf, n, p, shift.buf, o, o + p);
            Py_END_ALLOW_THREADS
        } else {
            shifted(x.buf, n, p, shift.buf, o, o + p);
        }
    }
    PyBuffer_Release(&x);
    PyBuffer_Release(&shift);
    PyBuffer_Release(&out);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "shift needs X.shape[1] values, out 2 * X.shape[1]");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* A C-contiguous 1-D int64 buffer, or -1 with TypeError. */
static int
get_int64(PyObject *obj, Py_buffer *view, int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        return -1;
    }
    if (view->ndim != 1 || view->itemsize != 8 || view->format == NULL
        || (strcmp(view->format, "l") != 0 && strcmp(view->format, "q") != 0)) {
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous 1-D int64 array", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(plain_step_doc,
"plain_step(X, mean, var, weight, count, alpha, out, out_count) -> int\n"
"\n"
"One mini-batch X (n, p) of a moving average whose features share their\n"
"update count: block_moments(X, out[3p:]) and then, where it returns True,\n"
"out[:p] = (b_mean - mean) * alpha + mean and out[p:2p] the same for var\n"
"(exactly the batch's where alpha == 1), out[2p:3p] = weight + n and\n"
"out_count = count + 1.  out holds 6p float64, out_count p int64.  Returns\n"
"0 when done, 1 when the block needs more than the fast path (NaN,\n"
"overflow, a variance within rounding of 0), 2 when the update is not\n"
"finite.");

static PyObject *
plain_step(PyObject *module, PyObject *args)
{
    PyObject *objs[7];
    double alpha;
    /* X, mean, var, weight, count, out, out_count */
    Py_buffer views[7];
    int got = 0;
    long status = 0;
    if (!PyArg_ParseTuple(args, "OOOOOdOO:plain_step", &objs[0], &objs[1], &objs[2], &objs[3],
                          &objs[4], &alpha, &objs[5], &objs[6])) {
        return NULL;
    }
    static const char *names[7] = {"X", "mean", "var", "weight", "count", "out", "out_count"};
    for (got = 0; got < 7; got++) {
        const int r = got == 4 || got == 6
                          ? get_int64(objs[got], &views[got], got == 6, names[got])
                          : get_float64(objs[got], &views[got], got == 0 ? 2 : 1, got == 5,
                                        names[got]);
        if (r < 0) {
            status = -1;
            break;
        }
    }
    double stack[STACK_SCRATCH];
    double *scratch = NULL;
    if (status == 0) {
        const Py_ssize_t n = views[0].shape[0], p = views[0].shape[1];
        int j;
        for (j = 1; j < 7; j++) {
            if (views[j].shape[0] != (j == 5 ? 6 * p : p)) {
                status = -1;
            }
        }
        if (status < 0 || n < 1) {
            status = -1;
            PyErr_SetString(PyExc_ValueError,
                            "mean, var, weight, count and out_count need X.shape[1] values, "
                            "out 6 * X.shape[1], X a row");
        } else if ((scratch = scratch_for(n, p, stack)) == NULL) {
            status = -1;
        } else {
            const double *M = views[1].buf, *V = views[2].buf, *W = views[3].buf;
            const int64_t *C = views[4].buf;
            double *o = views[5].buf;
            int64_t *oc = views[6].buf;
            double *b_mean = o + 3 * p, *b_var = o + 4 * p;
            if (!moments(views[0].buf, n, p, b_mean, b_var, o + 5 * p, scratch)) {
                status = 1;
            } else {
                const double rows = (double)n;
                Py_ssize_t k;
                for (k = 0; k < p; k++) {
                    double a = (b_mean[k] - M[k]) * alpha + M[k];
                    double s = (b_var[k] - V[k]) * alpha + V[k];
                    if (alpha == 1.0) {
                        a = b_mean[k];
                        s = b_var[k];
                    }
                    if (!isfinite(a) || !isfinite(s)) {
                        status = 2;
                    }
                    o[k] = a;
                    o[p + k] = s;
                    o[2 * p + k] = W[k] + rows;
                    oc[k] = C[k] + 1;
                }
            }
        }
    }
    if (scratch != NULL && scratch != stack) {
        PyMem_RawFree(scratch);
    }
    while (got-- > 0) {
        PyBuffer_Release(&views[got]);
    }
    return status < 0 ? NULL : PyLong_FromLong(status);
}

/* The affine map of n rows of p columns (see affine_map); returns 1, having
   written nothing, when `check` is set and a value is +/-inf. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
__attribute__((target_clones("avx2", "default")))
#endif
static int
map_rows(const double *X, double *out, Py_ssize_t n, Py_ssize_t p, const double *shift,
         const double *restrict factor, const double *offset, int inverse, int check)
{
    Py_ssize_t i, j;
    if (check) {
        int infinite = 0;
        for (i = 0; i < n * p; i++) {
            infinite |= isinf(X[i]);
        }
        if (infinite) {
            return 1;
        }
    }
    /* out may be X itself: each value is read before it is written */
    for (i = 0; i < n; i++) {
        const double *row = X + i * p;
        double *dst = out + i * p;
        if (shift != NULL && inverse) {
            for (j = 0; j < p; j++) {
                dst[j] = (row[j] - shift[j]) / factor[j];
            }
        } else if (shift != NULL) {
            for (j = 0; j < p; j++) {
                dst[j] = (row[j] - shift[j]) * factor[j];
            }
        } else if (inverse) {
            for (j = 0; j < p; j++) {
                dst[j] = row[j] / factor[j];
            }
        } else {
            for (j = 0; j < p; j++) {
                dst[j] = row[j] * factor[j];
            }
        }
        if (offset != NULL) {
            for (j = 0; j < p; j++) {
                dst[j] = dst[j] + offset[j];
            }
        }
    }
    return 0;
}

PyDoc_STRVAR(affine_map_doc,
"affine_map(X, out, shift, factor, offset, inverse, check) -> bool\n"
"\n"
"out = (X - shift) * factor + offset, per column of the C-contiguous\n"
"float64 arrays X and out (n, p) (out may be X), or (X - shift) / factor +\n"
"offset with inverse; shift and offset may be None (left out).  With check,\n"
"X is first looked at for +/-inf: True, and nothing written, if it holds\n"
"one; else False.");

static PyObject *
affine_map(PyObject *module, PyObject *args)
{
    PyObject *objs[5];
    int inverse, check;
    Py_buffer views[5];
    int present[5] = {1, 1, 0, 1, 0};
    static const char *names[5] = {"X", "out", "shift", "factor", "offset"};
    if (!PyArg_ParseTuple(args, "OOOOOpp:affine_map", &objs[0], &objs[1], &objs[2], &objs[3],
                          &objs[4], &inverse, &check)) {
        return NULL;
    }
    present[2] = objs[2] != Py_None;
    present[4] = objs[4] != Py_None;
    int got, status = 0;
    for (got = 0; got < 5; got++) {
        if (present[got]
            && get_float64(objs[got], &views[got], got < 2 ? 2 : 1, got == 1, names[got]) < 0) {
            status = -1;
            break;
        }
    }
    Py_ssize_t n = 0, p = 0;
    if (status == 0) {
        n = views[0].shape[0];
        p = views[0].shape[1];
        int j;
        if (views[1].shape[0] != n || views[1].shape[1] != p) {
            status = -1;
        }
        for (j = 2; j < 5; j++) {
            if (present[j] && views[j].shape[0] != p) {
                status = -1;
            }
        }
        if (status < 0) {
            PyErr_SetString(PyExc_ValueError,
                            "out needs X's shape, shift, factor and offset X.shape[1] values");
        }
    }
    if (status == 0) {
        const double *X = views[0].buf, *f = views[3].buf;
        const double *sh = present[2] ? views[2].buf : NULL;
        const double *of = present[4] ? views[4].buf : NULL;
        double *o = views[1].buf;
        if (n * p > RELEASE_GIL_VALUES) {
            Py_BEGIN_ALLOW_THREADS
            status = map_rows(X, o, n, p, sh, f, of, inverse, check);
            Py_END_ALLOW_THREADS
        } else {
            status = map_rows(X, o, n, p, sh, f, of, inverse, check);
        }
    }
    while (got-- > 0) {
        if (present[got]) {
            PyBuffer_Release(&views[got]);
        }
    }
    return status < 0 ? NULL : PyBool_FromLong(status);
}

static PyMethodDef kernel_methods[] = {
    {"block_moments", block_moments, METH_VARARGS, block_moments_doc},
    {"plain_step", plain_step, METH_VARARGS, plain_step_doc},
    {"shifted_sums", shifted_sums, METH_VARARGS, shifted_sums_doc},
    {"affine_map", affine_map, METH_VARARGS, affine_map_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef kernel_module = {
    PyModuleDef_HEAD_INIT,
    "_kernels",
    "Compiled kernels of skbn's block moments and small-batch step.",
    -1,
    kernel_methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    PyObject *module = PyModule_Create(&kernel_module);
#ifdef Py_GIL_DISABLED
    /* no state is shared between calls: safe without the GIL */
    if (module != NULL) {
        PyUnstable_Module_SetGIL(module, Py_MOD_GIL_NOT_USED);
    }
#endif
    return module;
}
