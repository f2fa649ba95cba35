/* WARN_ONCE and printk_once state: statics that a patch takes fresh. */
extern int printk(const char *fmt, ...);

#define demo_warn_once(fmt, value)					\
	({								\
		static int __attribute__((section(".data.once"))) __already_done; \
		if (!__already_done) {					\
			__already_done = 1;				\
			printk(fmt, value);				\
		}							\
	})

int demo_check(int x)
{
	static int __warned;

	if (x < 0 && !__warned) {
		__warned = 1;
		printk("negative %d\n", x);
	}
#ifdef PATCHED
	if (x > 10)
#else
	if (x > 100)
#endif
		demo_warn_once("large %d\n", x);
	return x;
}
