/* The rest of the parent: namesakes of case symbols and globals that Module.symvers does not list. */
int nr_hidden = 4;

/* A static key, a static call key and an array that only vmlinux has. */
int vmlinux_key;
int __SCK__demo_hook;
char demo_far_table[16];

static int __attribute__((noinline)) count_items(int x)
{
	return x * 5 + nr_hidden;
}

/* gcc clones it as demo_scale.constprop.0, a namesake of the clone in clones.c. */
static int __attribute__((noinline)) demo_scale(int x, int factor)
{
	return x * factor - 2;
}

int other_entry(int x)
{
	return count_items(x) + demo_scale(x, 5);
}
