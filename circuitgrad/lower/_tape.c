/* circuitgrad's tape evaluator: one C extension, compiled once, runs every circuit.

   A circuit lowered by circuitgrad.lower.tape is a flat int32 array of instructions
   (opcode, out, a0, a1, a2) over a file of float64 registers that are reused by liveness.
   The opcode switch is generated from the primitive table into _tape_ops.h (see
   circuitgrad/lower/cforms.py); this file holds what does not depend on the table: the
   register allocator and the two drivers (one point; batches in chunks of CG_LANES points,
   so memory is the register file of one chunk, whatever the number of points).

   Built by `pip install -e .` (setup.py). Compiled with -ffp-contract=off, never with
   -ffast-math: the values are the NumPy lowering's (docs/semantics.md). No NumPy headers:
   arrays come in through the buffer protocol. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_tape_ops.h"
#ifndef CG_SOURCE_HASH
#define CG_SOURCE_HASH ""  /* built without setup.py: no hash, taken for stale where sources are */
#endif

#define CG_LANES 32

static int
get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, int writable, const char *what)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    if (view->itemsize != itemsize || view->len % itemsize) {
        PyErr_Format(PyExc_TypeError, "_tape: %s must hold %zd-byte items", what, itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* allocate(args, last, reg, keep) -> register count.
   args: int32[3 N], the arguments of each node (-1: none); last: int32[N], the last node that
   reads each node; reg: int32[N], in: a register for each leaf and -1 for each operation,
   out: a register for every node; keep: uint8[N], nonzero for nodes whose register is never
   reused (leaves and outputs). An operation's arguments that die at it give their registers back
   first, so the operation may write over one of them (the switch reads before it writes). */
static PyObject *
tape_allocate(PyObject *self, PyObject *args)
{
    PyObject *o_args, *o_last, *o_reg, *o_keep;
    Py_buffer b_args, b_last, b_reg, b_keep;
    if (!PyArg_ParseTuple(args, "OOOO", &o_args, &o_last, &o_reg, &o_keep))
        return NULL;
    if (get_buffer(o_args, &b_args, 4, 0, "args") < 0) return NULL;
    if (get_buffer(o_last, &b_last, 4, 0, "last") < 0) goto fail1;
    if (get_buffer(o_reg, &b_reg, 4, 1, "reg") < 0) goto fail2;
    if (get_buffer(o_keep, &b_keep, 1, 0, "keep") < 0) goto fail3;
    Py_ssize_t n = b_reg.len / 4;
    if (b_args.len / 4 != 3 * n || b_last.len / 4 != n || b_keep.len != n) {
        PyErr_SetString(PyExc_ValueError, "_tape.allocate: arrays of different lengths");
        goto fail4;
    }
    const int32_t *a = b_args.buf, *last = b_last.buf;
    int32_t *reg = b_reg.buf;
    const uint8_t *keep = b_keep.buf;
    int32_t count = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (reg[i] >= count) count = reg[i] + 1;
    int32_t *free_list = malloc(sizeof(int32_t) * (size_t)(n + 1));
    if (!free_list) { PyErr_NoMemory(); goto fail4; }
    Py_ssize_t nfree = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (reg[i] >= 0) continue;  /* a leaf: its own register */
        for (int k = 0; k < 3; k++) {
            int32_t x = a[3 * i + k];
            if (x < 0 || (k > 0 && x == a[3 * i]) || (k > 1 && x == a[3 * i + 1])) continue;
            if (x >= i) {
                PyErr_Format(PyExc_ValueError, "_tape.allocate: node %zd reads node %d", i, x);
                free(free_list);
                goto fail4;
            }
            /* an operation's register is free after its last read, a leaf's never */
            if (last[x] == i && !keep[x]) free_list[nfree++] = reg[x];
        }
        reg[i] = nfree ? free_list[--nfree] : count++;
    }
    free(free_list);
    PyBuffer_Release(&b_keep); PyBuffer_Release(&b_reg);
    PyBuffer_Release(&b_last); PyBuffer_Release(&b_args);
    return PyLong_FromLong(count);
fail4: PyBuffer_Release(&b_keep);
fail3: PyBuffer_Release(&b_reg);
fail2: PyBuffer_Release(&b_last);
fail1: PyBuffer_Release(&b_args);
    return NULL;
}

/* arguments(args) -> bytearray: the argument tuples of the N nodes (a list of tuples of
   ints) as int32[N, 3] rows, -1 where a node has fewer than 3; ValueError for more. The same
   as NumPy on the flattened lists, without a Python object per argument. */
static PyObject *
tape_arguments(PyObject *self, PyObject *list)
{
    if (!PyList_Check(list)) {
        PyErr_SetString(PyExc_TypeError, "_tape.arguments: a list of tuples");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(list);
    PyObject *out = PyByteArray_FromStringAndSize(NULL, 12 * n);
    if (!out) return NULL;
    int32_t *a = (int32_t *)PyByteArray_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(list, i);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) > 3) {
            PyErr_Format(PyExc_ValueError, "_tape.arguments: node %zd has %zd arguments", i,
                         PyTuple_Check(t) ? PyTuple_GET_SIZE(t) : (Py_ssize_t)-1);
            Py_DECREF(out);
            return NULL;
        }
        Py_ssize_t k = 0, m = PyTuple_GET_SIZE(t);
        for (; k < m; k++) {
            long v = PyLong_AsLong(PyTuple_GET_ITEM(t, k));
            if (v == -1 && PyErr_Occurred()) { Py_DECREF(out); return NULL; }
            a[3 * i + k] = (int32_t)v;
        }
        for (; k < 3; k++) a[3 * i + k] = -1;
    }
    return out;
}

