/* asr.score._calign: sclite's word alignment in C, one call per batch of pairs.
 *
 * align(refs, hyps, sub, ins, dele, block_rows=0) -> list of str (codes C/S/D/I per pair).
 *
 * The DP and its tie-breaking are sclite's (SCTK src/sclite/net_dp.c,
 * calculate_internal_cells): a cell takes the diagonal (correct 0 / substitution `sub`) when
 * it is no dearer than both the deletion (cell above + `dele`) and the insertion (cell on the
 * left + `ins`), else the deletion when strictly cheaper than the insertion, else the
 * insertion; the traceback follows those choices from the last cell. asr/score/align.py has
 * the same algorithm in Python and explains it.
 *
 * Tokens are mapped to small integers first (one hash table per call, keyed by the tokens'
 * Python hash and compared with ==), so the DP compares ints. Memory is not quadratic: the
 * forward pass keeps every k-th row of costs (k >= sqrt(rows)), and the traceback recomputes
 * the back-pointers of one block of k rows at a time, only up to the column it has reached.
 * Short pairs fit in one block, which needs no forward pass at all.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define BLOCK_CELLS ((size_t)1 << 22) /* back-pointer bytes per block; as align.py */
#define BIG_PAIR ((size_t)1 << 20)    /* cells above which the GIL is released */

/* ---------------------------------------------------------------- token interning */

typedef struct {
    Py_hash_t hash;
    PyObject *obj; /* a strong reference; NULL = empty slot */
    int32_t id;
} Slot;

typedef struct {
    Slot *slots;
    size_t mask;
    size_t used;
} Table;

static size_t slot_of(Py_hash_t hash, size_t mask) {
    /* Python's int hashes are the ints themselves: mix before masking. */
    uint64_t h = (uint64_t)hash * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 32 ^ h) & mask;
}

static int table_init(Table *t, size_t capacity) {
    t->slots = PyMem_Calloc(capacity, sizeof(Slot));
    if (t->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    t->mask = capacity - 1;
    t->used = 0;
    return 0;
}

static void table_free(Table *t) {
    if (t->slots == NULL) return;
    for (size_t i = 0; i <= t->mask; i++) Py_XDECREF(t->slots[i].obj);
    PyMem_Free(t->slots);
    t->slots = NULL;
}

static int table_grow(Table *t) {
    size_t old_cap = t->mask + 1, cap = old_cap * 2;
    Slot *old = t->slots, *slots = PyMem_Calloc(cap, sizeof(Slot));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].obj == NULL) continue;
        size_t s = slot_of(old[i].hash, cap - 1);
        while (slots[s].obj != NULL) s = (s + 1) & (cap - 1);
        slots[s] = old[i];
    }
    PyMem_Free(old);
    t->slots = slots;
    t->mask = cap - 1;
    return 0;
}

/* The id of `obj` (equal tokens share one), or -1 with an exception set. */
static int32_t table_id(Table *t, PyObject *obj) {
    Py_hash_t hash = PyObject_Hash(obj);
    if (hash == -1 && PyErr_Occurred()) return -1;
    size_t s = slot_of(hash, t->mask);
    for (;;) {
        Slot *slot = &t->slots[s];
        if (slot->obj == NULL) break;
        if (slot->hash == hash) {
            if (slot->obj == obj) return slot->id;
            int eq = PyObject_RichCompareBool(slot->obj, obj, Py_EQ);
            if (eq < 0) return -1;
            if (eq) return slot->id;
        }
        s = (s + 1) & t->mask;
    }
    if (t->used >= INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "too many distinct tokens");
        return -1;
    }
    Slot *slot = &t->slots[s];
    Py_INCREF(obj);
    slot->obj = obj;
    slot->hash = hash;
    slot->id = (int32_t)t->used++;
    if (2 * t->used > t->mask + 1 && table_grow(t) < 0) return -1;
    return (int32_t)(t->used - 1);
}

/* ---------------------------------------------------------------- work buffers */

typedef struct {
    int32_t *ref, *hyp;   /* token ids */
    int32_t *row_a, *row_b;
    int32_t *kept;        /* cost rows 0, k, 2k, ... */
    char *ptr;            /* back-pointers of one block */
    char *codes;          /* the codes, written from the end */
    size_t ref_cap, hyp_cap, row_a_cap, row_b_cap, kept_cap, ptr_cap, codes_cap;
} Work;

