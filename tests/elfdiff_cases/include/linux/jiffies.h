/* Stand-in for the kernel header: the tick counter that KPATCH_PRINTK tests. */
extern volatile unsigned long jiffies;
