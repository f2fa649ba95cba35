/* BUG_ON sites as x86 writes them: ud2 plus a 12-byte __bug_table entry. */
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

int demo_first(int x)
{
	demo_bug_on(x == 3);
#ifdef PATCHED
	return x * 4;
#else
	return x * 2;
#endif
}

int demo_second(int x)
{
	demo_bug_on(x == 5);
	return x + 9;
}