/* Grows *buf to hold at least `count` items of `size` bytes (with headroom, as buffers are
 * reused across the pairs of a batch). */
static int reserve(void **buf, size_t *cap, size_t count, size_t size) {
    if (count <= *cap) return 0;
    if (count > PY_SSIZE_T_MAX / size) {
        PyErr_NoMemory();
        return -1;
    }
    size_t want = count < 64 ? 64 : count + count / 2;
    if (want > PY_SSIZE_T_MAX / size) want = count;
    void *p = PyMem_RawRealloc(*buf, want * size);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *buf = p;
    *cap = want;
    return 0;
}

static void work_free(Work *w) {
    PyMem_RawFree(w->ref);
    PyMem_RawFree(w->hyp);
    PyMem_RawFree(w->row_a);
    PyMem_RawFree(w->row_b);
    PyMem_RawFree(w->kept);
    PyMem_RawFree(w->ptr);
    PyMem_RawFree(w->codes);
}

/* ---------------------------------------------------------------- the DP */

typedef struct {
    int32_t sub, ins, dele;
} Costs;

/* Cost rows 1..n-1 kept every k rows (row 0 is already in w->kept). */
static void forward(const Work *w, Py_ssize_t n, Py_ssize_t m, Costs c, Py_ssize_t k) {
    const int32_t *ref = w->ref, *hyp = w->hyp;
    int32_t *prev = w->kept, *cur = w->row_a, *spare = w->row_b;
    for (Py_ssize_t i = 1; i < n; i++) {
        int32_t word = ref[i - 1];
        int32_t left = prev[0] + c.dele;
        cur[0] = left;
        for (Py_ssize_t j = 1; j <= m; j++) {
            int32_t s = prev[j - 1] + (hyp[j - 1] == word ? 0 : c.sub);
            int32_t d = prev[j] + c.dele;
            int32_t a = left + c.ins;
            int32_t v = s < d ? s : d;
            left = v < a ? v : a;
            cur[j] = left;
        }
        if (i % k == 0) {
            int32_t *keep = w->kept + (size_t)(i / k) * (size_t)(m + 1);
            memcpy(keep, cur, (size_t)(m + 1) * sizeof(int32_t));
            prev = keep;
        } else {
            prev = cur;
            cur = spare;
            spare = prev;
        }
    }
}

/* Back-pointers of rows start+1..stop over columns 0..width-1, from the cost row `top`. */
static void block(const Work *w, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t width,
                  const int32_t *top, Costs c) {
    const int32_t *ref = w->ref, *hyp = w->hyp;
    const int32_t *prev = top;
    int32_t *cur = w->row_a, *spare = w->row_b;
    char *ptr = w->ptr;
    for (Py_ssize_t i = start + 1; i <= stop; i++) {
        int32_t word = ref[i - 1];
        int32_t left = prev[0] + c.dele;
        cur[0] = left;
        ptr[0] = 'D';
        for (Py_ssize_t j = 1; j < width; j++) {
            int eq = hyp[j - 1] == word;
            int32_t s = prev[j - 1] + (eq ? 0 : c.sub);
            int32_t d = prev[j] + c.dele;
            int32_t a = left + c.ins;
            /* sclite: the diagonal if no dearer than both others, else the deletion if
             * strictly cheaper than the insertion, else the insertion. Written without
             * branches (the choices are unpredictable): the winner of diagonal vs deletion
             * beats the insertion on a tie only if it is the diagonal. */
            int diag = s <= d;
            int32_t v = diag ? s : d;
            int keep = diag ? s <= a : d < a;
            left = keep ? v : a;
            char code = keep ? (diag ? (eq ? 'C' : 'S') : 'D') : 'I';
            cur[j] = left;
            ptr[j] = code;
        }
        ptr += width;
        prev = cur;
        cur = spare;
        spare = (int32_t *)prev;
    }
}

/* Aligns w->ref[0..n) with w->hyp[0..m); returns the offset of the codes in w->codes (they
 * end at n + m). Buffers must be reserved by the caller. */
