/*
 * Functions that pass __LINE__ on, as might_sleep(), pr_err("%d", __LINE__)
 * and BUG_ON() do. LINES_MOVED renumbers every line below by 20, which is
 * what adding 20 lines above them in a patch does.
 */
extern void __might_sleep(const char *file, int line);
extern int _printk(const char *fmt, ...);
extern int demo_delay(int x, int ticks);

#define demo_might_sleep() __might_sleep(__FILE__, __LINE__)
#define demo_report(value) _printk("demo %d at line %d\n", (value), __LINE__)
#define demo_bug_on(condition)						\
	do {								\
		if (condition)						\
			asm volatile("1:\tud2\n"			\
				     ".pushsection __bug_table,\"aw\"\n"	\
				     "2:\t.long 1b - 2b\n"		\
				     "\t.long 0\n"			\
				     "\t.word %c0\n"			\
				     "\t.word 0\n"			\
				     "\t.org 2b + 12\n"			\
				     ".popsection" : : "i" (__LINE__));	\
	} while (0)

#ifdef LINES_MOVED
#define FIRST_LINE 120
#else
#define FIRST_LINE 100
#endif

#ifdef SHIFTED_CONSTANT
#define DELAY_TICKS 23
#else
#define DELAY_TICKS 3
#endif

#line FIRST_LINE
int demo_sleepy(int x)
{
	demo_might_sleep();
	return x * 3;
}

int demo_report_twice(int x)
{
	if (x > 10)
		demo_report(x);
	demo_report(
		x + 1);
	return demo_delay(x, DELAY_TICKS);
}

int demo_checked(int x)
{
	demo_bug_on(x == 7);
#ifdef REAL_CHANGE
	return x + 2;
#else
	return x + 1;
#endif
}

int demo_plain(int x)
{
	return demo_delay(x, 5);
}
