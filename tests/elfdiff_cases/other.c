/* The rest of the parent: a namesake static and a global that Module.symvers does not list. */
int nr_hidden = 4;

static int __attribute__((noinline)) count_items(int x)
{
	return x * 5 + nr_hidden;
}

int other_entry(int x)
{
	return count_items(x);
}