static Py_ssize_t align_pair(Work *w, Py_ssize_t n, Py_ssize_t m, Costs c, Py_ssize_t k) {
    for (Py_ssize_t j = 0; j <= m; j++) w->kept[j] = (int32_t)j * c.ins;
    if (n > k) forward(w, n, m, c, k);
    Py_ssize_t pos = n + m, i = n, j = m;
    while (i > 0) {
        Py_ssize_t start = (i - 1) / k * k, width = j + 1;
        block(w, start, i, width, w->kept + (size_t)(start / k) * (size_t)(m + 1), c);
        while (i > start) {
            char code = w->ptr[(size_t)(i - start - 1) * (size_t)width + (size_t)j];
            w->codes[--pos] = code;
            if (code == 'D') {
                i--;
            } else if (code == 'I') {
                j--;
            } else {
                i--;
                j--;
            }
        }
    }
    while (j > 0) {
        w->codes[--pos] = 'I';
        j--;
    }
    return pos;
}

static Py_ssize_t isqrt_ssize(Py_ssize_t n) {
    Py_ssize_t r = (Py_ssize_t)sqrt((double)n);
    while (r > 0 && r * r > n) r--;
    while ((r + 1) * (r + 1) <= n) r++;
    return r;
}

static Py_ssize_t block_rows_for(Py_ssize_t n, Py_ssize_t m, Py_ssize_t forced) {
    if (forced > 0) return forced;
    Py_ssize_t k = isqrt_ssize(n) + 1, by_cells = (Py_ssize_t)(BLOCK_CELLS / (size_t)(m + 1));
    return by_cells > k ? by_cells : k;
}

/* Reserves every buffer one pair needs. */
static int reserve_pair(Work *w, Py_ssize_t n, Py_ssize_t m, Py_ssize_t k) {
    size_t cols = (size_t)m + 1;
    size_t kept_rows = n > k ? (size_t)((n - 1) / k) + 1 : 1;
    size_t block_rows = (size_t)(n < k ? n : k);
    if (kept_rows > PY_SSIZE_T_MAX / cols || (block_rows && block_rows > PY_SSIZE_T_MAX / cols)) {
        PyErr_NoMemory();
        return -1;
    }
    if (reserve((void **)&w->row_a, &w->row_a_cap, cols, sizeof(int32_t)) < 0) return -1;
    if (reserve((void **)&w->row_b, &w->row_b_cap, cols, sizeof(int32_t)) < 0) return -1;
    if (reserve((void **)&w->kept, &w->kept_cap, kept_rows * cols, sizeof(int32_t)) < 0) return -1;
    if (reserve((void **)&w->ptr, &w->ptr_cap, block_rows * cols + 1, 1) < 0) return -1;
    return reserve((void **)&w->codes, &w->codes_cap, (size_t)n + (size_t)m + 1, 1);
}

/* Fills `ids` (capacity *cap) with the ids of the tokens of `seq`; returns the count or -1. */
static Py_ssize_t token_ids(Table *t, PyObject *seq, int32_t **ids, size_t *cap, const char *side) {
    if (PyUnicode_Check(seq)) {
        PyErr_Format(PyExc_TypeError, "each %s must be a sequence of tokens, not str", side);
        return -1;
    }
    PyObject *fast = PySequence_Fast(seq, "");
    if (fast == NULL) {
        PyErr_Format(PyExc_TypeError, "each %s must be a sequence of tokens, not %.100s", side,
                     Py_TYPE(seq)->tp_name);
        return -1;
    }
    Py_ssize_t len = PySequence_Fast_GET_SIZE(fast);
    if (reserve((void **)ids, cap, (size_t)len + 1, sizeof(int32_t)) < 0) {
        Py_DECREF(fast);
        return -1;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        /* A token type's __eq__ could run Python code that shrinks the list: re-check the
         * size and hold the item while comparing it (str tokens run no Python code). */
        if (i >= PySequence_Fast_GET_SIZE(fast)) {
            PyErr_Format(PyExc_RuntimeError, "a %s changed size during alignment", side);
            Py_DECREF(fast);
            return -1;
        }
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        Py_INCREF(item);
        int32_t id = table_id(t, item);
        Py_DECREF(item);
        if (id < 0) {
            Py_DECREF(fast);
            return -1;
        }
        (*ids)[i] = id;
    }
    Py_DECREF(fast);
    return len;
}

