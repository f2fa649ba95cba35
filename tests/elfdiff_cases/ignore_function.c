/*
 * KPATCH_IGNORE_FUNCTION. PATCHED changes demo_show and, as a side effect,
 * the constant that demo_side_effect reports; SIDE_EFFECT_ONLY changes only
 * that constant. The objects have no line tables, so elfdiff cannot tell the
 * constant for a moved line number. IGNORE marks
 * demo_side_effect, IGNORE_UNCHANGED marks demo_unchanged, and IGNORE_NEW
 * marks a function that only the patch has.
 */
#include "kpatch-macros.h"

extern void report_line(int line);

#if defined(PATCHED) || defined(SIDE_EFFECT_ONLY)
#define SIDE_EFFECT_LINE 41
#else
#define SIDE_EFFECT_LINE 40
#endif

int demo_show(int x)
{
#ifdef PATCHED
	return x * 2;
#else
	return x;
#endif
}

static void __attribute__((noinline)) demo_side_effect(void)
{
	report_line(SIDE_EFFECT_LINE);
}

int demo_unchanged(int x)
{
	demo_side_effect();
	return x - 1;
}

#ifdef IGNORE_NEW
int demo_added(int x)
{
	return x + 3;
}
KPATCH_IGNORE_FUNCTION(demo_added);
#endif

#ifdef IGNORE
KPATCH_IGNORE_FUNCTION(demo_side_effect);
#endif
#ifdef IGNORE_UNCHANGED
KPATCH_IGNORE_FUNCTION(demo_unchanged);
#endif
