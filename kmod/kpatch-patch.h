/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Records that elfdiff writes into the diff object and the hook reads at
 * module load. The layouts match kpatch's intermediate sections, so objects
 * from either tool can be linked into this template.
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

/* One entry of .kpatch.callbacks.*: a callback and the object it is for. */
struct kpatch_pre_patch_callback {
	int (*callback)(void *obj);
	char *objname;
};

struct kpatch_post_patch_callback {
	void (*callback)(void *obj);
	char *objname;
};

struct kpatch_pre_unpatch_callback {
	void (*callback)(void *obj);
	char *objname;
};

struct kpatch_post_unpatch_callback {
	void (*callback)(void *obj);
	char *objname;
};

#endif /* _KPATCH_PATCH_H_ */
