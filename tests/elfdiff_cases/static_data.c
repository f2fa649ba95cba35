/* The patch changes the initial value of static data. */
static int limits[4] = {
	1, 2, 3,
#ifdef PATCHED
	5,
#else
	4,
#endif
};

int demo_limit(int i)
{
	return limits[i & 3];
}