#ifndef CG_THREADED
static void
run_point(const int32_t *code, Py_ssize_t ninstr, double *r)
{
    for (Py_ssize_t k = 0; k < ninstr; k++) {
        const int32_t *ins = code + 5 * k;
        int32_t op = ins[0], o = ins[1], a0 = ins[2], a1 = ins[3], a2 = ins[4];
        (void)a1; (void)a2;
        CG_POINT_SWITCH
    }
}

#endif

static void
run_chunk(const int32_t *code, Py_ssize_t ninstr, double *r, int n)
{
    int l;
    for (Py_ssize_t k = 0; k < ninstr; k++) {
        const int32_t *ins = code + 5 * k;
        int32_t op = ins[0];
        double *y = r + (Py_ssize_t)ins[1] * CG_LANES;
        const double *x0 = r + (Py_ssize_t)ins[2] * CG_LANES;
        const double *x1 = r + (Py_ssize_t)ins[3] * CG_LANES;
        const double *x2 = r + (Py_ssize_t)ins[4] * CG_LANES;
        (void)x1; (void)x2;
        CG_CHUNK_SWITCH
    }
}

/* A tape's arrays: its instructions, the registers and values of its constants, and the
   registers of its inputs and outputs (checked when the tape was built). */
typedef struct {
    Py_buffer code, creg, cval, ireg, oreg;
    Py_ssize_t ninstr, nconst, nin, nout;
} tape_arrays;

static void
release_tape(tape_arrays *t, int held)
{
    Py_buffer *views[5] = {&t->code, &t->creg, &t->cval, &t->ireg, &t->oreg};
    for (int k = 0; k < held; k++) PyBuffer_Release(views[k]);
}

static int
get_tape(PyObject *code, PyObject *creg, PyObject *cval, PyObject *ireg, PyObject *oreg,
         Py_ssize_t nregs, tape_arrays *t)
{
    PyObject *objs[5] = {code, creg, cval, ireg, oreg};
    Py_buffer *views[5] = {&t->code, &t->creg, &t->cval, &t->ireg, &t->oreg};
    static const Py_ssize_t sizes[5] = {4, 4, 8, 4, 4};
    static const char *names[5] = {"code", "const_regs", "const_values", "in_regs", "out_regs"};
    for (int k = 0; k < 5; k++) {
        if (get_buffer(objs[k], views[k], sizes[k], 0, names[k]) < 0) {
            release_tape(t, k);
            return -1;
        }
    }
    t->ninstr = t->code.len / 20;
    t->nconst = t->creg.len / 4;
    t->nin = t->ireg.len / 4;
    t->nout = t->oreg.len / 4;
    if (t->code.len % 20 || t->cval.len / 8 != t->nconst || nregs < 1) {
        PyErr_SetString(PyExc_ValueError, "_tape: a tape's arrays of inconsistent lengths");
        release_tape(t, 5);
        return -1;
    }
    return 0;
}

/* One point: constants and inputs into the registers r, the tape, the outputs out of them. */
static void
run_tape_point(const tape_arrays *t, double *r, const double *in, double *out)
{
    const int32_t *creg = t->creg.buf, *ireg = t->ireg.buf, *oreg = t->oreg.buf;
    const double *cval = t->cval.buf;
    for (Py_ssize_t k = 0; k < t->nconst; k++) r[creg[k]] = cval[k];
    for (Py_ssize_t k = 0; k < t->nin; k++) r[ireg[k]] = in[k];
#ifdef CG_THREADED
    cg_run_point_threaded(t->code.buf, t->ninstr, r);
#else
    run_point(t->code.buf, t->ninstr, r);
#endif
    for (Py_ssize_t k = 0; k < t->nout; k++) out[k] = r[oreg[k]];
}

