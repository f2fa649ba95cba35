/* Stand-in for the kernel header: callbacks only pass struct klp_object around. */
struct klp_object;
