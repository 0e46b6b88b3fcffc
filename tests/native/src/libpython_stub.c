/* Link-time stand-in for libpython3.11.so.1.0: it only has to carry the
 * SONAME and resolve the one symbol, so the extension records DT_NEEDED on it.
 * Never shipped in OUTDIR. */
typedef struct _object PyObject;
PyObject *PyLong_FromLong(long v)
{
    (void)v;
    return 0;
}