/* The one loop over a batch's chunks (run and run_columns): input column k of point p read
   at ((const double *)iptr[k])[p * istep[k]], output column k written at
   ((double *)optr[k])[p * ostep[k]]. r: nregs * CG_LANES doubles, or for one point nregs
   and then nin + nout (the point's inputs and outputs, through run_tape_point: the one-point
   driver, the same bits). Runs without the GIL. */
static void
run_batch(const tape_arrays *t, double *r, Py_ssize_t nregs, const int64_t *iptr,
          const int64_t *istep, const int64_t *optr, const int64_t *ostep, Py_ssize_t npoints)
{
    Py_ssize_t nconst = t->nconst, nin = t->nin, nout = t->nout;
    const int32_t *creg = t->creg.buf, *ireg = t->ireg.buf, *oreg = t->oreg.buf;
    const double *cval = t->cval.buf;
    if (npoints == 1) {
        double *in = r + nregs, *out = in + nin;
        for (Py_ssize_t k = 0; k < nin; k++) in[k] = *(const double *)(uintptr_t)iptr[k];
        run_tape_point(t, r, in, out);
        for (Py_ssize_t k = 0; k < nout; k++) *(double *)(uintptr_t)optr[k] = out[k];
        return;
    }
    for (Py_ssize_t k = 0; k < nconst; k++)
        for (int l = 0; l < CG_LANES; l++) r[(Py_ssize_t)creg[k] * CG_LANES + l] = cval[k];
    for (Py_ssize_t p0 = 0; p0 < npoints; p0 += CG_LANES) {
        int n = npoints - p0 < CG_LANES ? (int)(npoints - p0) : CG_LANES;
        for (Py_ssize_t k = 0; k < nin; k++) {
            const double *x = (const double *)(uintptr_t)iptr[k];
            int64_t step = istep[k];
            double *y = r + (Py_ssize_t)ireg[k] * CG_LANES;
            for (int l = 0; l < n; l++) y[l] = x[(p0 + l) * step];
        }
        run_chunk(t->code.buf, t->ninstr, r, n);
        for (Py_ssize_t k = 0; k < nout; k++) {
            double *y = (double *)(uintptr_t)optr[k];
            int64_t step = ostep[k];
            const double *x = r + (Py_ssize_t)oreg[k] * CG_LANES;
            for (int l = 0; l < n; l++) y[(p0 + l) * step] = x[l];
        }
    }
}

/* The doubles run_batch's r needs: a chunk's registers, or one point's with its inputs and
   outputs. */
static size_t
batch_registers(Py_ssize_t nregs, Py_ssize_t npoints, Py_ssize_t nin, Py_ssize_t nout)
{
    return npoints == 1 ? (size_t)nregs + (size_t)(nin + nout)
                        : (size_t)nregs * (size_t)CG_LANES;
}

/* run(code, nregs, const_regs, const_values, in_regs, inputs, out_regs, outputs, npoints):
   inputs is float64[npoints, len(in_regs)] and outputs float64[npoints, len(out_regs)],
   row-major. */
static PyObject *
tape_run(PyObject *self, PyObject *args)
{
    PyObject *o_code, *o_creg, *o_cval, *o_ireg, *o_in, *o_oreg, *o_out;
    Py_ssize_t nregs, npoints;
    tape_arrays t;
    Py_buffer bin, bout;
    if (!PyArg_ParseTuple(args, "OnOOOOOOn", &o_code, &nregs, &o_creg, &o_cval, &o_ireg,
                          &o_in, &o_oreg, &o_out, &npoints))
        return NULL;
    PyObject *result = NULL;
    if (get_tape(o_code, o_creg, o_cval, o_ireg, o_oreg, nregs, &t) < 0) return NULL;
    if (get_buffer(o_in, &bin, 8, 0, "inputs") < 0) goto f1;
    if (get_buffer(o_out, &bout, 8, 1, "outputs") < 0) goto f2;
    Py_ssize_t nin = t.nin, nout = t.nout;
    if (bin.len / 8 != nin * npoints || bout.len / 8 != nout * npoints) {
        PyErr_SetString(PyExc_ValueError, "_tape.run: arrays of inconsistent lengths");
        goto f3;
    }
    /* the row-major arrays as columns: column k of in at in + k, a row (nin) apart */
    const double *in = bin.buf;
    double *out = bout.buf;
    size_t nr = batch_registers(nregs, npoints, nin, nout);
    double *r = malloc(sizeof(double) * nr + sizeof(int64_t) * 2 * (size_t)(nin + nout));
    if (!r) { PyErr_NoMemory(); goto f3; }
    int64_t *iptr = (int64_t *)(r + nr), *istep = iptr + nin, *optr = istep + nin,
            *ostep = optr + nout;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < nin; k++) {
        iptr[k] = (int64_t)(uintptr_t)(in + k);
        istep[k] = nin;
    }
    for (Py_ssize_t k = 0; k < nout; k++) {
        optr[k] = (int64_t)(uintptr_t)(out + k);
        ostep[k] = nout;
    }
    run_batch(&t, r, nregs, iptr, istep, optr, ostep, npoints);
    Py_END_ALLOW_THREADS
    free(r);
    Py_INCREF(Py_None);
    result = Py_None;
