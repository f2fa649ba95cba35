/*
 * Jump label sites as x86 writes them: a 5-byte NOP and a 16-byte
 * __jump_table entry with the code and the target as 32-bit offsets and the
 * key as a 64-bit offset. Each PATCH_* define changes the one function that
 * uses that key.
 */
struct static_key {
	int enabled;
};

struct tracepoint {
	const char *name;
	struct static_key key;
};

extern struct static_key vmlinux_key;	/* in other.c, not exported */
extern struct static_key exported_key;	/* exported by vmlinux */
extern struct static_key module_key;	/* exported by a module */
static struct static_key local_key;
struct tracepoint __tracepoint_demo_event;
#ifdef PATCH_NEW_KEY
static struct static_key demo_new_key;
#endif

static inline __attribute__((always_inline)) int demo_static_branch(struct static_key *key)
{
	asm goto("1: .byte 0x0f,0x1f,0x44,0x00,0x00\n"
		 ".pushsection __jump_table, \"aw\"\n"
		 ".balign 8\n"
		 ".long 1b - ., %l[yes] - .\n"
		 ".quad %c0 - .\n"
		 ".popsection" : : "i" (key) : : yes);
	return 0;
yes:
	return 1;
}

int demo_vmlinux_key(int x)
{
	if (demo_static_branch(&vmlinux_key))
		return x + 1;
#ifdef PATCH_VMLINUX_KEY
	return x * 3;
#else
	return x * 2;
#endif
}

int demo_exported_key(int x)
{
	if (demo_static_branch(&exported_key))
		return x + 1;
#ifdef PATCH_EXPORTED_KEY
	return x * 3;
#else
	return x * 2;
#endif
}

int demo_module_key(int x)
{
	if (demo_static_branch(&module_key))
		return x + 1;
#ifdef PATCH_MODULE_KEY
	return x * 3;
#else
	return x * 2;
#endif
}

int demo_local_key(int x)
{
	if (demo_static_branch(&local_key))
		return x + 1;
#ifdef PATCH_LOCAL_KEY
	return x * 3;
#else
	return x * 2;
#endif
}

int demo_tracepoint(int x)
{
	if (demo_static_branch(&__tracepoint_demo_event.key))
		return x + 1;
#ifdef PATCH_TRACEPOINT
	return x * 3;
#else
	return x * 2;
#endif
}

int demo_new_key_user(int x)
{
#ifdef PATCH_NEW_KEY
	if (demo_static_branch(&demo_new_key))
		return x + 5;
#endif
	return x * 2;
}
