/* Stand-in for the kernel header: the syscall macros are not tested here. */
