/*
 * Stand-ins for the kernel headers that kmod/kpatch-macros.h includes, just
 * enough for the mark macros to compile outside a kernel tree. The
 * definitions follow include/linux/compiler*.h of Linux 6.1, with READ_ONCE
 * in its simplest form.
 */
#ifndef _TEST_LINUX_COMPILER_H
#define _TEST_LINUX_COMPILER_H

#define __section(s) __attribute__((__section__(s)))
#define __used __attribute__((__used__))
#define ___PASTE(a, b) a##b
#define __PASTE(a, b) ___PASTE(a, b)
#define __UNIQUE_ID(prefix) __PASTE(__PASTE(__UNIQUE_ID_, prefix), __COUNTER__)
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define NULL ((void *)0)

#endif
