/*
 * Callback marks. The patched build adds a post-patch and a pre-unpatch
 * callback; with PATCHED it also changes demo_show, with CALLBACKS_ONLY it
 * changes no function of the original.
 */
#include "kpatch-macros.h"

extern int nr_hidden;

int demo_show(int x)
{
#ifdef PATCHED
	return x + nr_hidden + 1;
#else
	return x + nr_hidden;
#endif
}

#if defined(PATCHED) || defined(CALLBACKS_ONLY)
static void demo_post_patch(struct klp_object *obj)
{
	nr_hidden++;
}
KPATCH_POST_PATCH_CALLBACK(demo_post_patch);

static void demo_pre_unpatch(struct klp_object *obj)
{
	nr_hidden--;
}
KPATCH_PRE_UNPATCH_CALLBACK(demo_pre_unpatch);
#endif
