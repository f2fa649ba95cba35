/*
 * Functions that gcc clones under compiler-made names: demo_scale.constprop.0
 * (a constant argument folded in), demo_sum_fields.isra.0 (a structure
 * argument replaced by the fields it uses) and demo_lookup.part.0 (the slow
 * path of a function whose fast path is inlined into the caller).
 */
extern int printk(const char *fmt, ...);

struct pair {
	int a, b, unused[8];
};

static int __attribute__((noinline)) demo_scale(int x, int factor)
{
#ifdef SCALE_PATCHED
	return x * factor + 3;
#else
	return x * factor + 1;
#endif
}

static int __attribute__((noinline)) demo_sum_fields(struct pair *p)
{
#ifdef SUM_PATCHED
	return p->a * 5 + p->b;
#else
	return p->a * 7 + p->b;
#endif
}

static int demo_lookup(int x)
{
	if (__builtin_expect(x < 0, 1))
		return 0;
	printk("a %d\n", x);
	printk("b %d\n", x * 2);
	printk("c %d\n", x * 3);
	printk("d %d\n", x * 4);
	printk("e %d\n", x * 5);
#ifdef LOOKUP_PATCHED
	printk("f %d\n", x * 7);
#else
	printk("f %d\n", x * 6);
#endif
	return x;
}

int demo_entry(int x, struct pair *p)
{
#ifdef ENTRY_PATCHED
	return demo_scale(x, 9) - demo_sum_fields(p) + demo_lookup(x) + demo_lookup(x + 1);
#else
	return demo_scale(x, 9) + demo_sum_fields(p) + demo_lookup(x) + demo_lookup(x + 1);
#endif
}
