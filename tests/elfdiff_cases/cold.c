/*
 * gcc moves the unlikely branch of demo_sum into demo_sum.cold, alone in
 * .text.unlikely.demo_sum. COLD_PATCHED changes only that part. HOT_PATCHED
 * changes an immediate of the same size in the hot part, so the jumps
 * between the parts keep their offsets and demo_sum.cold stays the same.
 */
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
		total += values[i] ^ 0x22;
#else
		total += values[i] ^ 0x11;
#endif
	}
	return total;
}