f3: PyBuffer_Release(&bout);
f2: PyBuffer_Release(&bin);
f1: release_tape(&t, 5);
    return result;
}

/* The columns of a batch (run_columns, call_columns): int64 buffers of the addresses of the
   columns' first values (each a double) and of their steps, in doubles, from one point to
   the next (0: one value for every point). The caller holds the arrays they point into. */
typedef struct {
    Py_buffer ptr, step;
    Py_ssize_t n;
} column_arrays;

static int
get_columns(PyObject *o_ptr, PyObject *o_step, column_arrays *c, const char *what)
{
    if (get_buffer(o_ptr, &c->ptr, 8, 0, what) < 0) return -1;
    if (get_buffer(o_step, &c->step, 8, 0, what) < 0) { PyBuffer_Release(&c->ptr); return -1; }
    c->n = c->ptr.len / 8;
    if (c->step.len / 8 != c->n) {
        PyErr_Format(PyExc_ValueError, "_tape: %s: addresses and steps of different lengths",
                     what);
        PyBuffer_Release(&c->step);
        PyBuffer_Release(&c->ptr);
        return -1;
    }
    return 0;
}

static void
release_columns(column_arrays *c)
{
    PyBuffer_Release(&c->step);
    PyBuffer_Release(&c->ptr);
}

/* addresses(arrays) -> bytes: the address of each array's first item (its buffer's buf), as
   native int64s: what a batch's columns are read from and written to (the caller holds the
   arrays). Through NumPy (`a.ctypes.data`) an address costs a microsecond; here a tenth. */
static PyObject *
tape_addresses(PyObject *self, PyObject *arrays)
{
    PyObject *seq = PySequence_Fast(arrays, "_tape.addresses: give a sequence of arrays");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *result = PyBytes_FromStringAndSize(NULL, n * 8);
    if (!result) { Py_DECREF(seq); return NULL; }
    int64_t *at = (int64_t *)PyBytes_AS_STRING(result);
    for (Py_ssize_t k = 0; k < n; k++) {
        Py_buffer view;
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, k), &view, PyBUF_STRIDED_RO) < 0) {
            Py_DECREF(result);
            Py_DECREF(seq);
            return NULL;
        }
        at[k] = (int64_t)(uintptr_t)view.buf;
        PyBuffer_Release(&view);
    }
    Py_DECREF(seq);
    return result;
}

/* run_columns(code, nregs, const_regs, const_values, in_regs, in_ptr, in_step, out_regs,
   out_ptr, out_step, npoints): run_batch, input column k of point p read
   at ((double *)in_ptr[k])[p * in_step[k]] and output column k written at
   ((double *)out_ptr[k])[p * out_step[k]]: a batch with no (npoints, inputs) copy. */
static PyObject *
tape_run_columns(PyObject *self, PyObject *args)
{
    PyObject *o_code, *o_creg, *o_cval, *o_ireg, *o_iptr, *o_istep, *o_oreg, *o_optr, *o_ostep;
    Py_ssize_t nregs, npoints;
    tape_arrays t;
    column_arrays ci, co;
    if (!PyArg_ParseTuple(args, "OnOOOOOOOOn", &o_code, &nregs, &o_creg, &o_cval, &o_ireg,
                          &o_iptr, &o_istep, &o_oreg, &o_optr, &o_ostep, &npoints))
        return NULL;
    PyObject *result = NULL;
    if (get_tape(o_code, o_creg, o_cval, o_ireg, o_oreg, nregs, &t) < 0) return NULL;
    if (get_columns(o_iptr, o_istep, &ci, "input columns") < 0) goto f1;
    if (get_columns(o_optr, o_ostep, &co, "output columns") < 0) goto f2;
    Py_ssize_t nin = t.nin, nout = t.nout;
    if (ci.n != nin || co.n != nout || npoints < 0) {
        PyErr_SetString(PyExc_ValueError, "_tape.run_columns: columns of inconsistent lengths");
        goto f3;
    }
    double *r = malloc(sizeof(double) * batch_registers(nregs, npoints, nin, nout));
    if (!r) { PyErr_NoMemory(); goto f3; }
    Py_BEGIN_ALLOW_THREADS
    run_batch(&t, r, nregs, ci.ptr.buf, ci.step.buf, co.ptr.buf, co.step.buf, npoints);
    Py_END_ALLOW_THREADS
    free(r);
    Py_INCREF(Py_None);
    result = Py_None;
f3: release_columns(&co);
f2: release_columns(&ci);
f1: release_tape(&t, 5);
    return result;
}

