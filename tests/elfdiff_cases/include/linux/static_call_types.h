/* Stand-in for the kernel header: the key and trampoline names of a static call. */
#define STATIC_CALL_KEY(name) __PASTE(__SCK__, name)
#define STATIC_CALL_TRAMP(name) __PASTE(__SCT__, name)

struct static_call_key {
	void *func;
};
