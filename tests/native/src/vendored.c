/* Stands in for a library a repair tool grafts into the wheel (auditwheel's
 * <pkg>.libs, delocate's .dylibs, delvewheel's <pkg>.libs). */
#if defined(_WIN32)
#  define VENDORED_API __declspec(dllexport)
#else
#  define VENDORED_API __attribute__((visibility("default")))
#endif

VENDORED_API int vendored_add(int a, int b)
{
    return a + b;
}
