/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Marks for patch authors, under kpatch's macro names so that patches written
 * for kpatch-build with these marks build unchanged. A patch includes this
 * header by its bare name, `#include "kpatch-macros.h"`: the patched compile
 * copies kmod/'s headers into the include folder of the build.
 *
 * Each mark is a small variable in a section that elfdiff reads. Callback
 * records (.kpatch.callbacks.<kind>) go into the patch module; the ignore
 * lists (.kpatch.ignore.sections, .kpatch.ignore.functions) never do.
 *
 * The include can take the place of a blank line next to the code that uses
 * it, so that the functions below keep their line numbers.
 */
#ifndef _KPATCH_MACROS_H_
#define _KPATCH_MACROS_H_

#include <linux/compiler.h>
#include <linux/jiffies.h>
#include <linux/livepatch.h>
#include <linux/printk.h>
#include <linux/static_call_types.h>

#include "kpatch-patch.h"

/*
 * Livepatch callbacks for the object (vmlinux or a module) that the source
 * file containing the mark belongs to. elfdiff carries the record and the
 * callback function into the patch module and fills in the object name. The
 * patch module passes the callbacks to the livepatch core in struct
 * klp_callbacks. Documentation/livepatch/callbacks.rst describes when each
 * one runs. A pre-patch callback that returns an error stops the patch from
 * being enabled, or a patched module from loading while the patch is
 * enabled.
 *
 * A source file can have one callback of each kind: a second one is a
 * redefinition error. Callbacks of one kind for the same object from two
 * source files make the patch module fail to load.
 */
#define KPATCH_PRE_PATCH_CALLBACK(_fn)						\
	static struct kpatch_pre_patch_callback kpatch_pre_patch_data		\
	__section(".kpatch.callbacks.pre_patch") __used = {			\
		.callback = _fn,						\
		.objname = NULL,						\
	};

#define KPATCH_POST_PATCH_CALLBACK(_fn)						\
	static struct kpatch_post_patch_callback kpatch_post_patch_data	\
	__section(".kpatch.callbacks.post_patch") __used = {			\
		.callback = _fn,						\
		.objname = NULL,						\
	};

#define KPATCH_PRE_UNPATCH_CALLBACK(_fn)					\
	static struct kpatch_pre_unpatch_callback kpatch_pre_unpatch_data	\
	__section(".kpatch.callbacks.pre_unpatch") __used = {			\
		.callback = _fn,						\
		.objname = NULL,						\
	};

#define KPATCH_POST_UNPATCH_CALLBACK(_fn)					\
	static struct kpatch_post_unpatch_callback kpatch_post_unpatch_data	\
	__section(".kpatch.callbacks.post_unpatch") __used = {			\
		.callback = _fn,						\
		.objname = NULL,						\
	};

/*
 * Count a section that changed only as a side effect as unchanged, for
 * example a table that a changed macro rebuilt. _sec is the section name as
 * a string literal, such as "_ftrace_events". elfdiff stops with an error
 * when the patched object has no such section. The entries of a special
 * section (__ex_table, __bug_table, ...) that belong to included functions
 * still go into the patch.
 */
#define KPATCH_IGNORE_SECTION(_sec)						\
	static const char *const __UNIQUE_ID(kpatch_ignore_section_)		\
	__section(".kpatch.ignore.sections") __used = (_sec);

/*
 * Leave a function that changed only as a side effect out of the patch: an
 * __init function that has already run, or a function that the compiler
 * changed because of a change elsewhere. Place the mark after the function,
 * whose address it takes, at the end of the file, so that it moves no line.
 */
#define KPATCH_IGNORE_FUNCTION(_fn)						\
	static void *const __kpatch_ignore_func_##_fn				\
	__section(".kpatch.ignore.functions") __used = (void *)(_fn);

/*
 * kpatch-build's unsafe-force mark. The livepatch core has no way to skip
 * its consistency model for one function, so a patch that uses it stops at
 * compile time.
 */
#define KPATCH_FORCE_UNSAFE(_fn)						\
	_Static_assert(0, "KPATCH_FORCE_UNSAFE(" #_fn ") is not supported: "	\
		       "livepatch has no per-function force")

/*
 * printk() without making the surrounding code cold. printk is declared
 * __cold, and gcc treats every block that always reaches a cold call as
 * unlikely: a printk added to a function can move the function, or its
 * callers' paths, to .text.unlikely or stop them from being inlined, so
 * that many more functions change than the patch touched. jiffies is
 * volatile and never 0 once the kernel runs, so the compiler cannot decide
 * the test and only the branch with the call is cold. The message is always
 * printed.
 */
#define KPATCH_PRINTK(_fmt, ...)						\
	do {									\
		if (jiffies)							\
			printk(_fmt, ##__VA_ARGS__);				\
	} while (0)

/* printk_deferred() without making the surrounding code cold; see KPATCH_PRINTK. */
#define KPATCH_PRINTK_DEFERRED(_fmt, ...)					\
	do {									\
		if (jiffies)							\
			printk_deferred(_fmt, ##__VA_ARGS__);			\
	} while (0)

/*
 * Call through the current target of static call _name as an ordinary
 * indirect call: KPATCH_STATIC_CALL(foo)(args) in place of
 * static_call(foo)(args). static_call() in patch code leaves a
 * .static_call_sites entry, which the kernel reads when the patch module
 * reaches MODULE_STATE_COMING. A key that nothing exports to modules (one in
 * a module being patched, or a vmlinux key without EXPORT_STATIC_CALL) is
 * reached through a livepatch relocation, which the livepatch core applies
 * only later, in klp_enable_patch(), so such a site cannot work. The indirect
 * call reads the key's func field on each call instead.
 */
#define KPATCH_STATIC_CALL(_name)						\
	((typeof(&STATIC_CALL_TRAMP(_name)))READ_ONCE(STATIC_CALL_KEY(_name).func))

/* kpatch-macros.h has always made the syscall macros available as well. */
#include "kpatch-syscall.h"

#endif /* _KPATCH_MACROS_H_ */
