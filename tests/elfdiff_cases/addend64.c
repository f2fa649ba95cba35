/* References whose addends need all 64 bits of r_addend, as movabs writes them. */
extern char demo_far_table[];	/* in other.c, not exported */
static char demo_local_table[64];

unsigned long demo_far(void)
{
	unsigned long high, low, local;

	asm("movabs $demo_far_table + 0x123456789, %0" : "=r" (high));
	asm("movabs $demo_far_table - 0x100000000, %0" : "=r" (low));
	asm("movabs $%c1 + 0x200000000, %0" : "=r" (local) : "i" (demo_local_table));
#ifdef PATCHED
	return high + low + local + 1;
#else
	return high + low + local;
#endif
}
