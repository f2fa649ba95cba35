/*
 * KPATCH_STATIC_CALL. PATCHED calls the static call demo_hook through its
 * key, the way a patch calls one whose key it cannot reach at load time.
 */
#include "kpatch-macros.h"

/* What DECLARE_STATIC_CALL(demo_hook, ...) declares. */
extern struct static_call_key __SCK__demo_hook;
extern int __SCT__demo_hook(int x);

int demo_show(int x)
{
#ifdef PATCHED
	return KPATCH_STATIC_CALL(demo_hook)(x) + 1;
#else
	return x;
#endif
}
