/*
 * Static call sites as objtool records them on x86: a call to the
 * trampoline __SCT__<name> and an 8-byte .static_call_sites entry with the
 * site and the key __SCK__<name> as 32-bit offsets. Each PATCH_* define
 * changes the one function that calls through that key.
 */
#define demo_static_call(name)						\
	asm volatile("1: call __SCT__" #name "\n"			\
		     ".pushsection .static_call_sites, \"a\"\n"		\
		     ".balign 4\n"					\
		     ".long 1b - .\n"					\
		     ".long __SCK__" #name " - .\n"			\
		     ".popsection")

int demo_call_vmlinux(int x)
{
	demo_static_call(demo_hook);	/* key in other.c, not exported */
#ifdef PATCH_VMLINUX_KEY
	return x * 3;
#else
	return x * 2;
#endif
}

int demo_call_module(int x)
{
	demo_static_call(module_hook);	/* key exported by a module */
#ifdef PATCH_MODULE_KEY
	return x * 3;
#else
	return x * 2;
#endif
}

int demo_call_tracepoint(int x)
{
	demo_static_call(tp_func_demo_event);	/* a module's tracepoint */
#ifdef PATCH_TRACEPOINT
	return x * 3;
#else
	return x * 2;
#endif
}
