/* skbn.io._csvwrite: the rows of a CSV file, formatted in one compiled pass.
 *
 * format_rows(columns, n_rows, separator, out) -> int
 *
 * writes ``n_rows`` rows (no header) at the start of the bytearray ``out``
 * (grown first if it could be too short) and returns their length in bytes.
 * The fields of each row are separated by the byte ``separator`` and the row
 * ends with "\n", in the text polars' CSV writer gives for the same values:
 *
 * - float64: the shortest text that reads back to the same double (found by
 *   Zmij, https://github.com/vitaut/zmij, vendored in third_party/zmij), in
 *   positional notation for 1e-5 <= |x| < 1e16 ("0.00001", "12.5", "100.0")
 *   and in scientific notation otherwise ("3e-7", "1.5e+16"); "NaN", "inf",
 *   "-inf".  A float column may carry the affine map of skbn's pooled
 *   statistics, ((x - shift) * factor) + offset, each operation rounded
 *   once (no fused multiply-add), as NumPy and polars compute it;
 * - int64, uint64: decimal; bool: "true", "false";
 * - text (Arrow large_string or string_view): quoted where it holds the separator, a quote,
 *   "\r" or "\n", or is empty, with each quote doubled;
 * - a missing value (null): an empty field.
 *
 * Each column is a tuple of Arrow buffers (anything with the buffer
 * protocol) and the array's offset, in elements:
 *
 *   ("f", values, validity or None, offset, shift, factor, add)
 *         shift, factor, add: float or None (None: that term left out)
 *   ("i", values, validity or None, offset)      int64
 *   ("u", values, validity or None, offset)      uint64
 *   ("b", value bits, validity or None, offset)  bool
 *   ("s", offsets, data, validity or None, offset)  large_string
 *   ("v", views, (data, ...), validity or None, offset)  string_view
 *
 * The formatting runs without the GIL: tables can be formatted in threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "zmij/zmij-c.h"

#include <float.h>

/* The affine map must round each operation to double, as NumPy does. */
#if defined(__FAST_MATH__)
#error "skbn.io._csvwrite must not be compiled with -ffast-math"
#endif
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "skbn.io._csvwrite needs double arithmetic rounded to double (FLT_EVAL_METHOD == 0)"
#endif

enum { F64, I64, U64, BOOL, TEXT, VIEW };

typedef struct {
    int kind;
    Py_buffer views[3]; /* values (or offsets), data (text), validity */
    int held[3];
    const uint8_t *valid;
    Py_ssize_t offset;
    const double *f;
    const int64_t *i;
    const uint64_t *u;
    const uint8_t *bits;
    const int64_t *offsets;
    const char *chars;
    Py_ssize_t n_chars;
    const uint8_t *text_views; /* string_view: 16 bytes a value */
    Py_buffer *data;           /* string_view: its data buffers */
    Py_ssize_t n_data, held_data;
    const char **data_start;
    int has_shift, has_factor, has_add;
    double shift, factor, add;
} Column;

static void release(Column *columns, Py_ssize_t n) {
    for (Py_ssize_t j = 0; j < n; j++) {
        for (Py_ssize_t b = 0; b < columns[j].held_data; b++) {
            PyBuffer_Release(&columns[j].data[b]);
        }
        PyMem_Free(columns[j].data);
        PyMem_Free((void *)columns[j].data_start);
        columns[j].data = NULL;
        columns[j].data_start = NULL;
        columns[j].held_data = 0;
        for (int b = 0; b < 3; b++) {
            if (columns[j].held[b]) {
                PyBuffer_Release(&columns[j].views[b]);
                columns[j].held[b] = 0;
            }
        }
    }
}

/* Hold ``obj``'s buffer in view ``b`` of ``c``; it must have ``need`` bytes. */
static int hold(Column *c, int b, PyObject *obj, Py_ssize_t need, const char *what) {
    if (PyObject_GetBuffer(obj, &c->views[b], PyBUF_SIMPLE) < 0) {
        return -1;
    }
    c->held[b] = 1;
    if (c->views[b].len < need) {
        PyErr_Format(PyExc_ValueError, "format_rows: the %s buffer holds %zd bytes, %zd needed",
                     what, c->views[b].len, need);
        return -1;
    }
    return 0;
}

