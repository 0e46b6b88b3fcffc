/* The slice of the CPython C API the fixtures call. No CPython headers exist
 * on the build hosts, and the fixtures are only ever parsed by pipwall, never
 * imported, so declarations are all that is needed: the symbols stay
 * undefined and show up as imports, exactly as in a real extension. */
#ifndef PIPWALL_FIXTURE_PYAPI_H
#define PIPWALL_FIXTURE_PYAPI_H

/* A compiler builtin instead of <stdint.h>: the cross targets have no libc
 * headers at all. */
typedef __INTPTR_TYPE__ Py_ssize_t;
typedef struct _object PyObject;

#if defined(_WIN32)
/* dllimport makes calls go through __imp_ pointers, which is what lets the
 * linker route them through the ordinary or the delay-load import table. */
#  define PyAPI_FUNC(rt) __declspec(dllimport) rt
#  define PyMODINIT_FUNC __declspec(dllexport) PyObject *
#  define FIXTURE_EXPORT __declspec(dllexport)
#else
#  define PyAPI_FUNC(rt) rt
#  define PyMODINIT_FUNC __attribute__((visibility("default"))) PyObject *
#  define FIXTURE_EXPORT __attribute__((visibility("default")))
#endif

typedef PyObject *(*PyCFunction)(PyObject *, PyObject *);

typedef struct PyMethodDef {
    const char *ml_name;
    PyCFunction ml_meth;
    int ml_flags;
    const char *ml_doc;
} PyMethodDef;

/* Field-for-field the 3.x layout, so the data section looks like the real
 * thing to anyone who disassembles a fixture. */
typedef struct PyModuleDef_Base {
    Py_ssize_t ob_refcnt;
    void *ob_type;
    PyObject *(*m_init)(void);
    Py_ssize_t m_index;
    PyObject *m_copy;
} PyModuleDef_Base;

typedef struct PyModuleDef {
    PyModuleDef_Base m_base;
    const char *m_name;
    const char *m_doc;
    Py_ssize_t m_size;
    PyMethodDef *m_methods;
    void *m_slots;
    void *m_traverse;
    void *m_clear;
    void *m_free;
} PyModuleDef;

#define PyModuleDef_HEAD_INIT {1, 0, 0, 0, 0}
#define PYTHON_ABI_VERSION 3
#define METH_VARARGS 0x0001

PyAPI_FUNC(PyObject *) PyModule_Create2(PyModuleDef *def, int apiver);
PyAPI_FUNC(PyObject *) PyLong_FromLong(long v);
PyAPI_FUNC(void) _Py_Dealloc(PyObject *op);
PyAPI_FUNC(int) PyArg_ParseTuple(PyObject *args, const char *format, ...);
PyAPI_FUNC(PyObject *) PyUnicode_New(Py_ssize_t size, unsigned int maxchar);
PyAPI_FUNC(const char *) PyUnicode_AsUTF8AndSize(PyObject *s, Py_ssize_t *size);
PyAPI_FUNC(PyObject *) PyErr_SetFromWindowsErr(int ierr);

#endif
