/*
 * KPATCH_IGNORE_SECTION. PATCHED changes demo_show and an entry of a table in
 * a section of its own, which no changed function refers to. IGNORE marks the
 * table's section; IGNORE_MISSING marks a section that the object lacks.
 */
#include "kpatch-macros.h"

#ifdef PATCHED
int demo_table[2] __section(".demo.table") = { 1, 3 };
#else
int demo_table[2] __section(".demo.table") = { 1, 2 };
#endif

int demo_show(int x)
{
#ifdef PATCHED
	return x * 2;
#else
	return x;
#endif
}

#ifdef IGNORE
KPATCH_IGNORE_SECTION(".demo.table");
#endif
#ifdef IGNORE_MISSING
KPATCH_IGNORE_SECTION(".demo.missing");
#endif
