/* PHP serialize() decoder in C: the same shapes as phpdecode.py, about as fast as json.loads.
 *
 * phpdecode.py documents the format and the shapes; this file is its accelerator and is
 * optional (setup.py builds it when a compiler is there; phpdecode falls back to Python).
 * It is stricter than the Python decoder: lengths, counts and integers must be plain ASCII
 * digits, where Python's int() would also take signs, spaces and underscores. Every read is
 * bounds-checked, counts are checked against the bytes left before anything is allocated,
 * and nesting is limited, so hostile input ends in ValueError, never in a crash or a hang.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* Deeper than any PBXware answer; far below what the C stack can take. */
#define MAX_DEPTH 256
/* Digits that always fit in a long long. */
#define SMALL_DIGITS 18
/* The shortest array element: a key "i:0;" and a value "N;". */
#define MIN_PAIR_BYTES 6

typedef struct {
    const char *buf;
    Py_ssize_t len;
    Py_ssize_t pos;
    int depth;
    PyObject *keys; /* memo: the same array key text becomes one str object, as json does */
} Reader;

static PyObject *fail(Reader *r, const char *what) {
    PyErr_Format(PyExc_ValueError, "%s at %zd", what, r->pos);
    return NULL;
}

static int expect(Reader *r, const char *text, Py_ssize_t n) {
    if (r->len - r->pos < n || memcmp(r->buf + r->pos, text, (size_t)n) != 0) {
        return 0;
    }
    r->pos += n;
    return 1;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* A non-negative count of at most SMALL_DIGITS digits followed by `stop`; -1 if malformed. */
static long long read_count(Reader *r, char stop) {
    Py_ssize_t p = r->pos, start = r->pos;
    long long n = 0;
    while (p < r->len && is_digit(r->buf[p])) {
        if (p - start == SMALL_DIGITS) {
            return -1;
        }
        n = n * 10 + (r->buf[p] - '0');
        p++;
    }
    if (p == start || p >= r->len || r->buf[p] != stop) {
        return -1;
    }
    r->pos = p + 1;
    return n;
}

/* After "i:": [-]digits";". Sets *small when the value fits a long long (for list keys). */
static PyObject *read_int(Reader *r, long long *small, int *is_small) {
    Py_ssize_t p = r->pos, digits;
    int negative = 0;
    if (p < r->len && r->buf[p] == '-') {
        negative = 1;
        p++;
    }
    digits = p;
    while (p < r->len && is_digit(r->buf[p])) {
        p++;
    }
    if (p == digits || p >= r->len || r->buf[p] != ';') {
        return fail(r, "bad integer");
    }
    *is_small = (p - digits) <= SMALL_DIGITS;
    if (*is_small) {
        long long n = 0;
        for (Py_ssize_t i = digits; i < p; i++) {
            n = n * 10 + (r->buf[i] - '0');
        }
        *small = negative ? -n : n;
        r->pos = p + 1;
        return PyLong_FromLongLong(*small);
    }
    /* Arbitrary precision, as PHP's 64-bit ints never need but Python's int() allows. */
    Py_ssize_t n = p - r->pos;
    char *text = PyMem_Malloc((size_t)n + 1);
    if (text == NULL) {
        return PyErr_NoMemory();
    }
    memcpy(text, r->buf + r->pos, (size_t)n);
    text[n] = '\0';
    PyObject *value = PyLong_FromString(text, NULL, 10);
    PyMem_Free(text);
    r->pos = p + 1;
    return value;
}

/* After "s:": count":\"" bytes "\";", decoded as strict UTF-8. */
static PyObject *read_str(Reader *r) {
    long long n = read_count(r, ':');
    if (n < 0 || !expect(r, "\"", 1)) {
        return fail(r, "bad string");
    }
    if (n > r->len - r->pos - 2) {
        return fail(r, "string longer than the data");
    }
    Py_ssize_t start = r->pos, end = r->pos + (Py_ssize_t)n;
    if (r->buf[end] != '"' || r->buf[end + 1] != ';') {
        return fail(r, "bad string");
    }
    r->pos = end + 2;
    return PyUnicode_DecodeUTF8(r->buf + start, end - start, NULL);
}

/* After "d:": anything up to ';' that float() takes (PHP writes INF, -INF and NAN too). */
static PyObject *read_float(Reader *r) {
    const char *semi = memchr(r->buf + r->pos, ';', (size_t)(r->len - r->pos));
    if (semi == NULL) {
        return fail(r, "bad float");
    }
    Py_ssize_t end = semi - r->buf;
    PyObject *text = PyBytes_FromStringAndSize(r->buf + r->pos, end - r->pos);
    if (text == NULL) {
        return NULL;
    }
    PyObject *value = PyFloat_FromString(text);
    Py_DECREF(text);
    r->pos = end + 1;
    return value;
}

static PyObject *read_value(Reader *r);

/* A string key through the memo: one object per distinct key text. */
static PyObject *read_key_str(Reader *r) {
    PyObject *key = read_str(r);
    if (key == NULL) {
        return NULL;
    }
    PyObject *known = PyDict_SetDefault(r->keys, key, key);
    Py_XINCREF(known);
    Py_DECREF(key);
    return known;
}

/* After "a:": count":{" pairs "}". Keys 0..n-1 in order make a list, no pairs an empty
 * list (json_encode's []), anything else a dict with str keys. */
static PyObject *read_array(Reader *r) {
    long long count = read_count(r, ':');
    if (count < 0 || !expect(r, "{", 1)) {
        return fail(r, "bad array");
    }
    if (count > (r->len - r->pos) / MIN_PAIR_BYTES) {
        return fail(r, "array count larger than the data");
    }
    if (r->depth == MAX_DEPTH) {
        return fail(r, "arrays nested too deeply");
    }
    r->depth++;
    PyObject *keys = PyList_New((Py_ssize_t)count);
    PyObject *values = PyList_New((Py_ssize_t)count);
    PyObject *result = NULL;
    int sequential = 1;
    if (keys == NULL || values == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < (Py_ssize_t)count; i++) {
        PyObject *key;
        if (expect(r, "s:", 2)) {
            key = read_key_str(r);
            sequential = 0;
        } else if (expect(r, "i:", 2)) {
            long long small = 0;
            int is_small = 0;
            key = read_int(r, &small, &is_small);
            sequential = sequential && is_small && small == i;
        } else {
            fail(r, "bad array key");
            goto done;
        }
        if (key == NULL) {
            goto done;
        }
        PyList_SET_ITEM(keys, i, key);
        PyObject *value = read_value(r);
        if (value == NULL) {
            goto done;
        }
        PyList_SET_ITEM(values, i, value);
    }
    if (!expect(r, "}", 1)) {
        fail(r, "array longer than its count");
        goto done;
    }
    if (count == 0 || sequential) {
        result = Py_NewRef(values);
        goto done;
    }
    result = PyDict_New();
    if (result == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < (Py_ssize_t)count; i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        PyObject *text = PyUnicode_CheckExact(key) ? Py_NewRef(key) : PyObject_Str(key);
        if (text == NULL || PyDict_SetItem(result, text, PyList_GET_ITEM(values, i)) < 0) {
            Py_XDECREF(text);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(text);
    }
done:
    r->depth--;
    Py_XDECREF(keys);
    Py_XDECREF(values);
    return result;
}

static PyObject *read_value(Reader *r) {
    if (r->pos >= r->len) {
        return fail(r, "unexpected end");
    }
    if (expect(r, "s:", 2)) {
        return read_str(r);
    }
    if (expect(r, "a:", 2)) {
        return read_array(r);
    }
    if (expect(r, "i:", 2)) {
        long long small;
        int is_small;
        return read_int(r, &small, &is_small);
    }
    if (expect(r, "N;", 2)) {
        Py_RETURN_NONE;
    }
    if (expect(r, "b:0;", 4)) {
        Py_RETURN_FALSE;
    }
    if (expect(r, "b:1;", 4)) {
        Py_RETURN_TRUE;
    }
    if (expect(r, "d:", 2)) {
        return read_float(r);
    }
    return fail(r, "unsupported or bad token");
}

static PyObject *loads(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Reader r = {view.buf, view.len, 0, 0, PyDict_New()};
    PyObject *value = NULL;
    if (r.keys != NULL) {
        value = read_value(&r);
        if (value != NULL && r.pos != r.len) {
            Py_CLEAR(value);
            fail(&r, "trailing data after the serialized value");
        }
        Py_DECREF(r.keys);
    }
    PyBuffer_Release(&view);
    return value;
}

static PyMethodDef methods[] = {
    {"loads", loads, METH_O, "Decode one PHP serialize() value (bytes) into json_encode's shapes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_phpdecode", "PHP serialize() decoder (C accelerator of phpdecode).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__phpdecode(void) { return PyModule_Create(&module); }
