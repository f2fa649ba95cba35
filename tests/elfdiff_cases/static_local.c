/*
 * Three functions with a static local of the same name. gcc numbers them
 * count.N in reverse order of definition, so the function the patch adds
 * at the end shifts the numbers of the others.
 */
int __attribute__((noinline)) first_counter(void)
{
	static int count;
	return ++count;
}

int __attribute__((noinline)) second_counter(void)
{
	static int count = 5;
#ifdef PATCHED
	return count += 2;
#else
	return ++count;
#endif
}

#ifdef PATCHED
int __attribute__((noinline)) third_counter(void)
{
	static int count = 9;
	return --count;
}
#endif
