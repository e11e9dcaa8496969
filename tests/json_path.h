/* json_path.h: reading JSON back in the tests with cJSON (the project's one JSON library), so
 * reports written by the project are parsed, not grepped. json_path_get walks a dotted path
 * ("categories.params.peak_bytes", "tensors.3.name": numbers index arrays). */
#ifndef ARENAGPT_JSON_PATH_H
#define ARENAGPT_JSON_PATH_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parses text (NUL-terminated, nothing but white space after the value); NULL on a syntax
 * error, with the byte offset and a few bytes from there in err. */
cJSON *json_path_parse(const char *text, char *err, size_t err_len);
/* The value at a dotted path below root; NULL when any step is missing. */
const cJSON *json_path_get(const cJSON *root, const char *path);
/* Its number (NaN when the value is missing or not a number: every comparison then fails). */
double json_path_num(const cJSON *root, const char *path);
/* Its string (NULL when missing or not a string). */
const char *json_path_str(const cJSON *root, const char *path);

#endif
