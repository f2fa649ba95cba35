/* gcc moves the unlikely branch of demo_sum into demo_sum.cold in .text.unlikely.demo_sum. */
extern void sink(int value);
extern void __attribute__((cold)) complain(const char *what, int index);

int demo_sum(int *values, int n)
{
	int i, total = 0;

	for (i = 0; i < n; i++) {
		if (__builtin_expect(values[i] < 0, 0)) {
			complain("negative", i);
#ifdef COLD_PATCHED
			sink(values[i] * 9);
#else
			sink(values[i] * 7);
#endif
			return -1;
		}
#ifdef HOT_PATCHED
		total += values[i] * 2;
#else
		total += values[i];
#endif
	}
	return total;
}