/* call_columns(address, in_ptr, in_step, out_ptr, out_step, npoints, threads): run a circuit
   compiled by to_c through its entry point
   int f_eval_columns_threads(const double *const *in, const long *in_step,
                              double *const *out, const long *out_step, long start,
                              long npoints, int threads)
   at address (the columns as run_columns takes them), the GIL released. */
typedef int (*cg_columns_entry)(const double *const *, const long *, double *const *,
                                const long *, long, long, int);

static PyObject *
tape_call_columns(PyObject *self, PyObject *args)
{
    unsigned long long address;
    PyObject *o_iptr, *o_istep, *o_optr, *o_ostep;
    Py_ssize_t npoints;
    int threads;
    column_arrays ci, co;
    if (!PyArg_ParseTuple(args, "KOOOOni", &address, &o_iptr, &o_istep, &o_optr, &o_ostep,
                          &npoints, &threads))
        return NULL;
    if (sizeof(long) != 8 || sizeof(void *) != 8) {
        PyErr_SetString(PyExc_RuntimeError, "_tape.call_columns: needs 64-bit long and pointers");
        return NULL;
    }
    if (get_columns(o_iptr, o_istep, &ci, "input columns") < 0) return NULL;
    if (get_columns(o_optr, o_ostep, &co, "output columns") < 0) {
        release_columns(&ci);
        return NULL;
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = ((cg_columns_entry)(uintptr_t)address)(
        (const double *const *)ci.ptr.buf, (const long *)ci.step.buf,
        (double *const *)co.ptr.buf, (const long *)co.step.buf, 0, (long)npoints, threads);
    Py_END_ALLOW_THREADS
    release_columns(&co);
    release_columns(&ci);
    if (status) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* call(address, inputs, outputs, npoints): run a circuit compiled by to_c, whose entry point
   int f_eval(const double *in, double *out, long npoints) is at address. The same call
   through ctypes costs microseconds (a ctypes object per array); this costs a buffer each. */
typedef int (*cg_entry)(const double *, double *, long);

static PyObject *
tape_call(PyObject *self, PyObject *args)
{
    unsigned long long address;
    PyObject *o_in, *o_out;
    Py_ssize_t npoints;
    Py_buffer bin, bout;
    if (!PyArg_ParseTuple(args, "KOOn", &address, &o_in, &o_out, &npoints)) return NULL;
    if (get_buffer(o_in, &bin, 8, 0, "inputs") < 0) return NULL;
    if (get_buffer(o_out, &bout, 8, 1, "outputs") < 0) { PyBuffer_Release(&bin); return NULL; }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = ((cg_entry)(uintptr_t)address)(bin.buf, bout.buf, (long)npoints);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&bout);
    PyBuffer_Release(&bin);
    if (status) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* The one-point call of a circuit with scalar inputs and outputs (what optimizers and ODE
   solvers make thousands of times), done here so that it costs no NumPy array on the way in or
   out: the arguments are read as doubles and the outputs come back as `scalar` objects
   (numpy.float64), in an `outputs` named tuple (None: the one output alone). An argument
   that is not a float, an int or a `scalar` returns NotImplemented: the caller's general
   binder then converts it or says what is wrong. */
#define CG_POINT_STACK 64

/* One number: a float, a `scalar` or an int within 2**53 into *x (1), else 0. */
static int
point_number(PyObject *a, PyObject *scalar, double *x)
{
    PyTypeObject *t = Py_TYPE(a);
    if (t == &PyFloat_Type || (PyObject *)t == scalar) {
        *x = PyFloat_AS_DOUBLE(a);
        return 1;
    }
    if (t == &PyLong_Type) {
        /* Exact in float64 up to 2**53 in magnitude; anything larger goes to the binder,
           which takes it only where it is a float64 exactly (never a rounded number). */
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(a, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) { PyErr_Clear(); return 0; }
        if (v > 9007199254740992LL || v < -9007199254740992LL) return 0;
        *x = (double)v;
        return 1;
    }
    return 0;
}

static int
point_inputs(PyObject *args, PyObject *scalar, double *in, Py_ssize_t nin)
{
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) != nin) return 0;
    for (Py_ssize_t k = 0; k < nin; k++)
        if (!point_number(PyTuple_GET_ITEM(args, k), scalar, in + k)) return 0;
    return 1;
}

