/* rng.h: the project's one random number generator (xoshiro256** seeded by splitmix64).
 * The state is a plain struct: copying it saves it (checkpoints store it byte for byte),
 * and the same seed gives the same stream on every machine. Not for cryptography. */
#ifndef ARENAGPT_RNG_H
#define ARENAGPT_RNG_H

#include <stdint.h>

typedef struct Rng {
    uint64_t s[4];
} Rng;

void rng_init(Rng *r, uint64_t seed);
uint64_t rng_next_u64(Rng *r);
/* Uniform in [0, n) without modulo bias; n > 0. */
uint64_t rng_below(Rng *r, uint64_t n);
/* Uniform in [0, 1) with 24 (float) or 53 (double) random bits. */
float rng_uniform_f32(Rng *r);
double rng_uniform_f64(Rng *r);
/* Standard normal (Box-Muller; each call draws two uniforms, no cached second value so the
 * state alone describes the stream). */
double rng_normal(Rng *r);

#endif
