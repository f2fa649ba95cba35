/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Records that the diff object carries and the hook reads at module load:
 * elfdiff writes .kpatch.funcs, and kpatch-macros.h puts callback records in
 * the patched source. The layouts match kpatch's intermediate sections, so
 * objects from either tool can be linked into this template.
 */
#ifndef _KPATCH_PATCH_H_
#define _KPATCH_PATCH_H_

/* One entry of .kpatch.funcs: a changed function and where it came from. */
struct kpatch_patch_func {
	unsigned long new_addr;
	unsigned long new_size;
	unsigned long old_addr;
	unsigned long old_size;
	unsigned long sympos;
	char *name;
	char *objname;
};

struct klp_object;

/*
 * One entry of .kpatch.callbacks.<kind>: a callback and the object it is for.
 * The patch source leaves objname NULL; elfdiff adds a relocation that points
 * it at the name of the object the source file belongs to ("vmlinux" or a
 * module name).
 */
struct kpatch_pre_patch_callback {
	int (*callback)(struct klp_object *obj);
	char *objname;
};

struct kpatch_post_patch_callback {
	void (*callback)(struct klp_object *obj);
	char *objname;
};

struct kpatch_pre_unpatch_callback {
	void (*callback)(struct klp_object *obj);
	char *objname;
};

struct kpatch_post_unpatch_callback {
	void (*callback)(struct klp_object *obj);
	char *objname;
};

#endif /* _KPATCH_PATCH_H_ */
