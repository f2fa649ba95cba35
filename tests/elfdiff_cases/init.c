/* The patch changes an __init function. */
extern int printk(const char *fmt, ...);

__attribute__((section(".init.text"), cold)) int demo_init(void)
{
#ifdef PATCHED
	return printk("init %d\n", 2);
#else
	return printk("init %d\n", 1);
#endif
}