static PyObject *calign_align(PyObject *Py_UNUSED(self), PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"refs", "hyps", "sub", "ins", "dele", "block_rows", NULL};
    PyObject *refs_in, *hyps_in;
    Py_ssize_t sub, ins, dele, forced = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOnnn|n", keywords, &refs_in, &hyps_in, &sub,
                                     &ins, &dele, &forced))
        return NULL;
    if (sub < 0 || ins < 0 || dele < 0 || sub > 1000000 || ins > 1000000 || dele > 1000000) {
        PyErr_SetString(PyExc_ValueError, "costs must be integers in 0..1000000");
        return NULL;
    }
    Costs c = {(int32_t)sub, (int32_t)ins, (int32_t)dele};
    Py_ssize_t max_cost = sub > ins ? sub : ins;
    if (dele > max_cost) max_cost = dele;

    PyObject *refs = PySequence_Fast(refs_in, "refs must be a sequence");
    if (refs == NULL) return NULL;
    PyObject *hyps = PySequence_Fast(hyps_in, "hyps must be a sequence");
    if (hyps == NULL) {
        Py_DECREF(refs);
        return NULL;
    }
    PyObject *result = NULL;
    Table table = {NULL, 0, 0};
    Work w;
    memset(&w, 0, sizeof(w));
    Py_ssize_t count = PySequence_Fast_GET_SIZE(refs);
    if (count != PySequence_Fast_GET_SIZE(hyps)) {
        PyErr_Format(PyExc_ValueError, "%zd references but %zd hypotheses", count,
                     PySequence_Fast_GET_SIZE(hyps));
        goto done;
    }
    if (table_init(&table, 1024) < 0) goto done;
    result = PyList_New(count);
    if (result == NULL) goto done;
    for (Py_ssize_t p = 0; p < count; p++) {
        if (p >= PySequence_Fast_GET_SIZE(refs) || p >= PySequence_Fast_GET_SIZE(hyps)) {
            PyErr_SetString(PyExc_RuntimeError, "refs or hyps changed size during alignment");
            goto fail;
        }
        PyObject *ref = PySequence_Fast_GET_ITEM(refs, p), *hyp = PySequence_Fast_GET_ITEM(hyps, p);
        Py_INCREF(ref);
        Py_INCREF(hyp);
        Py_ssize_t n = token_ids(&table, ref, &w.ref, &w.ref_cap, "reference");
        Py_ssize_t m = n < 0 ? -1 : token_ids(&table, hyp, &w.hyp, &w.hyp_cap, "hypothesis");
        Py_DECREF(ref);
        Py_DECREF(hyp);
        if (m < 0) goto fail;
        /* Every cost in the matrix is at most that of deleting all and inserting all. */
        if ((double)(n + m + 1) * (double)max_cost > (double)INT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "pair too long for 32-bit alignment costs");
            goto fail;
        }
        Py_ssize_t k = block_rows_for(n, m, forced);
        if (reserve_pair(&w, n, m, k) < 0) goto fail;
        Py_ssize_t pos;
        if ((size_t)n * (size_t)m >= BIG_PAIR) {
            /* Only C buffers are touched: let other threads run meanwhile. */
            Py_BEGIN_ALLOW_THREADS
            pos = align_pair(&w, n, m, c, k);
            Py_END_ALLOW_THREADS
        } else {
            pos = align_pair(&w, n, m, c, k);
        }
        Py_ssize_t len = n + m - pos;
        PyObject *codes = PyUnicode_New(len, 127);
        if (codes == NULL) goto fail;
        memcpy(PyUnicode_1BYTE_DATA(codes), w.codes + pos, (size_t)len);
        PyList_SET_ITEM(result, p, codes);
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    table_free(&table);
    work_free(&w);
    Py_DECREF(refs);
    Py_DECREF(hyps);
    return result;
}

static PyMethodDef methods[] = {
    {"align", (PyCFunction)(void (*)(void))calign_align, METH_VARARGS | METH_KEYWORDS,
     "align(refs, hyps, sub, ins, dele, block_rows=0) -> list[str]\n\n"
     "sclite's alignment of each (ref, hyp) pair of token sequences, as edit codes C/S/D/I.\n"
     "block_rows > 0 forces the spacing of the kept DP rows (for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_calign", "sclite-compatible word alignment (C).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__calign(void) { return PyModule_Create(&module); }
