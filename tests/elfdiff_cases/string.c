/* The patch changes only a string literal. */
extern int printk(const char *fmt, ...);

int demo_show(int x)
{
#ifdef PATCHED
	return printk("patched value %d\n", x);
#else
	return printk("value %d\n", x);
#endif
}

int demo_unchanged(int x)
{
	return printk("unchanged %d\n", x);
}