static int optional_double(PyObject *obj, int *has, double *value) {
    if (obj == Py_None) {
        *has = 0;
        return 0;
    }
    *value = PyFloat_AsDouble(obj);
    if (*value == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    *has = 1;
    return 0;
}

/* A string_view column: ("v", views, (data buffers...), validity, offset).
 * A view is 16 bytes: the length (int32), then the text itself when it is
 * at most 12 bytes long, else a 4-byte prefix, the data buffer's index and
 * the offset in it (int32 each). */
static int parse_views(PyObject *spec, Py_ssize_t n, Column *c, Py_ssize_t *bound) {
    c->kind = VIEW;
    const Py_ssize_t end = c->offset + n;
    if (hold(c, 0, PyTuple_GET_ITEM(spec, 1), end * 16, "text views") < 0) {
        return -1;
    }
    c->text_views = (const uint8_t *)c->views[0].buf;
    PyObject *buffers = PyTuple_GET_ITEM(spec, 2);
    if (!PyTuple_Check(buffers)) {
        PyErr_SetString(PyExc_TypeError, "format_rows: a v column's data buffers are a tuple");
        return -1;
    }
    c->n_data = PyTuple_GET_SIZE(buffers);
    c->data = PyMem_Calloc((size_t)c->n_data + 1, sizeof(Py_buffer));
    c->data_start = PyMem_Calloc((size_t)c->n_data + 1, sizeof(char *));
    if (c->data == NULL || c->data_start == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t b = 0; b < c->n_data; b++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(buffers, b), &c->data[b], PyBUF_SIMPLE) < 0) {
            return -1;
        }
        c->held_data = b + 1;
        c->data_start[b] = (const char *)c->data[b].buf;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t r = c->offset; r < end; r++) {
        const uint8_t *view = c->text_views + 16 * r;
        int32_t length, index, start;
        memcpy(&length, view, 4);
        if (length < 0) {
            PyErr_SetString(PyExc_ValueError, "format_rows: a negative text length");
            return -1;
        }
        if (length > 12) {
            memcpy(&index, view + 8, 4);
            memcpy(&start, view + 12, 4);
            if (index < 0 || index >= c->n_data || start < 0 ||
                (Py_ssize_t)start + length > c->data[index].len) {
                PyErr_SetString(PyExc_ValueError, "format_rows: a text view out of range");
                return -1;
            }
        }
        total += length;
    }
    if (total > PY_SSIZE_T_MAX / 4) {
        PyErr_SetString(PyExc_OverflowError, "format_rows: too much text");
        return -1;
    }
    *bound = 2 * total + 3 * n;
    return 0;
}

/* Read one column description; the bytes its fields may take in ``*bound``. */
static int parse_column(PyObject *spec, Py_ssize_t n, Column *c, Py_ssize_t *bound) {
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 4) {
        PyErr_SetString(PyExc_TypeError, "format_rows: each column is a tuple (kind, ...)");
        return -1;
    }
    const char *kind = PyUnicode_Check(PyTuple_GET_ITEM(spec, 0))
                           ? PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 0))
                           : NULL;
    if (kind == NULL || strlen(kind) != 1 || strchr("fiubsv", kind[0]) == NULL) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError,
                        "format_rows: a column's kind is one of f, i, u, b, s, v");
        return -1;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(spec);
    const int text = kind[0] == 's' || kind[0] == 'v';
    Py_ssize_t want = kind[0] == 'f' ? 7 : text ? 5 : 4;
    if (size != want) {
        PyErr_Format(PyExc_TypeError, "format_rows: a %c column is a tuple of %zd items",
                     kind[0], want);
        return -1;
    }
    Py_ssize_t at = text ? 3 : 2; /* validity, then offset */
    c->offset = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, at + 1));
    if (c->offset == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (c->offset < 0 || c->offset > PY_SSIZE_T_MAX / 16 - n) {
        PyErr_SetString(PyExc_ValueError, "format_rows: a column's offset is out of range");
        return -1;
    }
    Py_ssize_t end = c->offset + n;
    PyObject *validity = PyTuple_GET_ITEM(spec, at);
    c->valid = NULL;
    if (validity != Py_None) {
        if (hold(c, 2, validity, (end + 7) / 8, "validity") < 0) {
            return -1;
        }
        c->valid = (const uint8_t *)c->views[2].buf;
    }
    PyObject *values = PyTuple_GET_ITEM(spec, 1);
    switch (kind[0]) {
    case 'f':
        c->kind = F64;
        if (hold(c, 0, values, end * 8, "float64") < 0) {
            return -1;
        }
        c->f = (const double *)c->views[0].buf;
        if (optional_double(PyTuple_GET_ITEM(spec, 4), &c->has_shift, &c->shift) < 0 ||
            optional_double(PyTuple_GET_ITEM(spec, 5), &c->has_factor, &c->factor) < 0 ||
            optional_double(PyTuple_GET_ITEM(spec, 6), &c->has_add, &c->add) < 0) {
            return -1;
        }
        *bound = 25 * n; /* "-1.7976931348623157e+308" and a separator */
        return 0;
    case 'i':
    case 'u':
        c->kind = kind[0] == 'i' ? I64 : U64;
        if (hold(c, 0, values, end * 8, "integer") < 0) {
            return -1;
        }
        c->i = (const int64_t *)c->views[0].buf;
        c->u = (const uint64_t *)c->views[0].buf;
        *bound = 21 * n;
        return 0;
    case 'b':
        c->kind = BOOL;
        if (hold(c, 0, values, (end + 7) / 8, "bool") < 0) {
            return -1;
        }
        c->bits = (const uint8_t *)c->views[0].buf;
        *bound = 6 * n;
        return 0;
    case 'v':
        return parse_views(spec, n, c, bound);
    default:
        c->kind = TEXT;
        if (hold(c, 0, values, (end + 1) * 8, "text offsets") < 0 ||
            hold(c, 1, PyTuple_GET_ITEM(spec, 2), 0, "text data") < 0) {
            return -1;
        }
        c->offsets = (const int64_t *)c->views[0].buf;
        c->chars = (const char *)c->views[1].buf;
        c->n_chars = c->views[1].len;
        for (Py_ssize_t r = c->offset; r < end; r++) {
            if (c->offsets[r] < 0 || c->offsets[r] > c->offsets[r + 1] ||
                c->offsets[r + 1] > c->n_chars) {
                PyErr_SetString(PyExc_ValueError, "format_rows: text offsets out of range");
                return -1;
            }
        }
        int64_t total = n ? c->offsets[end] - c->offsets[c->offset] : 0;
        if (total > PY_SSIZE_T_MAX / 4) {
            PyErr_SetString(PyExc_OverflowError, "format_rows: too much text");
            return -1;
        }
        *bound = 2 * (Py_ssize_t)total + 3 * n; /* every byte a quote, two quotes */
        return 0;
    }
}

