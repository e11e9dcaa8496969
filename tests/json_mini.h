/* json_mini.h: a small strict JSON reader for the tests, so reports written by the project are
 * parsed back (not grepped). Parses RFC 8259 text into a tree; json_get walks a dotted path
 * ("categories.params.peak_bytes", "tensors.3.name": numbers index arrays). */
#ifndef ARENAGPT_JSON_MINI_H
#define ARENAGPT_JSON_MINI_H

#include <stddef.h>

typedef enum JsonType {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} JsonType;

typedef struct Json {
    JsonType type;
    double number; /* JSON_NUMBER, JSON_BOOL (0/1) */
    char *string;  /* JSON_STRING; for object members, key holds the name */
    char *key;
    struct Json **items; /* JSON_ARRAY elements or JSON_OBJECT members */
    size_t n_items;
} Json;

/* Returns NULL on a syntax error and writes where into err (if given). */
Json *json_parse(const char *text, char *err, size_t err_len);
/* Reads a whole file and parses it. */
Json *json_parse_file(const char *path, char *err, size_t err_len);
const Json *json_get(const Json *root, const char *path);
void json_free(Json *j);

#endif
