/* The patch changes a function built without an ftrace call site. */
__attribute__((no_instrument_function)) int demo_notrace(int x)
{
#ifdef PATCHED
	return x * 5;
#else
	return x * 3;
#endif
}