/* Whether `scalar` objects can be made as CPython makes a float subclass's (float_subtype_new:
   tp_alloc, then the value): a subtype of float with float's layout and nothing more, as
   numpy.float64 is (its value where a float's is; point_inputs reads it so too). Making one
   so costs a tenth of calling the type (17 outputs: 0.2 against 2 us). */
static int
scalar_is_float_layout(PyObject *scalar)
{
    if (!PyType_Check(scalar)) return 0;
    PyTypeObject *t = (PyTypeObject *)scalar;
    return PyType_IsSubtype(t, &PyFloat_Type) && t->tp_basicsize == sizeof(PyFloatObject) &&
           t->tp_itemsize == 0 && t->tp_alloc != NULL && t->tp_dictoffset == 0;
}

static PyObject *
make_scalar(double x, PyObject *scalar, int fast)
{
    if (fast) {
        PyObject *v = ((PyTypeObject *)scalar)->tp_alloc((PyTypeObject *)scalar, 0);
        if (v) ((PyFloatObject *)v)->ob_fval = x;
        return v;
    }
    PyObject *f = PyFloat_FromDouble(x);
    if (!f) return NULL;
    PyObject *v = PyObject_CallOneArg(scalar, f);
    Py_DECREF(f);
    return v;
}

static PyObject *
point_outputs(const double *out, Py_ssize_t nout, PyObject *scalar, PyObject *type)
{
    int fast = scalar_is_float_layout(scalar);
    if (type == Py_None) {
        if (nout != 1) {
            PyErr_SetString(PyExc_ValueError, "_tape: one output without a named tuple");
            return NULL;
        }
        return make_scalar(out[0], scalar, fast);
    }
    PyObject *values = PyTuple_New(nout);
    if (!values) return NULL;
    for (Py_ssize_t k = 0; k < nout; k++) {
        PyObject *v = make_scalar(out[k], scalar, fast);
        if (!v) { Py_DECREF(values); return NULL; }
        PyTuple_SET_ITEM(values, k, v);
    }
    /* tuple.__new__(type, values): a named tuple is a tuple subclass with no __init__. */
    PyObject *pair = PyTuple_Pack(1, values);
    Py_DECREF(values);
    if (!pair) return NULL;
    PyObject *result = PyTuple_Type.tp_new((PyTypeObject *)type, pair, NULL);
    Py_DECREF(pair);
    return result;
}

/* point_arguments(args, shapes, flat, ndarray, scalar) -> bool: one point's arguments, each
   given once, into flat (float64[sum of the shapes' sizes]) where every argument is what the
   one-point path takes as it is: for a scalar input (shape ()) a float, a `scalar`
   (numpy.float64) or an int within 2**53; for another, an `ndarray` (exactly that type) of
   float64 ("d"), C-contiguous, of exactly the declared shape. Anything else (another dtype or
   shape, a batch, a view with strides, a subclass) returns False and leaves the call to the
   binder, which converts it or refuses it by name; nothing is rounded or guessed here. */
