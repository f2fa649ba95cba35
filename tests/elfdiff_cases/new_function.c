/* The patch adds a static function that a changed function calls. */
extern int printk(const char *fmt, ...);

#ifdef PATCHED
static int __attribute__((noinline)) clamp_value(int x)
{
	return x > 100 ? 100 : x;
}
#endif

int demo_show(int x)
{
#ifdef PATCHED
	return printk("%d\n", clamp_value(x));
#else
	return printk("%d\n", x);
#endif
}

int demo_unchanged(int x)
{
	return x + 1;
}
