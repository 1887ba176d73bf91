/* bcryptprimitives.dll for Wine 8, which lacks it: Rust's standard library (1.78 and later)
 * takes its random bytes from ProcessPrng. This forwards to RtlGenRandom
 * (advapi32!SystemFunction036), which Wine has. Used only to run the Windows agent and its
 * tests under Wine; real Windows ships its own bcryptprimitives.dll.
 *
 * Built by .ci/run: x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll
 *                   bcryptprimitives.c bcryptprimitives.def -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
