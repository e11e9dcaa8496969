/* arena_nocuda.c: the device backing in a build without CUDA: there is none. */
#include "arena.h"

const ArenaBackingOps *arena_device_ops(void) { return NULL; }
