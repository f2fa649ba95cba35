/*
 * KPATCH_IGNORE_FUNCTION on an __init function, which shares .init.text
 * with other init code. PATCHED changes demo_show and demo_init; IGNORE
 * marks demo_init.
 */
#include "kpatch-macros.h"

#define __init __attribute__((__section__(".init.text")))

extern int register_entry(const char *name, int mode);

int demo_show(int x)
{
#ifdef PATCHED
	return x * 2;
#else
	return x;
#endif
}

int __init demo_init(void)
{
#ifdef PATCHED
	return register_entry("demo", 0444);
#else
	return register_entry("demo", 0);
#endif
}

int __init demo_other_init(void)
{
	return register_entry("other", 1);
}

#ifdef IGNORE
KPATCH_IGNORE_FUNCTION(demo_init);
#endif
