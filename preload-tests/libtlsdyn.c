/* A library with thread-locals, loaded with dlopen by test_tls_private: its TLS is dynamic
 * (allocated per thread by __tls_get_addr on first use). */
static __thread int dyn_value = 7;
static __thread char dyn_name[32] = "initial";

int tlsdyn_get(void) { return dyn_value; }
void tlsdyn_set(int v) { dyn_value = v; dyn_name[0] = (char)('a' + v % 26); }
char tlsdyn_name0(void) { return dyn_name[0]; }
