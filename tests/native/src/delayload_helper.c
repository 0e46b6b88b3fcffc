/* lld-link's delay-load thunks call __delayLoadHelper2, which normally comes
 * from the MSVC CRT's delayimp.lib. There is no CRT here, and the fixture is
 * never loaded, so a helper that resolves nothing is enough to link. */
typedef void (*farproc)(void);

farproc __delayLoadHelper2(const void *descriptor, farproc *iat_entry)
{
    (void)descriptor;
    return *iat_entry;
}
