/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KPATCH_SYSCALL_DEFINE1..6: use in place of SYSCALL_DEFINE1..6 to patch a
 * system call, with kpatch's macro names.
 *
 * The kernel's SYSCALL_DEFINEx puts the body in a static inline function,
 * __do_sys_<name>, and the kernel's `inline` implies notrace. When gcc keeps
 * that function out of line, a changed body has no ftrace call site and the
 * livepatch core cannot redirect it. These macros name the body function
 * __kpatch_do_sys_<name> instead. elfdiff finds a new function, which the
 * patch module carries, and a changed __x64_sys_<name>, which calls it and
 * has an ftrace call site, so the livepatch core redirects that.
 *
 * They also leave out what SYSCALL_DEFINEx adds beside the function: the
 * syscall trace event and metadata records (CONFIG_FTRACE_SYSCALLS). A new
 * copy of those would need registering with the tracing core. A NULL
 * placeholder keeps each table section present, and KPATCH_IGNORE_SECTION
 * leaves the tables out of the diff.
 *
 * x86_64 layout of Linux 6.1 (arch/x86/include/asm/syscall_wrapper.h).
 */
#ifndef _KPATCH_SYSCALL_H_
#define _KPATCH_SYSCALL_H_

#include <linux/syscalls.h>

#include "kpatch-macros.h"

#ifndef CONFIG_X86_64
#error "kpatch-syscall.h supports x86_64 only"
#endif

#ifdef CONFIG_FTRACE_SYSCALLS
/*
 * NOTE: only compiled with CONFIG_FTRACE_SYSCALLS, which the default config
 * leaves off, so no test builds this branch.
 */
#define __KPATCH_SYSCALL_METADATA(sname)					\
	static struct syscall_metadata __used					\
	__section("__syscalls_metadata") *__kpatch_syscall_meta##sname;	\
	static struct trace_event_call __used					\
	__section("_ftrace_events") *__kpatch_syscall_event##sname;		\
	KPATCH_IGNORE_SECTION("__syscalls_metadata")				\
	KPATCH_IGNORE_SECTION("_ftrace_events")
#else
#define __KPATCH_SYSCALL_METADATA(sname)
#endif

/*
 * The x86_64 entry point __x64_sys<sname> (and __ia32_sys<sname> with
 * CONFIG_IA32_EMULATION) unpacks struct pt_regs and calls __se_sys<sname>,
 * which widens the arguments to long and calls the body.
 */
#define __KPATCH_SYSCALL_DEFINEx(x, sname, ...)					\
	static long __se_sys##sname(__MAP(x, __SC_LONG, __VA_ARGS__));		\
	static inline long							\
	__kpatch_do_sys##sname(__MAP(x, __SC_DECL, __VA_ARGS__));		\
	__X64_SYS_STUBx(x, sname, __VA_ARGS__)					\
	__IA32_SYS_STUBx(x, sname, __VA_ARGS__)					\
	static long __se_sys##sname(__MAP(x, __SC_LONG, __VA_ARGS__))		\
	{									\
		long ret = __kpatch_do_sys##sname(				\
			__MAP(x, __SC_CAST, __VA_ARGS__));			\
		__MAP(x, __SC_TEST, __VA_ARGS__);				\
		__PROTECT(x, ret, __MAP(x, __SC_ARGS, __VA_ARGS__));		\
		return ret;							\
	}									\
	static inline long							\
	__kpatch_do_sys##sname(__MAP(x, __SC_DECL, __VA_ARGS__))

#define KPATCH_SYSCALL_DEFINEx(x, sname, ...)					\
	__KPATCH_SYSCALL_METADATA(sname)					\
	__KPATCH_SYSCALL_DEFINEx(x, sname, __VA_ARGS__)

#define KPATCH_SYSCALL_DEFINE1(name, ...) KPATCH_SYSCALL_DEFINEx(1, _##name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE2(name, ...) KPATCH_SYSCALL_DEFINEx(2, _##name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE3(name, ...) KPATCH_SYSCALL_DEFINEx(3, _##name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE4(name, ...) KPATCH_SYSCALL_DEFINEx(4, _##name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE5(name, ...) KPATCH_SYSCALL_DEFINEx(5, _##name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE6(name, ...) KPATCH_SYSCALL_DEFINEx(6, _##name, __VA_ARGS__)

#endif /* _KPATCH_SYSCALL_H_ */
