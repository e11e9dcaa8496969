/* jsonl.h: one line of JSON Lines -> the text of one document (cJSON parses it).
 *
 * A line is one JSON object; its member `key` must be a string, which is the document's text
 * (escapes decoded: \n, \uXXXX, surrogate pairs -> UTF-8). What is refused, with the reason in
 * err: a line that does not parse as JSON, one that is not an object, one without the key, a
 * key whose value is not a string. cJSON keeps strings NUL-terminated, so a \u0000 escape ends
 * the text there. Thread-safe (cJSON's default allocator, no shared state). */
#ifndef ARENAGPT_JSONL_H
#define ARENAGPT_JSONL_H

#include <stddef.h>

#include "../alloc/base.h"

typedef struct JsonlDoc {
    void *root;       /* the parsed line (a cJSON tree) */
    const char *text; /* (text_len) inside root */
    size_t text_len;
} JsonlDoc;

/* Parses line[0..len) (no newline needed). Returns 0 with doc filled (free it with
 * jsonl_doc_free), or -1 with err saying why (doc then holds nothing to free). */
int jsonl_doc_parse(JsonlDoc *doc, const char *line, size_t len, const char *key, Err *err);
void jsonl_doc_free(JsonlDoc *doc);

#endif
