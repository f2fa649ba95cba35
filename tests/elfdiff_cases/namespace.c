/*
 * demo_show starts to call ns_helper, which vmlinux exports in namespace
 * DEMO_NS. The file itself imports FILE_NS, as MODULE_IMPORT_NS() writes it.
 */
extern int ns_helper(int x);
extern int unused_ns_helper(int x);

static const char demo_import[] __attribute__((used, section(".modinfo"), aligned(1))) =
	"import_ns=FILE_NS";

int demo_show(int x)
{
#ifdef PATCHED
	return ns_helper(x) + 1;
#else
	return x + 1;
#endif
}

int demo_unchanged(int x)
{
	return unused_ns_helper(x);
}
