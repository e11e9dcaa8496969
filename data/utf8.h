/* utf8.h: strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF),
 * as PCRE2 and Python see it. Shared by the tokenizers and prepare's progress and split. */
#ifndef ARENAGPT_UTF8_H
#define ARENAGPT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The length (1..4) of the valid sequence at s[0..n), n >= 1; 0 when s is a valid but
 * incomplete prefix cut by n; -1 when the bytes at s are not valid UTF-8. */
int utf8_seq_len(const uint8_t *s, size_t n);
/* The code point of a valid sequence of len bytes. */
uint32_t utf8_decode(const uint8_t *s, size_t len);
/* Writes cp (<= 0x10FFFF) as UTF-8 into out (up to 4 bytes); returns the length. */
size_t utf8_encode(uint32_t cp, uint8_t *out);

#endif
