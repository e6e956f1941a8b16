/* types.c: placeholder, being written (the type traits table). */
#include "kernels/types.h"
#include <stddef.h>
const mn_type_traits *mn_type_get(int32_t type) { (void)type; return NULL; }