/* -- formatting ------------------------------------------------------------- */

/* The decimal digits of v at out; their number. */
static inline int write_digits(uint64_t v, char *out) {
    char tmp[20];
    int n = 0;
    do {
        tmp[19 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, tmp + 20 - n, (size_t)n);
    return n;
}

/* ``digits`` (``length`` of them, no leading or trailing zero) times
 * 10^k, in polars' layout (that of the ``ryu`` crate's ``format64``, with
 * a sign on the exponent); the length written. */
static int layout(const char *digits, int length, int k, char *out) {
    const int kk = length + k; /* 10^(kk-1) <= |x| < 10^kk */
    if (0 <= k && kk <= 16) { /* 1234e7 -> 12340000000.0 */
        memcpy(out, digits, (size_t)length);
        memset(out + length, '0', (size_t)k);
        memcpy(out + kk, ".0", 2);
        return kk + 2;
    }
    if (0 < kk && kk <= 16) { /* 1234e-2 -> 12.34 */
        memcpy(out, digits, (size_t)kk);
        out[kk] = '.';
        memcpy(out + kk + 1, digits + kk, (size_t)(length - kk));
        return length + 1;
    }
    if (-5 < kk && kk <= 0) { /* 1234e-6 -> 0.001234 */
        memcpy(out, "0.0000", (size_t)(2 - kk));
        memcpy(out + 2 - kk, digits, (size_t)length);
        return 2 - kk + length;
    }
    int i = 0; /* 1234e30 -> 1.234e+33, 1e30 -> 1e+30 */
    out[i++] = digits[0];
    if (length > 1) {
        out[i++] = '.';
        memcpy(out + i, digits + 1, (size_t)(length - 1));
        i += length - 1;
    }
    out[i++] = 'e';
    out[i++] = kk - 1 < 0 ? '-' : '+';
    return i + write_digits((uint64_t)(kk - 1 < 0 ? 1 - kk : kk - 1), out + i);
}

/* Bytes format_double may write past its text (Zmij's scratch space). */
#define SLACK 64

/* The shortest round-trip text of x at out (at most 24 bytes, and up to
 * SLACK bytes of scratch space after them); its length.
 *
 * Zmij writes the shortest correctly rounded digits in Python's layout:
 * positional where they are at least 1e-4 and below 1e16 ("0.125",
 * "100"), else scientific ("1.2e-05").  Polars' layout is positional over
 * a wider range, with ".0" after an integer: for 1e-4 <= |x| < 1e15 (whose
 * digits are in both ranges) that is Zmij's text, and ".0" where x is an
 * integer (below 2^53, so its shortest digits are its own); the rest is
 * laid out again from Zmij's digits. */
static int format_double(double x, char *out) {
    uint64_t bits;
    memcpy(&bits, &x, 8);
    const int sign = (int)(bits >> 63);
    const uint64_t exponent = (bits >> 52) & 0x7ffu;
    if (exponent == 0x7ffu) {
        if (bits << 12) {
            memcpy(out, "NaN", 3);
            return 3;
        }
        memcpy(out, sign ? "-inf" : "inf", 3 + (size_t)sign);
        return 3 + sign;
    }
    int i = 0;
    if (sign) {
        out[i++] = '-';
        x = -x;
    }
    if (x >= 1e-4 && x < 1e15) {
        i += (int)(zmij_detail_write_double(x, out + i) - (out + i));
        if ((double)(int64_t)x == x) {
            memcpy(out + i, ".0", 2);
            i += 2;
        }
        return i;
    }
    if (x == 0.0) {
        memcpy(out + i, "0.0", 3);
        return i + 3;
    }
    char text[zmij_double_buffer_size];
    const int n = (int)(zmij_detail_write_double(x, text) - text);
    int point = -1, e = n;
    for (int t = 0; t < n; t++) {
        if (text[t] == '.') {
            point = t;
        } else if (text[t] == 'e') {
            e = t;
            break;
        }
    }
    /* the digits without the point, and the power of ten of the last one */
    char digits[24];
    int length = 0;
    for (int t = 0; t < e; t++) {
        if (text[t] != '.') {
            digits[length++] = text[t];
        }
    }
    int k = 0;
    if (e < n) {
        int magnitude = 0;
        for (int t = e + 2; t < n; t++) {
            magnitude = 10 * magnitude + (text[t] - '0');
        }
        k = text[e + 1] == '-' ? -magnitude : magnitude;
    }
    if (point >= 0) {
        k -= e - point - 1;
    }
    int first = 0;
    while (digits[first] == '0') {
        first++;
    }
    while (digits[length - 1] == '0') {
        length--;
        k++;
    }
    return i + layout(digits + first, length - first, k, out + i);
}

static inline int write_int(int64_t v, char *out) {
    if (v < 0) {
        out[0] = '-';
        return 1 + write_digits(0 - (uint64_t)v, out + 1);
    }
    return write_digits((uint64_t)v, out);
}

static inline char *write_text(const char *s, int64_t len, char sep, char *out) {
    int quote = len == 0;
    for (int64_t t = 0; t < len && !quote; t++) {
        const char ch = s[t];
        quote = ch == sep || ch == '"' || ch == '\n' || ch == '\r';
    }
    if (!quote) {
        memcpy(out, s, (size_t)len);
        return out + len;
    }
    *out++ = '"';
    for (int64_t t = 0; t < len; t++) {
        if (s[t] == '"') {
            *out++ = '"';
        }
        *out++ = s[t];
    }
    *out++ = '"';
    return out;
}

static inline int bit(const uint8_t *bits, Py_ssize_t i) {
    return (bits[i >> 3] >> (i & 7)) & 1;
}

/* Rows at a time: the float columns are first mapped into ``tile`` (row
 * major), each read in order, so that the row-by-row formatting below reads
 * memory in cache instead of one value from each of p columns per row. */
#define TILE_ROWS 64

static inline double mapped(const Column *c, Py_ssize_t at) {
    double y = c->f[at];
    if (c->has_shift) {
        y = y - c->shift;
    }
    if (c->has_factor) {
        y = y * c->factor;
    }
    if (c->has_add) {
        y = y + c->add;
    }
    return y;
}

static char *write_rows(const Column *columns, Py_ssize_t p, Py_ssize_t n, char sep, char *out,
                        double *tile) {
    for (Py_ssize_t r0 = 0; r0 < n; r0 += TILE_ROWS) {
        const Py_ssize_t rows = n - r0 < TILE_ROWS ? n - r0 : TILE_ROWS;
        for (Py_ssize_t j = 0; j < p; j++) {
            const Column *c = &columns[j];
            if (c->kind == F64) {
                for (Py_ssize_t t = 0; t < rows; t++) {
                    tile[t * p + j] = mapped(c, c->offset + r0 + t);
                }
            }
        }
        for (Py_ssize_t t = 0; t < rows; t++) {
            const Py_ssize_t r = r0 + t;
            for (Py_ssize_t j = 0; j < p; j++) {
                const Column *c = &columns[j];
                const Py_ssize_t at = c->offset + r;
                if (j) {
                    *out++ = sep;
                }
                if (c->valid != NULL && !bit(c->valid, at)) {
                    continue;
                }
                switch (c->kind) {
                case F64:
                    out += format_double(tile[t * p + j], out);
                    break;
                case I64:
                    out += write_int(c->i[at], out);
                    break;
                case U64:
                    out += write_digits(c->u[at], out);
                    break;
                case BOOL:
                    if (bit(c->bits, at)) {
                        memcpy(out, "true", 4);
                        out += 4;
                    } else {
                        memcpy(out, "false", 5);
                        out += 5;
                    }
                    break;
                case TEXT:
                    out = write_text(c->chars + c->offsets[at],
                                     c->offsets[at + 1] - c->offsets[at], sep, out);
                    break;
                default: {
                    const uint8_t *view = c->text_views + 16 * at;
                    int32_t length, index, start;
                    memcpy(&length, view, 4);
                    if (length <= 12) {
                        out = write_text((const char *)view + 4, length, sep, out);
                    } else {
                        memcpy(&index, view + 8, 4);
                        memcpy(&start, view + 12, 4);
                        out = write_text(c->data_start[index] + start, length, sep, out);
                    }
                }
                }
            }
            *out++ = '\n';
        }
    }
    return out;
}

static PyObject *format_rows(PyObject *self, PyObject *args) {
    PyObject *specs, *out;
    Py_ssize_t n;
    int separator;
    if (!PyArg_ParseTuple(args, "O!niO!:format_rows", &PyTuple_Type, &specs, &n, &separator,
                          &PyByteArray_Type, &out)) {
        return NULL;
    }
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "format_rows: n_rows must be >= 0");
        return NULL;
    }
    if (separator < 0 || separator > 127 || separator == '"' || separator == '\n' ||
        separator == '\r') {
        PyErr_SetString(PyExc_ValueError,
                        "format_rows: the separator is one ASCII byte, not a quote or line break");
        return NULL;
    }
    Py_ssize_t p = PyTuple_GET_SIZE(specs);
    if (p == 0) {
        PyErr_SetString(PyExc_ValueError, "format_rows: no columns");
        return NULL;
    }
    Column *columns = PyMem_Calloc((size_t)p, sizeof(Column));
    if (columns == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *result = NULL;
    Py_ssize_t bound = n; /* the line breaks */
    for (Py_ssize_t j = 0; j < p; j++) {
        Py_ssize_t size = 0;
        if (parse_column(PyTuple_GET_ITEM(specs, j), n, &columns[j], &size) < 0) {
            goto done;
        }
        if (size > PY_SSIZE_T_MAX - bound) {
            PyErr_SetString(PyExc_OverflowError, "format_rows: the rows are too long");
            goto done;
        }
        bound += size;
    }
    /* The caller's buffer, grown (never shrunk) to the longest the rows can
     * be: reused from batch to batch, it costs no page faults. */
    if (bound > PY_SSIZE_T_MAX - SLACK) {
        PyErr_SetString(PyExc_OverflowError, "format_rows: the rows are too long");
        goto done;
    }
    bound += SLACK;
    if (PyByteArray_GET_SIZE(out) < bound && PyByteArray_Resize(out, bound) < 0) {
        goto done;
    }
    Py_buffer view; /* held while the GIL is released: out cannot be resized meanwhile */
    if (PyObject_GetBuffer(out, &view, PyBUF_WRITABLE) < 0) {
        goto done;
    }
    double *tile = PyMem_RawMalloc((size_t)p * TILE_ROWS * sizeof(double));
    if (tile == NULL) {
        PyBuffer_Release(&view);
        PyErr_NoMemory();
        goto done;
    }
    char *start = (char *)view.buf, *end;
    Py_BEGIN_ALLOW_THREADS
    end = write_rows(columns, p, n, (char)separator, start, tile);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(tile);
    PyBuffer_Release(&view);
    result = PyLong_FromSsize_t(end - start);
done:
    release(columns, p);
    PyMem_Free(columns);
    return result;
}

static PyMethodDef methods[] = {
    {"format_rows", format_rows, METH_VARARGS,
     "format_rows(columns, n_rows, separator, out) -> int: CSV rows of Arrow buffers\n"
     "written at the start of the bytearray out (grown if too short); their length."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_csvwrite",
    "CSV rows of Arrow buffers in polars' text, formatted without the GIL.", -1, methods,
};

PyMODINIT_FUNC PyInit__csvwrite(void) {
    PyObject *m = PyModule_Create(&module);
#ifdef Py_GIL_DISABLED
    if (m != NULL) {
        PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED);
    }
#endif
    return m;
}
