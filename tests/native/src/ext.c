/* One extension-module source for every fixture; build.sh picks the imports
 * with USE_* macros so each fixture's symbol table is exactly what its test
 * expects, and MODNAME so PyInit_<name> matches the output file name. */
#include "pyapi.h"

#ifndef MODNAME
#  error "build.sh passes -DMODNAME=<module name>"
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define STR_(a) #a
#define STR(a) STR_(a)

#ifdef USE_ARC4RANDOM
#  include <stdlib.h> /* host glibc: this one fixture exists for its verneed */
#endif

#ifdef USE_VENDORED
#  if defined(_WIN32)
__declspec(dllimport)
#  endif
int vendored_add(int a, int b);
#endif

/* Results are parked here: a volatile store can never be dropped, so neither
 * can the call that feeds it, whatever the optimiser decides about the rest. */
static void *volatile keep;

#ifdef USE_PARSE
static PyObject *add(PyObject *self, PyObject *args)
{
    long a, b;
    (void)self;
    if (!PyArg_ParseTuple(args, "ll", &a, &b))
        return 0;
    return PyLong_FromLong(a + b);
}
#endif

#ifdef USE_CREATE
static PyMethodDef methods[] = {
#  ifdef USE_PARSE
    {"add", add, METH_VARARGS, 0},
#  endif
    {0, 0, 0, 0},
};

static PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, STR(MODNAME), 0, -1, methods, 0, 0, 0, 0,
};
#endif

#ifdef OWN_EXPORTS
/* Py-prefixed names defined by the extension itself: a checker must see these
 * as definitions (a warning at most), not as stable-ABI imports. */
FIXTURE_EXPORT int _PyOwn_Helper(int x)
{
    return x * 3 + 1;
}

FIXTURE_EXPORT PyObject *PyOwn_Parse(long v)
{
    return PyLong_FromLong(_PyOwn_Helper((int)v));
}
#endif

PyMODINIT_FUNC CAT(PyInit_, MODNAME)(void)
{
    long seed = 42;
#ifdef USE_ARC4RANDOM
    seed = (long)(arc4random() & 0xff);
#endif
#ifdef USE_VENDORED
    seed = vendored_add((int)seed, 1);
#endif
#ifdef USE_LONG
    keep = PyLong_FromLong(seed);
#endif
#ifdef USE_DEALLOC
    /* What an inlined Py_DECREF compiles to under the limited API. */
    if (keep)
        _Py_Dealloc((PyObject *)keep);
#endif
#ifdef USE_UNICODE_NEW
    keep = PyUnicode_New(0, 127);
#endif
#ifdef USE_UTF8_AND_SIZE
    {
        Py_ssize_t n = 0;
        keep = (void *)PyUnicode_AsUTF8AndSize((PyObject *)keep, &n);
    }
#endif
#ifdef USE_WINDOWS_ERR
    keep = PyErr_SetFromWindowsErr(0);
#endif
#ifdef USE_CREATE
    return PyModule_Create2(&moddef, PYTHON_ABI_VERSION);
#else
    return (PyObject *)keep;
#endif
}