static PyObject *
tape_point_arguments(PyObject *self, PyObject *args)
{
    PyObject *o_args, *shapes, *o_flat, *ndarray, *scalar;
    if (!PyArg_ParseTuple(args, "O!O!OOO", &PyTuple_Type, &o_args, &PyTuple_Type, &shapes,
                          &o_flat, &ndarray, &scalar))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(shapes);
    if (PyTuple_GET_SIZE(o_args) != n) Py_RETURN_FALSE;
    Py_buffer bflat;
    if (get_buffer(o_flat, &bflat, 8, 1, "flat") < 0) return NULL;
    double *flat = bflat.buf;
    Py_ssize_t at = 0, cap = bflat.len / 8;
    int ok = 1;
    for (Py_ssize_t k = 0; k < n && ok; k++) {
        PyObject *a = PyTuple_GET_ITEM(o_args, k), *shape = PyTuple_GET_ITEM(shapes, k);
        if (!PyTuple_Check(shape)) {
            PyErr_SetString(PyExc_TypeError, "_tape.point_arguments: shapes are tuples");
            PyBuffer_Release(&bflat);
            return NULL;
        }
        Py_ssize_t ndim = PyTuple_GET_SIZE(shape);
        if (ndim == 0) {
            ok = at < cap && point_number(a, scalar, flat + at);
            at++;
            continue;
        }
        if ((PyObject *)Py_TYPE(a) != ndarray) { ok = 0; break; }
        Py_buffer b;
        if (PyObject_GetBuffer(a, &b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
            PyErr_Clear();  /* (strides: the binder copies it) */
            ok = 0;
            break;
        }
        ok = b.itemsize == 8 && b.format && strcmp(b.format, "d") == 0 && b.ndim == ndim;
        for (Py_ssize_t d = 0; d < ndim && ok; d++) {
            Py_ssize_t want = PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, d));
            if (want == -1 && PyErr_Occurred()) {
                PyBuffer_Release(&b);
                PyBuffer_Release(&bflat);
                return NULL;
            }
            ok = b.shape[d] == want;
        }
        Py_ssize_t size = b.len / 8;
        if (ok && at + size <= cap) {
            memcpy(flat + at, b.buf, (size_t)size * 8);
            at += size;
        } else {
            ok = 0;
        }
        PyBuffer_Release(&b);
    }
    PyBuffer_Release(&bflat);
    if (ok && at != cap) ok = 0;
    return PyBool_FromLong(ok);
}

/* call_point(address, args, nin, nout, scalar, outputs): a to_c entry point of nin inputs at
   one point; any other number of arguments returns NotImplemented (the binder says what is
   wrong: the entry point itself would read past them). */
static PyObject *
tape_call_point(PyObject *self, PyObject *args)
{
    unsigned long long address;
    PyObject *o_args, *scalar, *type;
    Py_ssize_t nin, nout;
    if (!PyArg_ParseTuple(args, "KOnnOO", &address, &o_args, &nin, &nout, &scalar, &type))
        return NULL;
    if (nin < 0 || nout < 0 || nin > CG_POINT_STACK || nout > CG_POINT_STACK)
        Py_RETURN_NOTIMPLEMENTED;
    double in[CG_POINT_STACK + 1], out[CG_POINT_STACK + 1];
    if (!point_inputs(o_args, scalar, in, nin)) Py_RETURN_NOTIMPLEMENTED;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = ((cg_entry)(uintptr_t)address)(in, out, 1);
    Py_END_ALLOW_THREADS
    if (status) return PyErr_NoMemory();
    return point_outputs(out, nout, scalar, type);
}

/* run_point(code, nregs, const_regs, const_values, in_regs, out_regs, args, scalar, outputs):
   a tape at one point (see call_point). */
static PyObject *
tape_run_point(PyObject *self, PyObject *args)
{
    PyObject *o_code, *o_creg, *o_cval, *o_ireg, *o_oreg, *o_args, *scalar, *type;
    Py_ssize_t nregs;
    tape_arrays t;
    if (!PyArg_ParseTuple(args, "OnOOOOOOO", &o_code, &nregs, &o_creg, &o_cval, &o_ireg,
                          &o_oreg, &o_args, &scalar, &type))
        return NULL;
    if (get_tape(o_code, o_creg, o_cval, o_ireg, o_oreg, nregs, &t) < 0) return NULL;
    PyObject *result = Py_NotImplemented;
    double in[CG_POINT_STACK + 1], out[CG_POINT_STACK + 1], small[256];
    if (t.nin > CG_POINT_STACK || t.nout > CG_POINT_STACK ||
        !point_inputs(o_args, scalar, in, t.nin)) {
        release_tape(&t, 5);
        Py_INCREF(result);
        return result;
    }
    double *r = nregs <= 256 ? small : malloc(sizeof(double) * (size_t)nregs);
    if (!r) { release_tape(&t, 5); return PyErr_NoMemory(); }
    Py_BEGIN_ALLOW_THREADS
    run_tape_point(&t, r, in, out);
    Py_END_ALLOW_THREADS
    if (r != small) free(r);
    result = point_outputs(out, t.nout, scalar, type);
    release_tape(&t, 5);
    return result;
}

/* kernel(address, g, meta, arrays): run kernel g of a to_fused library, whose entry point
   void cg_kernel(int g, const long *meta, double *const *ptr) is at address: meta an int64
   buffer, arrays a tuple of float64 arrays (any strides: the kernel reads meta's), the
   operands first, then the results (written). Through ctypes this cost ~10 us a call here
   (.ctypes.data of each array, the pointer array, ctypes' call), most of a small kernel. */
