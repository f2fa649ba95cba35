/* Stand-in for the kernel header: printk is cold, as in the kernel. */
__attribute__((__cold__)) int printk(const char *fmt, ...);
__attribute__((__cold__)) int printk_deferred(const char *fmt, ...);
