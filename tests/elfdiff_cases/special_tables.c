/*
 * __ex_table, .altinstructions and ORC entries as the x86 macros and objtool
 * write them, in two functions of which PATCHED changes only demo_first.
 * THIRD_PATCHED changes demo_third, whose replacement code calls a static
 * function.
 */
#define demo_extable()							\
	asm volatile("1: nop\n2:\n"					\
		     ".pushsection __ex_table, \"a\"\n"			\
		     ".balign 4\n"					\
		     ".long 1b - .\n"					\
		     ".long 2b - .\n"					\
		     ".long 3\n"					\
		     ".popsection")

#define demo_alternative(feature, replacement)				\
	asm volatile("661: .byte 0x90,0x90,0x90,0x90,0x90\n662:\n"	\
		     ".pushsection .altinstructions, \"a\"\n"		\
		     ".long 661b - .\n"					\
		     ".long 6641f - .\n"				\
		     ".word " #feature "\n"				\
		     ".byte 662b - 661b\n"				\
		     ".byte 6651f - 6641f\n"				\
		     ".popsection\n"					\
		     ".pushsection .altinstr_replacement, \"ax\"\n"	\
		     "6641: " replacement "\n6651:\n"			\
		     ".popsection")

#define demo_orc(first_byte)						\
	asm volatile("1:\n"						\
		     ".pushsection .orc_unwind_ip, \"a\"\n"		\
		     ".long 1b - .\n"					\
		     ".popsection\n"					\
		     ".pushsection .orc_unwind, \"a\"\n"		\
		     ".byte " #first_byte ",1,2,3,4,5\n"		\
		     ".popsection")

int demo_first(int x)
{
	demo_extable();
	demo_alternative(0x11, ".byte 0x0f,0x1f,0x44,0x00,0x00");
	demo_orc(0xa1);
#ifdef PATCHED
	return x * 4;
#else
	return x * 2;
#endif
}

int demo_second(int x)
{
	demo_extable();
	demo_alternative(0x22, ".byte 0x0f,0x1f,0x44,0x00,0x00");
	demo_orc(0xb2);
	return x + 9;
}

static int __attribute__((used, noinline)) demo_local_helper(int x)
{
	return x * 13;
}

int demo_third(int x)
{
	demo_alternative(0x33, "call demo_local_helper");
#ifdef THIRD_PATCHED
	return x - 4;
#else
	return x - 3;
#endif
}