#define CG_KERNEL_ARRAYS 64  /* arrays held on the stack; more (a large group): the heap */
typedef void (*cg_kernel_entry)(int, const long *, double *const *);

static PyObject *
tape_kernel(PyObject *self, PyObject *args)
{
    unsigned long long address;
    int g, nout;
    PyObject *o_meta, *o_arrays, *result = NULL;
    Py_buffer bmeta, views_stack[CG_KERNEL_ARRAYS], *views = views_stack;
    double *ptr_stack[CG_KERNEL_ARRAYS], **ptr = ptr_stack;
    if (!PyArg_ParseTuple(args, "KiOO!i", &address, &g, &o_meta, &PyTuple_Type, &o_arrays,
                          &nout))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(o_arrays), k = 0;
    if (nout > n || nout < 0) {
        PyErr_SetString(PyExc_ValueError, "_tape.kernel: nout must be 0 .. len(arrays)");
        return NULL;
    }
    if (get_buffer(o_meta, &bmeta, 8, 0, "meta") < 0) return NULL;
    if (n > CG_KERNEL_ARRAYS) {
        views = PyMem_Malloc(n * sizeof(Py_buffer));
        ptr = PyMem_Malloc(n * sizeof(double *));
        if (!views || !ptr) {
            PyErr_NoMemory();
            goto done;
        }
    }
    for (k = 0; k < n; k++) {
        int writable = k >= n - nout;
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(o_arrays, k), &views[k],
                               PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
            goto done;
        if (views[k].itemsize != 8 || !views[k].format || strcmp(views[k].format, "d")) {
            PyErr_SetString(PyExc_TypeError, "_tape.kernel: float64 arrays only");
            PyBuffer_Release(&views[k]);
            goto done;
        }
        ptr[k] = views[k].buf;
    }
    Py_BEGIN_ALLOW_THREADS
    ((cg_kernel_entry)(uintptr_t)address)(g, bmeta.buf, ptr);
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    if (views) while (k-- > 0) PyBuffer_Release(&views[k]);
    if (views != views_stack) PyMem_Free(views);
    if (ptr != ptr_stack) PyMem_Free(ptr);
    PyBuffer_Release(&bmeta);
    return result;
}

static PyMethodDef tape_methods[] = {
    {"kernel", tape_kernel, METH_VARARGS, "Run a to_fused kernel (see the C source)."},
    {"arguments", tape_arguments, METH_O, "Argument tuples as int32 rows (see the C source)."},
    {"call", tape_call, METH_VARARGS, "Call a to_c entry point (see the C source)."},
    {"call_point", tape_call_point, METH_VARARGS, "A to_c entry point at one point."},
    {"point_arguments", tape_point_arguments, METH_VARARGS,
     "One point's arguments into a flat float64 array (see the C source)."},
    {"run_point", tape_run_point, METH_VARARGS, "A tape at one point (see the C source)."},
    {"allocate", tape_allocate, METH_VARARGS, "Registers by liveness (see the C source)."},
    {"run", tape_run, METH_VARARGS, "Run a tape at points (see the C source)."},
    {"addresses", tape_addresses, METH_O, "The address of each array's data (see the C source)."},
    {"run_columns", tape_run_columns, METH_VARARGS,
     "Run a tape at points, each column through an address and a step (see the C source)."},
    {"call_columns", tape_call_columns, METH_VARARGS,
     "Call a to_c columns entry point (see the C source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef tape_module = {
    PyModuleDef_HEAD_INIT, "_tape", "circuitgrad's tape evaluator (see circuitgrad.lower.tape).",
    -1, tape_methods,
};

PyMODINIT_FUNC
PyInit__tape(void)
{
    PyObject *m = PyModule_Create(&tape_module);
    if (!m) return NULL;
    PyObject *names = PyTuple_New(CG_OP_COUNT);
    if (!names) { Py_DECREF(m); return NULL; }
    for (int k = 0; k < CG_OP_COUNT; k++)
        PyTuple_SET_ITEM(names, k, PyUnicode_FromString(CG_OP_NAMES[k]));
    if (PyModule_AddObject(m, "OPS", names) < 0) { Py_DECREF(names); Py_DECREF(m); return NULL; }
    PyModule_AddIntConstant(m, "LANES", CG_LANES);
    /* the hash of the sources it was built from (setup.py: circuitgrad/lower/tape_sources.py) */
    PyModule_AddStringConstant(m, "SOURCE_HASH", CG_SOURCE_HASH);
    return m;
}
