/*
 * The patch adds global functions and variables. demo_show starts to use
 * demo_new_used; the others are used by nothing yet. ONLY_NEW adds them
 * without changing demo_show.
 */
extern int printk(const char *fmt, ...);

#ifdef PATCHED
int demo_new_counter = 5;
int demo_new_zeroed;
int demo_new_used = 7;

int demo_new_helper(int x)
{
	return x * 11 + demo_new_counter;
}
#endif

int demo_show(int x)
{
#if defined(PATCHED) && !defined(ONLY_NEW)
	return printk("%d\n", x + demo_new_used);
#else
	return printk("%d\n", x);
#endif
}
