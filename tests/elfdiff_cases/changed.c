/* A function that changes and refers to each kind of symbol that stays in the parent. */
extern int printk(const char *fmt, ...);
extern int nr_hidden; /* defined in other.c, not exported */

/* other.c has a static count_items too, so its sympos is not 0. */
static int __attribute__((noinline)) count_items(int x)
{
#ifdef COUNT_PATCHED
	return x * 3 + 2;
#else
	return x * 3 + 1;
#endif
}

static int __attribute__((noinline)) scale_unique(int x)
{
	return x << 2;
}

int demo_show(int x)
{
#ifdef PATCHED
	return printk("%d %d\n", count_items(x) + nr_hidden, scale_unique(x)) + 7;
#else
	return printk("%d %d\n", count_items(x) + nr_hidden, scale_unique(x));
#endif
}

int demo_unchanged(int x)
{
	return count_items(x) - scale_unique(x);
}
