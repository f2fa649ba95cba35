// SPDX-License-Identifier: GPL-2.0
/*
 * Module init of every patch module: turns the records that elfdiff left in
 * the .kpatch.* sections into klp_patch, klp_object and klp_func arrays and
 * registers them with the kernel's livepatch core.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "kpatch-patch.h"

#ifndef KPATCH_REPLACE
#define KPATCH_REPLACE 1
#endif

extern struct kpatch_patch_func __kpatch_funcs[], __kpatch_funcs_end[];
extern struct kpatch_pre_patch_callback __kpatch_callbacks_pre_patch[],
	__kpatch_callbacks_pre_patch_end[];
extern struct kpatch_post_patch_callback __kpatch_callbacks_post_patch[],
	__kpatch_callbacks_post_patch_end[];
extern struct kpatch_pre_unpatch_callback __kpatch_callbacks_pre_unpatch[],
	__kpatch_callbacks_pre_unpatch_end[];
extern struct kpatch_post_unpatch_callback __kpatch_callbacks_post_unpatch[],
	__kpatch_callbacks_post_unpatch_end[];

static struct klp_patch *lpatch;
static struct klp_object *lobjs;
static const char **objnames;
static int nr_objs;

/* Return the index of @objname in objnames[], adding it when it is new. */
static int object_index(const char *objname)
{
	int i;

	for (i = 0; i < nr_objs; i++)
		if (!strcmp(objnames[i], objname))
			return i;
	objnames[nr_objs] = objname;
	return nr_objs++;
}

static void free_objects(void)
{
	int i;

	if (lobjs)
		for (i = 0; i < nr_objs; i++)
			kfree(lobjs[i].funcs);
	kfree(lobjs);
	kfree(objnames);
	kfree(lpatch);
	lobjs = NULL;
	objnames = NULL;
	lpatch = NULL;
	nr_objs = 0;
}

static int fill_funcs(int obj)
{
	struct kpatch_patch_func *f;
	struct klp_func *funcs;
	int count = 0, i = 0;

	for (f = __kpatch_funcs; f < __kpatch_funcs_end; f++)
		if (object_index(f->objname) == obj)
			count++;

	/* The livepatch core wants a funcs array, possibly with only its terminator. */
	funcs = kcalloc(count + 1, sizeof(*funcs), GFP_KERNEL);
	if (!funcs)
		return -ENOMEM;
	for (f = __kpatch_funcs; f < __kpatch_funcs_end; f++) {
		if (object_index(f->objname) != obj)
			continue;
		funcs[i].old_name = f->name;
		funcs[i].new_func = (void *)f->new_addr;
		funcs[i].old_sympos = f->sympos;
		i++;
	}
	lobjs[obj].funcs = funcs;
	lobjs[obj].name = strcmp(objnames[obj], "vmlinux") ? objnames[obj] : NULL;
	return 0;
}

#define for_each_callback(cb, kind) \
	for (cb = __kpatch_callbacks_##kind; cb < __kpatch_callbacks_##kind##_end; cb++)

static void collect_object_names(void)
{
	struct kpatch_patch_func *f;
	struct kpatch_pre_patch_callback *pre_patch;
	struct kpatch_post_patch_callback *post_patch;
	struct kpatch_pre_unpatch_callback *pre_unpatch;
	struct kpatch_post_unpatch_callback *post_unpatch;

	for (f = __kpatch_funcs; f < __kpatch_funcs_end; f++)
		object_index(f->objname);
	for_each_callback(pre_patch, pre_patch)
		object_index(pre_patch->objname);
	for_each_callback(post_patch, post_patch)
		object_index(post_patch->objname);
	for_each_callback(pre_unpatch, pre_unpatch)
		object_index(pre_unpatch->objname);
	for_each_callback(post_unpatch, post_unpatch)
		object_index(post_unpatch->objname);
}

/* struct klp_callbacks has one callback of each kind per object. */
static int check_callback_free(bool taken, const char *kind, const char *objname)
{
	if (!taken)
		return 0;
	pr_err("two %s callbacks for object %s; an object can have one of each kind\n",
	       kind, objname);
	return -EINVAL;
}

static int attach_callbacks(void)
{
	struct kpatch_pre_patch_callback *pre_patch;
	struct kpatch_post_patch_callback *post_patch;
	struct kpatch_pre_unpatch_callback *pre_unpatch;
	struct kpatch_post_unpatch_callback *post_unpatch;
	struct klp_callbacks *c;

	for_each_callback(pre_patch, pre_patch) {
		c = &lobjs[object_index(pre_patch->objname)].callbacks;
		if (check_callback_free(c->pre_patch, "pre-patch", pre_patch->objname))
			return -EINVAL;
		c->pre_patch = pre_patch->callback;
	}
	for_each_callback(post_patch, post_patch) {
		c = &lobjs[object_index(post_patch->objname)].callbacks;
		if (check_callback_free(c->post_patch, "post-patch", post_patch->objname))
			return -EINVAL;
		c->post_patch = post_patch->callback;
	}
	for_each_callback(pre_unpatch, pre_unpatch) {
		c = &lobjs[object_index(pre_unpatch->objname)].callbacks;
		if (check_callback_free(c->pre_unpatch, "pre-unpatch", pre_unpatch->objname))
			return -EINVAL;
		c->pre_unpatch = pre_unpatch->callback;
	}
	for_each_callback(post_unpatch, post_unpatch) {
		c = &lobjs[object_index(post_unpatch->objname)].callbacks;
		if (check_callback_free(c->post_unpatch, "post-unpatch", post_unpatch->objname))
			return -EINVAL;
		c->post_unpatch = post_unpatch->callback;
	}
	return 0;
}

static int __init livepatch_init(void)
{
	size_t max_objs = (__kpatch_funcs_end - __kpatch_funcs) +
		(__kpatch_callbacks_pre_patch_end - __kpatch_callbacks_pre_patch) +
		(__kpatch_callbacks_post_patch_end - __kpatch_callbacks_post_patch) +
		(__kpatch_callbacks_pre_unpatch_end - __kpatch_callbacks_pre_unpatch) +
		(__kpatch_callbacks_post_unpatch_end - __kpatch_callbacks_post_unpatch);
	int i, ret = -ENOMEM;

	objnames = kcalloc(max_objs + 1, sizeof(*objnames), GFP_KERNEL);
	lpatch = kzalloc(sizeof(*lpatch), GFP_KERNEL);
	if (!objnames || !lpatch)
		goto err;
	collect_object_names();

	/* One extra, zeroed klp_object ends the array. */
	lobjs = kcalloc(nr_objs + 1, sizeof(*lobjs), GFP_KERNEL);
	if (!lobjs)
		goto err;
	for (i = 0; i < nr_objs; i++) {
		ret = fill_funcs(i);
		if (ret)
			goto err;
	}
	ret = attach_callbacks();
	if (ret)
		goto err;

	lpatch->mod = THIS_MODULE;
	lpatch->objs = lobjs;
	lpatch->replace = KPATCH_REPLACE;
	ret = klp_enable_patch(lpatch);
	if (ret)
		goto err;
	return 0;
err:
	free_objects();
	return ret;
}

static void __exit livepatch_exit(void)
{
	/* The livepatch core has released the patch before the module can go. */
	free_objects();
}

module_init(livepatch_init);
module_exit(livepatch_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
